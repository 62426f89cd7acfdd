"""An adapter's hand-overs of one split and epoch, made in one run (`LiveRun.handing_over`),
reach the store and the checks as one (`mlcheck.samples.merge_outputs`): the store adds them in
one call and each check is handed them once, not once per block. The store and `weak-slice`
keep each block's floating-point sums apart (`SampleOutputs.segments`), so `samples.csv`, the
findings, the TensorBoard events and the training are those of handing every block over on its
own, with identical input rows (one id several times in an epoch) and without."""

from __future__ import annotations

import numpy as np
import pytest

import tests.samples.test_samples_grouped_hand_overs as grouped
from mlcheck.checks.samples import WeakSlice, _tally
from mlcheck.live import LiveRun
from mlcheck.monitor import Monitor
from mlcheck.run import RunState
from mlcheck.samples import SampleOutputs, SampleStore, SplitSamples, merge_outputs, segment


def _with_duplicates():
    """The grouped test's digits with 20 training rows copied over 20 others (identical rows
    share an id: an id twice in an epoch, in different blocks)."""
    x, y = _plain()
    x[300:320], y[300:320] = x[0:20], y[0:20]
    return x, y


_plain = grouped._digits


def _count_hand_overs(monkeypatch):
    counts: list[str] = []
    log_samples = Monitor.log_samples

    def counting(self, outputs):
        counts.append(outputs.split)
        return log_samples(self, outputs)

    monkeypatch.setattr(Monitor, "log_samples", counting)
    return counts


@pytest.mark.parametrize("data", ["plain", "duplicates"])
@pytest.mark.parametrize("framework", ["lightning", "keras"])
def test_rec16_an_epochs_blocks_reach_the_store_once_per_split_with_the_same_outputs(
    tmp_path, monkeypatch, framework, data
):
    from mlcheck.integrations.keras.samples import KerasSampleCapture
    from mlcheck.integrations.torch_samples import SampleCapture

    if data == "duplicates":
        monkeypatch.setattr(grouped, "_digits", _with_duplicates)
    monkeypatch.setattr(SampleCapture, "HOLD_BATCHES", grouped.HOLD_BATCHES)
    monkeypatch.setattr(KerasSampleCapture, "HOLD_BATCHES", grouped.HOLD_BATCHES)
    fit = grouped._lightning_fit if framework == "lightning" else grouped._keras_fit
    counts = _count_hand_overs(monkeypatch)
    merged = fit(tmp_path / "grouped")
    # 14 blocks an epoch (10 training, 4 validation), one hand-over per split and epoch
    assert counts == ["train", "val"] * grouped.EPOCHS or counts == ["val", "train"] * grouped.EPOCHS, counts
    monkeypatch.setattr(LiveRun, "MERGE_SAMPLES", False)  # the reference: each block on its own
    del counts[:]
    one_by_one = fit(tmp_path / "one")
    assert len(counts) == 14 * grouped.EPOCHS
    grouped._same_outputs(tmp_path, merged, one_by_one)
    if data == "duplicates":  # the repeated ids were counted once per occurrence, as before
        train = merged[0].monitor.run.samples.get("train")
        assert train.column("epochs").max() == 2 * grouped.EPOCHS


def _random_hand_overs(rng, blocks, known, classes=10, rows=40):
    out = []
    for i in range(blocks):
        ids = rng.choice(known, rows, replace=False).astype(np.uint64)
        labels = rng.integers(0, classes, rows)
        out.append(
            SampleOutputs(
                split="train",
                epoch=i // 3,  # three blocks an epoch
                ids=ids,
                labels=labels,
                true_prob=rng.random(rows).astype(np.float32),
                predicted=rng.integers(0, classes, rows),
                other_prob=rng.random(rows).astype(np.float32),
                other_class=rng.integers(0, classes, rows),
            )
        )
    return out


