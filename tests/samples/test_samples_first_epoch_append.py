"""A split's first epoch handed over in one run (`merge_outputs`: one hand-over, several
segments) is appended to the store at once, in the rows adding its hand-overs one by one gives
(each one's new ids in sorted order, after the earlier ones'): one sort, one insert and one
write, not one of each per hand-over. Where an id appears twice the hand-overs are still added
one by one."""

from __future__ import annotations

import numpy as np
import pytest

from mlcheck.samples import SampleOutputs, SplitSamples, merge_outputs, segment


def _hand_over(rng, epoch, ids, classes=10):
    n = len(ids)
    return SampleOutputs(
        split="train",
        epoch=epoch,
        ids=np.asarray(ids, np.uint64),
        labels=rng.integers(0, classes, n),
        true_prob=rng.random(n).astype(np.float32),
        predicted=rng.integers(0, classes, n),
        other_prob=rng.random(n).astype(np.float32),
        other_class=rng.integers(0, classes, n),
        positions=None,
    )


def _counting_writes(monkeypatch):
    calls: list[int] = []
    write = SplitSamples._write

    def counting(self, out, rows, repeated):
        calls.append(len(rows))
        return write(self, out, rows, repeated)

    monkeypatch.setattr(SplitSamples, "_write", counting)
    return calls


def _same(one: SplitSamples, many: SplitSamples) -> None:
    assert np.array_equal(one.ids, many.ids)  # the same row for each id
    for name in SplitSamples._FIELDS:
        assert np.array_equal(one.column(name), many.column(name)), name
    assert np.array_equal(one._keys, many._keys) and np.array_equal(one._rows, many._rows)


@pytest.mark.parametrize("seed", range(6))
def test_rec23_a_first_epoch_of_new_ids_is_appended_in_one_write_in_the_rows_one_by_one_gives(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    # 5 epochs of 4 hand-overs: every id new in the first (64-bit hashes, shuffled), then a new
    # id or two among known ones in later epochs (a data set that grew), never one id twice
    universe = rng.integers(0, 1 << 64, 400, dtype=np.uint64)
    epochs = []
    for epoch in range(5):
        seen = universe[: 300 + 20 * epoch]
        order = rng.permutation(seen)
        epochs.append([_hand_over(rng, epoch, part) for part in np.array_split(order, 4)])
    one = SplitSamples()
    for hand_overs in epochs:
        for out in hand_overs:
            one.add(out)
    calls = _counting_writes(monkeypatch)
    many = SplitSamples()
    for hand_overs in epochs:
        (merged,) = merge_outputs(hand_overs)
        many.add(merged)
        assert np.array_equal(many.rows_of(merged), np.concatenate([one.rows(p.ids) for p in segment(merged)]))
    assert calls == [300 + 20 * epoch for epoch in range(5)]  # one write a merged hand-over (main: 4 in epoch 0)
    _same(one, many)


def test_rec23_an_id_twice_in_a_merged_first_epoch_is_added_hand_over_by_hand_over(monkeypatch):
    """Identical rows share an id: where one id is in two hand-overs of the run, the later one
    reads what the earlier one wrote (its previous_right, its epochs count twice)."""
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 1 << 64, 120, dtype=np.uint64)
    parts = [ids[:40], np.concatenate([ids[40:79], ids[:1]]), ids[79:]]  # ids[0] in two hand-overs
    hand_overs = [_hand_over(rng, 0, p) for p in parts]
    one = SplitSamples()
    for out in hand_overs:
        one.add(out)
    calls = _counting_writes(monkeypatch)
    many = SplitSamples()
    (merged,) = merge_outputs(hand_overs)
    many.add(merged)
    assert calls == [40, 40, 41]
    _same(one, many)
    assert many.column("epochs")[many.rows(ids[:1])[0]] == 2


def test_rec23_an_id_twice_inside_one_hand_over_still_counts_twice():
    rng = np.random.default_rng(3)
    ids = np.array([5, 9, 5, 2], np.uint64)
    store = SplitSamples()
    store.add(_hand_over(rng, 0, ids))
    assert store.ids.tolist() == [2, 5, 9]  # new ids in sorted order
    assert store.column("epochs").tolist() == [1, 2, 1]
