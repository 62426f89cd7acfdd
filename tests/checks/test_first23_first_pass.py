"""The first epoch's one-off data checks made cheaper without changing a verdict (issue 13,
branch first23). Each cut is compared with the code it replaced (kept here as the reference)
on a few hundred synthetic inputs, and pinned by a test that fails without it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import Monitor
from mlcheck.checks import data
from mlcheck.checks.data import UnnormalizedInput, UnshuffledData, _entropy, _LabelHistory
from mlcheck.run import BatchObservation, RunState


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


# -- unshuffled-data: the simulation skipped where no simulated mean could reach the batches --


class SimulatesAlways(UnshuffledData):
    """`_against_own_mix` as it was before first23: the 400 simulated batches every time."""

    def _against_own_mix(self, history):
        classes, table = history.table()
        sizes = table.sum(axis=1)
        size = int(np.median(sizes))
        table = table[sizes >= max(2, size // 2)]
        if len(table) < self.min_batches or len(classes) < 2:
            return None
        p = np.array([history.totals[c] for c in classes], dtype=np.float64)
        p /= p.sum()
        draws = np.random.default_rng(0).multinomial(size, p, size=self.simulations)
        expected = _entropy(draws)
        mu, sd = float(expected.mean()), float(expected.std())
        observed = _entropy(table)
        mean = float(observed.mean())
        if mu <= 0:
            return None
        z = (mu - mean) / max(sd / math.sqrt(len(observed)), 1e-12)
        if mean > self.max_diversity_ratio * mu or z < self.z:
            return None
        return ("found", mean, mu, z, float((draws > 0).sum(axis=1).mean()))


def _as_tuple(finding):
    if finding is None or isinstance(finding, tuple):
        return finding
    e = finding.evidence
    return ("found", e["mean_label_entropy"], e["expected_label_entropy"], e["z"], e["expected_classes_per_batch"])


def _random_history(rng) -> _LabelHistory:
    """Label batches of every kind: shuffled (balanced or not), sorted, runs of a few classes,
    two classes, a rare class, short batches."""
    classes = int(rng.integers(2, 30))
    size = int(rng.choice([2, 3, 4, 8, 16, 32, 64, 128]))
    batches = int(rng.integers(3, 40))
    p = rng.dirichlet(np.full(classes, float(rng.choice([0.1, 0.5, 1.0, 10.0]))))
    kind = rng.choice(["shuffled", "sorted", "runs", "mixed"])
    labels = rng.choice(classes, size=size * batches, p=p)
    if kind == "sorted":
        labels = np.sort(labels)
    elif kind == "runs":  # blocks of a few classes each
        labels = np.concatenate([np.sort(b) for b in np.array_split(labels, max(1, batches // 3))])
    elif kind == "mixed":  # partly sorted
        cut = int(rng.integers(0, len(labels)))
        labels[:cut] = np.sort(labels[:cut])
    history = _LabelHistory()
    for i in range(batches):
        batch = labels[i * size : (i + 1) * size]
        if rng.random() < 0.1:
            batch = batch[: max(1, len(batch) // 3)]  # a short batch now and then
        history.add(batch)
    return history


def test_first23_unshuffled_skips_the_simulation_only_where_its_verdict_is_known():
    """The batches' mean label entropy above `max_diversity_ratio` x log(min(batch size,
    classes)), the most any batch can hold, clears them whatever 400 simulated batches would
    show: the same verdict (None, or the same finding with the same numbers) as simulating, on
    400 random label streams of every kind."""
    rng = np.random.default_rng(23)
    new, old = UnshuffledData(), SimulatesAlways()
    outcomes = {"none": 0, "found": 0}
    for _ in range(400):
        history = _random_history(rng)
        got, want = _as_tuple(new._against_own_mix(history)), _as_tuple(old._against_own_mix(history))
        assert got == want
        outcomes["none" if want is None else "found"] += 1
    assert min(outcomes.values()) >= 40  # both verdicts are well represented


def test_first23_a_shuffled_stream_draws_no_simulated_batches(digits, monkeypatch):
    """On shuffled digits (10 classes, batches of 32: ~2.1 nats against a bound of log 10 = 2.3)
    the judgements draw nothing; sorted digits still simulate and warn."""
    x, y = digits
    draws = []
    real = np.random.default_rng

    def counted(*args, **kwargs):
        draws.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(data.np.random, "default_rng", counted)
    monitor = Monitor([UnshuffledData()], warn=False, default_sinks=False)
    for i in range(8):
        monitor.log_batch(x[i * 32 : (i + 1) * 32], y[i * 32 : (i + 1) * 32], step=i, epoch=0, index=i)
    monitor.close()
    assert monitor.findings == [] and draws == []
    order = np.argsort(y, kind="stable")
    monitor = Monitor([UnshuffledData()], warn=False, default_sinks=False)
    for i in range(4):  # one class a batch, two classes so far
        rows = order[i * 64 : (i + 1) * 64]
        monitor.log_batch(x[rows], y[rows], step=i, epoch=0, index=i)
    monitor.close()
    assert [f.check for f in monitor.findings] == ["unshuffled-data"] and draws


# -- unnormalized-input: float32 inputs sorted as float32 ------------------------------------


def _old_percentile(ordered, q):
    n = len(ordered)
    pos = (n - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def _random_inputs(rng) -> np.ndarray:
    """float32 batches of every scale and kind the check judges: standardised, raw pixels as
    whole numbers, ids, tiny values, zeros, NaN and Inf, wide columns, images."""
    shape = [(32, 64), (256, 64), (7, 13), (16, 2), (4, 3, 8, 8), (40, 1500), (3, 20000), (64,)][int(rng.integers(8))]
    kind = rng.choice(["normal", "pixels", "ids", "tiny", "mixed", "columns"])
    if kind == "pixels":
        x = rng.integers(0, 256, size=shape).astype(np.float32)
    elif kind == "ids":
        x = rng.integers(0, 5000, size=shape).astype(np.float32)
    elif kind == "tiny":
        x = (rng.normal(size=shape) * 10.0 ** rng.uniform(-7, -2)).astype(np.float32)
    elif kind == "columns" and len(shape) == 2:
        x = (rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 4, size=shape[1])).astype(np.float32)
    else:
        x = (rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 4)).astype(np.float32)
    if kind == "mixed":
        x[rng.random(shape) < 0.3] = 0.0
        x[rng.random(shape) < 0.02] = np.nan
        x[rng.random(shape) < 0.01] = np.inf
    return x


def test_first23_unnormalized_input_judges_float32_values_as_their_float64_copy(monkeypatch):
    """Sorting, comparing and counting float32 values gives what their float64 copy gave, and
    the percentiles are taken in float64 either way: the same notes (numbers to the last bit)
    and findings on 300 random float32 batches as the float64 copy of before."""
    rng = np.random.default_rng(23)
    run = RunState()
    found = 0
    for _ in range(300):
        x = _random_inputs(rng)
        batch = BatchObservation(inputs=x, targets=None, split=str(rng.choice(["train", "val"])), step=0, epoch=0)
        new = UnnormalizedInput()
        got = [(f.message, f.evidence) for f in new.on_batch(batch, run)]
        old = UnnormalizedInput()
        with monkeypatch.context() as m:
            m.setattr(data, "_sample_values", lambda v, float32=False, f=data._sample_values: f(v))
            m.setattr(data, "_percentile", _old_percentile)
            want = [(f.message, f.evidence) for f in old.on_batch(batch, run)]
        assert got == want and new._seen == old._seen
        found += bool(want)
    assert 50 <= found <= 250  # both outcomes well represented


def test_first23_float32_inputs_are_not_copied_to_float64_for_their_scale():
    x = np.ones((32, 64), dtype=np.float32)
    assert data._sample_values(x, float32=True).dtype == np.float32
    assert data._sample_values(x).dtype == np.float64  # targets' sums stay float64
    assert data._sample_values(x.astype(np.uint8), float32=True).dtype == np.float64