@pytest.mark.parametrize("seed", range(6))
def test_rec16_merged_adds_and_tallies_equal_those_one_by_one(seed):
    rng = np.random.default_rng(seed)
    # ids drawn from 60 for 40-row blocks: new ids in later blocks, ids repeated across blocks
    hand_overs = _random_hand_overs(rng, 9, np.arange(60))
    merged = merge_outputs(hand_overs)
    assert [m.segments for m in merged] == [(40, 40, 40)] * 3
    one, many = SplitSamples(), SplitSamples()
    tables_one: dict = {}
    tables_many: dict = {}
    for out in hand_overs:
        one.add(out)
        wrong = out.predicted != out.labels
        _tally(tables_one, "class", out.labels, wrong, -np.log(np.clip(out.true_prob.astype(np.float64), 1e-7, 1)))
    for out in merged:
        many.add(out)
        assert np.array_equal(many.rows_of(out), np.concatenate([one.rows(p.ids) for p in segment(out)]))
        wrong = out.predicted != out.labels
        loss = -np.log(np.clip(out.true_prob.astype(np.float64), 1e-7, 1))
        _tally(tables_many, "class", out.labels, wrong, loss, out.segments)
    for name in SplitSamples._FIELDS:
        assert np.array_equal(one.column(name), many.column(name)), name
    assert np.array_equal(one.ids, many.ids)
    assert list(tables_one) == list(tables_many) and tables_one == tables_many  # bit for bit, same order


def test_rec16_merged_adds_of_known_ids_take_one_lookup():
    """Every id known and none twice in the merged hand-overs: one add, not one per block."""
    rng = np.random.default_rng(0)
    store = SplitSamples()
    first = SampleOutputs("train", 0, np.arange(120, dtype=np.uint64), np.zeros(120, int), np.ones(120), np.zeros(120))
    store.add(first)
    later = []
    for order in np.split(rng.permutation(120), 3):
        later.append(
            SampleOutputs("train", 1, order.astype(np.uint64), np.zeros(40, int), np.full(40, 0.5), np.ones(40, int))
        )
    (merged,) = merge_outputs(later)
    calls = []
    write = SplitSamples._write

    def counting(self, *args):
        calls.append(len(args[1]))
        return write(self, *args)

    SplitSamples._write = counting
    try:
        store.add(merged)
    finally:
        SplitSamples._write = write
    assert calls == [120]
    assert store.column("epochs").tolist() == [2] * 120 and store.column("previous_right").tolist() == [1] * 120


def test_rec16_weak_slice_with_slice_keys_takes_merged_hand_overs_one_by_one():
    rng = np.random.default_rng(3)
    hand_overs = [
        SampleOutputs(
            "val",
            0,
            np.arange(i * 50, i * 50 + 50, dtype=np.uint64),
            rng.integers(0, 4, 50),
            rng.random(50),
            rng.integers(0, 4, 50),
            slices=rng.choice(np.array(["a", "b", "c"]), 50),
        )
        for i in range(3)
    ]
    results = []
    for outputs in (hand_overs, merge_outputs(hand_overs)):
        check, run = WeakSlice(), RunState()
        run.samples = SampleStore()
        for out in outputs:
            run.samples.add(out)
            check.on_samples(out, run)
        rows = {k: [r.tolist() for r in v] for k, v in check._key_rows["val"].items()}
        results.append((check._tallies, rows))
    assert results[0] == results[1]


@pytest.mark.parametrize("keys", ["classes", "many", "strings"])
def test_rec16_tally_of_segments_equals_tallies_one_by_one(keys):
    """Few classes (one bincount over cells), many distinct keys (segment by segment) and keys
    that are not small integers (np.unique): the same table, bit for bit, keys in the same order."""
    rng = np.random.default_rng(7)
    segments = (50, 0, 70, 30)
    n = sum(segments)
    values = {
        "classes": rng.integers(0, 10, n),
        "many": rng.integers(0, 60_000, n),
        "strings": rng.choice(np.array(["b", "a", "c"]), n),
    }[keys]
    wrong, loss = rng.random(n) < 0.3, rng.exponential(1.0, n)
    merged: dict = {}
    _tally(merged, "slice", values, wrong, loss, segments)
    one: dict = {}
    start = 0
    for rows in segments:
        _tally(one, "slice", values[start : start + rows], wrong[start : start + rows], loss[start : start + rows])
        start += rows
    assert list(merged) == list(one) and merged == one
