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


# -- feature-leakage: each fold's rows of the keys gathered once, the columns transposed once --


def _old_lookup_fold(keys, fit, fit_y, test, classification):
    """`_lookup_fold` as it was before first23 (its own gathers, `np.tile` of the labels)."""
    key, value, start, width = keys
    m, total = len(start), len(value)
    fit_keys = key[:, fit].ravel()
    if classification:
        classes = int(fit_y.max()) + 1
        counts = np.bincount(fit_keys * classes + np.tile(fit_y, m), minlength=total * classes)
        counts = counts.reshape(total, classes)
        seen = counts.any(axis=1)
        per_key = counts.argmax(axis=1)
    else:
        n = np.bincount(fit_keys, minlength=total)
        seen = n > 0
        per_key = np.bincount(fit_keys, weights=np.tile(fit_y, m), minlength=total) / np.maximum(n, 1)
    index = np.arange(total)
    below = np.maximum.accumulate(np.where(seen, index, -1))
    above = np.minimum.accumulate(np.where(seen, index, total)[::-1])[::-1]
    column = np.repeat(np.arange(m), width)
    below_ok = below >= start[column]
    above_ok = above < (start + width)[column]
    lower, upper = value[np.where(below_ok, below, 0)], value[np.where(above_ok, above, 0)]
    take_below = below_ok & (~above_ok | (value - lower <= upper - value))
    nearest = np.where(take_below, below, above)
    return per_key[nearest][key[:, test].T]


def _old_scores(check, distinct):
    """`FeatureLeakage.scores` as it was before first23 (the reference the new one must match
    bit for bit)."""
    from mlcheck.checks import leakage

    classification = check._task == "classification"
    distinct = check._subsample(distinct, check._y[distinct] if classification else None)
    x, y = check._x[distinct], check._y[distinct]
    if classification:
        y = np.unique(y, return_inverse=True)[1]
    n = len(x)
    order = np.random.default_rng(1).permutation(n)
    folds = (order[: n // 2], order[n // 2 :])
    errors = np.zeros(x.shape[1])
    baseline = 0.0
    ordered = np.sort(x.T, axis=1)
    counts = 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(axis=1)
    maybe = np.isfinite(x).all(axis=0) & (counts <= check.max_values + max(map(len, folds)))
    keys = leakage._value_keys(x[:, maybe], ordered[maybe]) if maybe.any() else None
    lookups = [np.zeros(x.shape[1], dtype=bool) for _ in folds]
    if keys is not None:
        for (fit, _), lookup in zip((folds, folds[::-1]), lookups):
            lookup[maybe] = leakage._lookup_columns(keys, fit, check.max_values)
        either = lookups[0] | lookups[1]
        keys = leakage._key_columns(keys, either[maybe]) if either.any() else None
    for (fit, test), lookup in zip((folds, folds[::-1]), lookups):
        if classification:
            fold_baseline = float((y[test] != np.bincount(y[fit]).argmax()).sum())
        else:
            fold_baseline = float(((y[test] - y[fit].mean()) ** 2).sum())
        baseline += fold_baseline
        fit_x, test_x = x[fit], x[test]
        if lookup.any():
            pred = _old_lookup_fold(keys, fit, y[fit], test, classification)[:, lookup[either]]
            if classification:
                errors[lookup] += (pred != y[test][:, None]).sum(axis=0)
            else:
                errors[lookup] += ((y[test][:, None] - pred) ** 2).sum(axis=0)
        for j in np.flatnonzero(~lookup):
            pred = leakage._single_feature_predictions(
                fit_x[:, j], y[fit], test_x[:, j], classification, check.max_values
            )
            if pred is None:
                errors[j] += fold_baseline
            elif classification:
                errors[j] += float((pred != y[test]).sum())
            else:
                errors[j] += float(((y[test] - pred) ** 2).sum())
    scores = 1.0 - errors / baseline if baseline > 0 else np.zeros(x.shape[1])
    return scores, baseline, errors


def _random_table(rng):
    """Rows of every kind feature-leakage scores: few-level and continuous columns, a copied or
    transformed label, NaN and Inf, -0.0 beside 0.0, columns past `max_values` distinct values,
    classification with 2-12 classes or a regression target."""
    n = int(rng.integers(40, 1500))
    m = int(rng.integers(2, 40))
    x = rng.normal(size=(n, m))
    levels = rng.random(m) < 0.5
    x[:, levels] = x[:, levels].round(int(rng.integers(0, 2)))
    classification = rng.random() < 0.7
    y = rng.integers(0, int(rng.integers(2, 13)), size=n) if classification else rng.normal(size=n) * 10
    if rng.random() < 0.3:  # a leaked column
        x[:, int(rng.integers(m))] = y * rng.choice([1.0, -2.0, 0.5]) + (
            0 if classification else rng.normal(size=n) * 0.01
        )
    if rng.random() < 0.2:
        x[rng.random(x.shape) < 0.02] = np.nan
    if rng.random() < 0.1:
        x[rng.random(x.shape) < 0.01] = np.inf
    x[rng.random(x.shape) < 0.05] = -0.0
    return x, y, classification


def test_first23_feature_leakage_scores_are_the_old_ones_bit_for_bit():
    """300 random tables (and digits with a copied label): the same scores, baseline and error
    counts as before first23, to the last bit."""
    from mlcheck.checks.leakage import FeatureLeakage

    rng = np.random.default_rng(23)
    digits_x, digits_y = load_digits(return_X_y=True)
    tables = [(np.column_stack([digits_x / 16.0, digits_y]), digits_y, True)]
    tables += [_random_table(rng) for _ in range(300)]
    for x, y, classification in tables:
        check = FeatureLeakage()
        check._x, check._task = x.astype(np.float64), "classification" if classification else "regression"
        check._y = y.astype(np.int64) if classification else y.astype(np.float64)
        rows = np.arange(len(x))
        scores, baseline = check.scores(rows)
        want_scores, want_baseline, want_errors = _old_scores(check, rows)
        assert baseline == want_baseline
        assert np.array_equal(scores, want_scores, equal_nan=True) and np.array_equal(check._errors, want_errors)


def test_first23_feature_leakage_gathers_each_folds_keys_once(monkeypatch):
    """A judgement gathers each fold's rows of the value keys once (was three times: for the
    columns a fold looks up, its fit and the other fold's test) and tiles no labels."""
    from mlcheck.checks import leakage

    x, y = load_digits(return_X_y=True)
    check = leakage.FeatureLeakage()
    check._x, check._y, check._task = np.column_stack([x / 16.0, y]), y.astype(np.int64), "classification"

    def no_tile(*args, **kwargs):
        raise AssertionError("np.tile called in a judgement")

    monkeypatch.setattr(np, "tile", no_tile)
    folds_seen = []
    real = leakage._lookup_fold

    def counted(keys, fit, fit_y, test, classification, gathered=None):
        folds_seen.append(gathered is not None)
        return real(keys, fit, fit_y, test, classification, gathered)

    monkeypatch.setattr(leakage, "_lookup_fold", counted)
    scores, _ = check.scores(np.arange(len(x)))
    assert folds_seen == [True, True] and scores[64] == 1.0


# -- class-imbalance and unshuffled-data: a batch's labels counted once, shared --------------


class OldImbalance(data.ClassImbalance):
    def on_batch(self, batch, run):  # as before first23: its own labels and count
        if batch.split != "train":
            return ()
        labels = data.class_labels(batch.targets, run, self.max_classes)
        if labels is None:
            return ()
        self._labels.add(labels)
        self._last = (batch.step, batch.epoch)
        if self._labels.samples >= 2 * self._judged_at:
            return self._judge(run)
        return ()


class OldUnshuffled(UnshuffledData):
    def on_batch(self, batch, run):  # as before first23
        labels = data.class_labels(batch.targets, run, self.max_classes)
        if labels is None or labels.size == 0:
            return ()
        if batch.split == "val":
            if len(self._val) <= self.max_classes:
                for v, c in zip(*np.unique(labels, return_counts=True)):
                    self._val[int(v)] = self._val.get(int(v), 0) + int(c)
            return ()
        self._train.add(labels)
        self._train_batches += 1
        self._last = (batch.step, batch.epoch)
        return self._judge() if self._due() else ()


def _random_targets(rng, kind, classes):
    n = int(rng.integers(0, 70))
    if kind == "ints":
        return rng.integers(-1 if rng.random() < 0.3 else 0, classes, size=n)
    if kind == "ignored":  # every label the ignore index now and then
        return np.full(n, -100) if rng.random() < 0.3 else rng.integers(0, classes, size=n)
    if kind == "binary":
        return rng.integers(0, 2, size=(n, 1)).astype(np.float32)
    if kind == "onehot":
        return np.eye(classes, dtype=np.float32)[rng.integers(0, classes, size=n)]
    if kind == "sorted":
        return np.sort(rng.integers(0, classes, size=n))
    return rng.normal(size=n).astype(np.float32)  # regression targets: no labels


def test_first23_label_counters_share_the_batch_count_with_the_same_verdicts():
    """class-imbalance and unshuffled-data take a batch's class counts from
    `BatchObservation.class_counts` (counted once for every label counter) instead of counting
    the labels again each: the same findings and state as before on 200 random label streams
    (integer labels with ignore indices, all-ignored batches, 0/1 floats, one-hot rows, sorted
    labels, regression targets; train and validation batches)."""
    from mlcheck.run import RunInfo

    rng = np.random.default_rng(23)
    for _ in range(200):
        kind = str(rng.choice(["ints", "ignored", "binary", "onehot", "sorted", "floats"]))
        classes = int(rng.integers(2, 12))
        task = rng.choice([None, "classification"])
        run = RunState(RunInfo(task=task))
        pairs = [
            (data.ClassImbalance(min_samples=50), OldImbalance(min_samples=50)),
            (UnshuffledData(), OldUnshuffled()),
        ]
        found = {id(c): [] for pair in pairs for c in pair}
        for step in range(int(rng.integers(1, 40))):
            split = "val" if rng.random() < 0.2 else "train"
            batch = BatchObservation(
                inputs=None, targets=_random_targets(rng, kind, classes), split=split, step=step, epoch=0
            )
            for new, old in pairs:
                for check in (new, old):
                    found[id(check)] += [(f.message, f.evidence, f.step) for f in check.on_batch(batch, run)]
        for new, old in pairs:
            for check in (new, old):
                found[id(check)] += [(f.message, f.evidence, f.step) for f in check.on_end(run)]
            assert found[id(new)] == found[id(old)]
            assert new._last == old._last
        (imbalance, old_imbalance), (unshuffled, old_unshuffled) = pairs
        assert imbalance._labels.state_dict() == old_imbalance._labels.state_dict()
        assert unshuffled._train.state_dict() == old_unshuffled._train.state_dict()
        assert unshuffled._val == old_unshuffled._val


def test_first23_a_batch_of_labels_is_counted_once_for_every_label_counter(monkeypatch):
    """In a monitor with class-imbalance, unshuffled-data and label-shift, each batch's labels
    go through `class_labels` once (was three times)."""
    from mlcheck.checks.label_shift import LabelShift

    calls = []
    real = data.class_labels

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "class_labels", counted)
    monitor = Monitor([data.ClassImbalance(), UnshuffledData(), LabelShift()], warn=False, default_sinks=False)
    rng = np.random.default_rng(0)
    for i in range(5):
        monitor.log_batch(rng.normal(size=(32, 4)), rng.integers(0, 3, size=32), step=i, epoch=0, index=i)
    assert len(calls) == 5
