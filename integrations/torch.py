"""`Trainable` implementations for PyTorch: plain `nn.Module`s with a loss and an optimizer
(`TorchTrainable`) and Lightning modules (`LightningTrainable`).

Both keep the user's model untouched: training happens only on `clone()`s (a deep copy of the
module together with its optimizer, so the optimizer state follows the copied parameters);
`forward`, `loss` and `input_gradient` run in inference mode and restore every submodule's
train/eval flag; `gradients` uses `torch.autograd.grad`, so no `.grad` is written, and puts
buffers (BatchNorm statistics) back afterwards; fetching batches restores the random state that
iterating a shuffled DataLoader consumes.

Example:
    trainable = TorchTrainable(model, nn.CrossEntropyLoss(), optimizer, train_loader)
    findings = OverfitBatch().preflight(PreflightContext(trainable))
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import itertools
import logging
import math
import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mlcheck import task as task_facts
from mlcheck.integrations.torch_layers import LayerRecorder
from mlcheck.integrations.torch_live import tensor_to_numpy
from mlcheck.layers import LayerObservation
from mlcheck.trainable import BatchUnsplit, CloneRefused, LossConfig, Trainable

__all__ = ["LightningTrainable", "TorchTrainable"]

logger = logging.getLogger(__name__)

#: Batch size used when the data are given as arrays or a Dataset rather than a DataLoader.
DEFAULT_BATCH_SIZE = 32

_INPUT_KEYS = ("x", "input", "inputs", "features", "image", "images", "data", "input_ids")
_TARGET_KEYS = ("y", "label", "labels", "target", "targets")

# Loss classes by name and whether they apply softmax/sigmoid themselves (None: not applicable).
# Subclasses first where one derives from another.
_LOSS_CLASSES: tuple[tuple[type, str, bool | None], ...] = (
    (nn.CrossEntropyLoss, "cross_entropy", True),
    (nn.NLLLoss, "nll", False),
    (nn.BCEWithLogitsLoss, "bce_with_logits", True),
    (nn.BCELoss, "bce", False),
    (nn.MultiLabelSoftMarginLoss, "multilabel_soft_margin", True),
    (nn.KLDivLoss, "kl_div", False),
    (nn.MSELoss, "mse", None),
    (nn.L1Loss, "mae", None),
    (nn.HuberLoss, "huber", None),
    (nn.SmoothL1Loss, "smooth_l1", None),
    (nn.PoissonNLLLoss, "poisson", None),
)
_LOSS_FUNCTIONS: dict[Callable[..., Any], tuple[str, bool | None]] = {
    F.cross_entropy: ("cross_entropy", True),
    F.nll_loss: ("nll", False),
    F.binary_cross_entropy_with_logits: ("bce_with_logits", True),
    F.binary_cross_entropy: ("bce", False),
    F.mse_loss: ("mse", None),
    F.l1_loss: ("mae", None),
    F.huber_loss: ("huber", None),
    F.smooth_l1_loss: ("smooth_l1", None),
    F.poisson_nll_loss: ("poisson", None),
}
_FROM_LOGITS = {name: logits for _, name, logits in _LOSS_CLASSES}

#: Relative tolerance for a measured loss to be a common loss (or a constant multiple of it):
#: the same float32 computation agrees to ~1e-6, so 1e-4 leaves room for the order of a sum.
_MATCH_TOL = 1e-4
#: Items of a module's plain list/tuple/dict attribute looked at for unregistered layers (a list
#: of layers is short; a list of a data set's tensors is not worth walking whole).
_MAX_HELD_ITEMS = 1000
#: What torch's elementwise losses (mse_loss, l1_loss, smooth_l1_loss, huber_loss) warn when
#: they broadcast outputs and targets of different shapes.
_BROADCAST_WARNING = "different to the input size"
#: An inline label smoothing is solved only where the plain and the uniform cross-entropy differ by
#: this many match tolerances: a smoothing 0.1 away then moves each part's loss past a match
#: (fresh outputs are near uniform: 0.009 apart at ln(10) on digits, 40 tolerances).
_SMOOTHING_RESOLUTION = 10


# -- small helpers ----------------------------------------------------------------------------


@contextlib.contextmanager
def _mode(module: nn.Module, train: bool) -> Iterator[None]:
    """Puts `module` in train or eval mode and restores every submodule's own flag after."""
    flags = [(m, m.training) for m in module.modules()]
    module.train(train)
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def _buffers_kept(module: nn.Module) -> Iterator[None]:
    """Restores buffers (BatchNorm running statistics, counters) after a train-mode forward."""
    saved = [(b, b.detach().clone()) for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)


def _torch_rng_state() -> Any:
    cuda = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    return (torch.get_rng_state(), cuda, np.random.get_state(), random.getstate())


def _set_torch_rng_state(state: Any) -> None:
    cpu, cuda, np_state, py_state = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)
    np.random.set_state(np_state)
    random.setstate(py_state)


@contextlib.contextmanager
def _rng_kept() -> Iterator[None]:
    state = _torch_rng_state()
    try:
        yield
    finally:
        _set_torch_rng_state(state)


def _first_tensor(out: Any) -> torch.Tensor:
    """The model's prediction from whatever forward returned (tensor, tuple, dict, `.logits`)."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits") and isinstance(out.logits, torch.Tensor):
        return out.logits
    if isinstance(out, dict):
        for key in ("logits", "output", "outputs", "y_hat", "preds"):
            if isinstance(out.get(key), torch.Tensor):
                return out[key]
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
    raise TypeError(f"the model's forward returned {type(out).__name__}, not a tensor")


#: what Lightning raises when a module's `trainer` (or `optimizers()`, `lr_schedulers()`) is read
#: while it is attached to none (lightning/pytorch/core/module.py), as on a copy trained on the side
_DETACHED = "is not attached to a `Trainer`"


def _loss_value(out: Any) -> torch.Tensor:
    """The loss from what a loss function or `training_step` returned."""
    if isinstance(out, dict):
        out = out.get("loss")
    if out is None:
        raise ValueError("training_step returned None (the batch was skipped); pre-flight checks need a loss")
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(out, dtype=torch.float32)
    return out


# the way out when a model or loss is written for the batch or the outputs as they come
_CONVENTION_FIX = (
    "wrap them in mlcheck_target(): a model taking the inputs and returning the prediction, a loss "
    "taking (prediction, targets) (docs/sanity.md, 'What mlcheck passes your model')"
)


def _returned(out: Any) -> str | None:
    """What forward returned, where the checks take one tensor of it: "tuple of 2", "dict with
    keys ['h', 'logits']" (None for a tensor)."""
    if isinstance(out, torch.Tensor):
        return None
    if isinstance(out, dict):
        return f"dict with keys {sorted(map(str, out))}"
    if isinstance(out, (list, tuple)):
        return f"{type(out).__name__} of {len(out)}"
    return type(out).__name__


def _batch_convention(batch: Any) -> tuple[str | None, str | None]:
    """(inputs, targets): where `_split_batch` takes them from, for a batch whose layout the
    user may not expect to be taken apart (a dict, or more than (inputs, targets)); None each
    for a tensor or an (x, y) pair."""
    if isinstance(batch, dict):
        x_key = next((k for k in _INPUT_KEYS if k in batch), None)
        y_key = next((k for k in _TARGET_KEYS if k in batch), None)
        keys = sorted(map(str, batch))
        return (
            f"batch[{x_key!r}] alone (of the batch's keys {keys})" if x_key else None,
            f"batch[{y_key!r}]" if y_key else "no targets (no key named like them)",
        )
    if isinstance(batch, (list, tuple)) and len(batch) > 2:
        return f"the batch's first element alone (of {len(batch)})", "the batch's last element"
    return None, None


def _is_array(value: Any) -> bool:
    return isinstance(value, (torch.Tensor, np.ndarray))


def _as_tensor(value: Any) -> torch.Tensor:
    t = torch.as_tensor(value)
    if t.dtype == torch.float64:  # numpy's default float; torch models expect float32
        t = t.float()
    return t


def _rows_followed(value: Any, rows: int | None, new_rows: int) -> Any:
    """`value` cut (or cycled) to `new_rows` rows by position when it is a per-row tensor or
    array of the batch (its leading size is the inputs' `rows`), else as it is. The checks build
    batches from a batch's first rows (or its halves), so a third element such as a mask or a
    group key keeps as many rows as the inputs it is paired with."""
    if rows is None or new_rows == rows or not _is_array(value) or value.ndim == 0 or len(value) != rows:
        return value
    index = np.arange(new_rows) % rows
    if isinstance(value, torch.Tensor):
        return value[torch.as_tensor(index, device=value.device)]
    return value[index]


#: empty batches passed over at the start of a loader before the pre-flight checks give up on
#: it: a loader that yields nothing else has no data for them
_MAX_EMPTY_BATCHES = 16


@dataclasses.dataclass(frozen=True)
class EmptyBatches:
    """The empty batches `_nonempty_batches` passed over before it found none with samples."""

    count: int
    shape: tuple[int, ...]  # the first one's inputs
    exhausted: bool  # the loader ended (True) or the search gave up (False)

    def reason(self, split: str) -> str:
        what = "training" if split == "train" else "validation"
        if self.exhausted:
            held = f"every one of its {self.count} {what} batches holds 0 samples (inputs of shape {self.shape}): "
            held += "there is nothing to check or train on"
        else:
            held = f"its first {self.count} {what} batches hold 0 samples (inputs of shape {self.shape}), and "
            held += "mlcheck looks no further for one to check"
        return f"{held}; {EMPTY_BATCHES_FIX}"


#: what to do about batches of 0 samples, wherever they are named
EMPTY_BATCHES_FIX = (
    "drop empty batches from the data (a Dataset or sampler that yields no row, a batch_sampler with an "
    "empty list, a slice past the end of the arrays)"
)


def _nonempty_batches(batches: Iterator[Any], n: int) -> tuple[list[Any], EmptyBatches | None]:
    """Up to `n` batches of `batches` that hold samples: an empty one (a `DataLoader` whose
    last, or first, batch has 0 rows; a step that returns None on it) gives no loss and no
    labels to judge, and failed the train-start checks with an internal error. Also, when none
    was found but empty ones were passed over, how many (for the user's error: "the training
    data is empty" was untrue of 20 empty batches before the real ones)."""
    out: list[Any] = []
    passed, shape, exhausted = 0, None, False
    while len(out) < n and passed <= _MAX_EMPTY_BATCHES:
        batch = next(batches, _END)
        if batch is _END:
            exhausted = True
            break
        if is_empty_batch(batch):
            passed += 1
            shape = shape or inputs_shape(batch)
        else:
            out.append(batch)
    empty = EmptyBatches(passed, shape, exhausted) if passed and not out and shape is not None else None
    return out, empty


_END = object()


def inputs_shape(batch: Any) -> tuple[int, ...]:
    """The shape of the batch's inputs, () where they are not a tensor."""
    x = _split_batch(batch)[0]
    return tuple(x.shape) if isinstance(x, torch.Tensor) else ()


def is_empty_batch(batch: Any) -> bool:
    """Whether the batch's inputs are a tensor of 0 rows."""
    try:
        x = _split_batch(batch)[0]
    except TypeError:
        return False
    return isinstance(x, torch.Tensor) and x.ndim >= 1 and x.shape[0] == 0


def _split_batch(batch: Any) -> tuple[Any, Any, Callable[[Any, Any], Any]]:
    """(inputs, targets, rebuild): rebuild(x, y) makes a batch of the same structure.

    A list or tuple gives its first element as the inputs and its last as the targets, as the
    callbacks' `batch_to_arrays` does; the elements between (a mask, a group key) and a dict's
    other values that have a row per input row follow the rows of the rebuilt inputs.
    """
    if isinstance(batch, torch.Tensor):
        return batch, None, lambda x, y: x
    if isinstance(batch, (list, tuple)) and len(batch) >= 1:
        kind = type(batch)
        if len(batch) == 1:
            return batch[0], None, lambda x, y: kind([x]) if kind in (list, tuple) else (x,)
        rows = len(batch[0]) if _is_array(batch[0]) and batch[0].ndim else None
        middle = list(batch[1:-1])

        def rebuild_sequence(x: Any, y: Any) -> Any:
            kept = [_rows_followed(v, rows, len(x)) for v in middle] if _is_array(x) and x.ndim else middle
            items = [x, *kept, y]
            return kind(items) if kind in (list, tuple) else (*items,)

        return batch[0], batch[-1], rebuild_sequence
    if isinstance(batch, dict):
        x_key = next((k for k in _INPUT_KEYS if k in batch), None)
        y_key = next((k for k in _TARGET_KEYS if k in batch), None)
        if x_key is None:
            keys = sorted(map(str, batch))
            raise BatchUnsplit(
                f"cannot tell inputs from the batch keys {keys}; name them one of {', '.join(_INPUT_KEYS)} "
                f"(and the targets one of {', '.join(_TARGET_KEYS)})",
                reason=f"the training batch is a dict whose keys ({', '.join(keys)}) name none of the inputs "
                "mlcheck knows, and these checks call a copy of the model on the inputs alone",
                hint=f"To run these checks, name the inputs' key one of {', '.join(_INPUT_KEYS)} and the targets' "
                f"one of {', '.join(_TARGET_KEYS)} (a model that takes several inputs: give it one dict or "
                "tensor under that key), or check the model before training with `mlcheck sanity` and a "
                "`mlcheck_target()` that wraps it to take one input (docs/sanity.md).",
            )
        x_rows = len(batch[x_key]) if _is_array(batch[x_key]) and batch[x_key].ndim else None

        def rebuild(x: Any, y: Any) -> dict:
            new_rows = len(x) if _is_array(x) and x.ndim else x_rows
            out = {k: _rows_followed(v, x_rows, new_rows) for k, v in batch.items()}  # type: ignore[arg-type]
            out[x_key] = x
            if y_key is not None:
                out[y_key] = y
            return out

        return batch[x_key], batch.get(y_key) if y_key else None, rebuild
    raise TypeError(f"unsupported batch type {type(batch).__name__}")


def _batch_middle(batch: Any) -> list[Any]:
    """The elements of a list or tuple batch between its inputs and its targets (`lengths` of
    an `(x, lengths, y)` batch); [] for any other batch."""
    if isinstance(batch, (list, tuple)) and len(batch) > 2:
        return list(batch[1:-1])
    return []


def _model_args(model: Callable[..., Any], batch: Any) -> tuple[Any, ...]:
    """What the checks call `model` with for `batch`: its inputs alone, or, where the model's
    forward cannot be called with them alone (its signature refuses one argument, as calling it
    would raise TypeError) and takes the batch's elements between inputs and targets as well,
    the inputs and those elements: `forward(x, lengths)` fed `(x, lengths, y)` batches. Read
    from the signature, so the model is not run once more to find out."""
    x = _split_batch(batch)[0]
    middle = _batch_middle(batch)
    if not middle:
        return (x,)
    try:
        signature = inspect.signature(model.forward if isinstance(model, nn.Module) else model)
    except (TypeError, ValueError):  # a builtin or a C extension: called as before
        return (x,)
    try:
        signature.bind(x)
        return (x,)
    except TypeError:
        pass
    try:
        signature.bind(x, *middle)
    except TypeError:
        return (x,)  # it takes neither: calling it with the inputs alone gives the user's own error
    return (x, *middle)


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def _loader(data: Any, batch_size: int) -> Any:
    """Something iterable over batches, from a DataLoader, a Dataset, (X, y) or a data module."""
    from torch.utils.data import DataLoader, Dataset, TensorDataset

    if data is None:
        return None
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)) and 1 <= len(data) <= 3 and all(map(_is_array, data)):
        tensors = [_as_tensor(v) for v in data]
        if len({len(t) for t in tensors}) == 1:
            return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=False)
    if _is_array(data):
        return DataLoader(TensorDataset(_as_tensor(data)), batch_size=batch_size, shuffle=False)
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        return DataLoader(data, batch_size=batch_size, shuffle=False)
    if hasattr(data, "__iter__"):
        return data
    raise TypeError(
        f"train/val data of type {type(data).__name__} is not supported; pass a DataLoader, a "
        "Dataset, a LightningDataModule or (X, y) arrays"
    )


def _is_datamodule(data: Any) -> bool:
    return hasattr(data, "train_dataloader") and hasattr(data, "setup") and not hasattr(data, "training_step")


# -- the shared implementation ----------------------------------------------------------------


class _TorchBase(Trainable):
    """What plain torch and Lightning share: data, modes, gradients, random state."""

    framework = "torch"

    def __init__(
        self,
        module: nn.Module,
        train_data: Any,
        val_data: Any,
        batch_size: int,
        datamodule: Any = None,
    ):
        if _is_datamodule(train_data) and datamodule is None:
            datamodule, train_data = train_data, None
        self.module = module
        self.batch_size = batch_size
        self.datamodule = datamodule
        self._setup_done = False
        self._data = {"train": train_data, "val": val_data}
        self._cache: dict[str, list[Any]] = {}  # shared with clones (data never change)
        self._template: Any = None
        self._loss_config: LossConfig | None = None
        self.optimizers: list[torch.optim.Optimizer] = []

    # -- data ----------------------------------------------------------------------------------

    def _source(self, split: str) -> Any:
        data = self._data.get(split)
        if data is not None or self.datamodule is None:
            return _loader(data, self.batch_size)
        if not self._setup_done:
            if hasattr(self.datamodule, "prepare_data"):
                self.datamodule.prepare_data()
            self.datamodule.setup("fit")
            self._setup_done = True
        return self._hook_loader(self.datamodule, split)

    def _hook_loader(self, owner: Any, split: str) -> Any:
        hook = "train_dataloader" if split == "train" else "val_dataloader"
        try:
            return _loader(getattr(owner, hook)(), self.batch_size)
        except Exception:  # the hook is not implemented (Lightning raises its own error)
            return None

    def batches(self, split: str = "train", n: int = 1) -> list[Any]:
        cached = self._cache.get(split)
        if cached is not None and (len(cached) >= n or self._cache.get(split + ":done")):
            return cached[:n]
        with _rng_kept():  # a shuffled loader draws its seed from torch's generator
            source = self._source(split)
            fetched, empty = ([], None) if source is None else _nonempty_batches(iter(source), n)
        self._cache[split] = fetched
        if empty is not None:
            self._cache[split + ":empty"] = [empty]
        if len(fetched) < n:
            self._cache[split + ":done"] = []
        return fetched[:n]

    def no_batches_reason(self, split: str = "train") -> str | None:
        empty = self._cache.get(split + ":empty")
        return empty[0].reason(split) if empty else None

    def to_numpy(self, batch: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        x, y, _ = _split_batch(batch)
        return (
            tensor_to_numpy(x) if isinstance(x, torch.Tensor) else None,
            tensor_to_numpy(y) if isinstance(y, torch.Tensor) else None,
        )

    def input_kind(self) -> str | None:
        """ "embedding_ids" when the module holds an embedding (Embedding, EmbeddingBag or a
        subclass) and the training inputs are integer tensors, else None: torch embeddings take
        integer ids only, so float inputs are never their ids (`mlcheck.task`)."""
        kind = task_facts.input_kind_of_model((type(m) for m in self.module.modules()), ordered=False)
        if kind is None:
            return None
        found = self.batches("train", 1)
        x = _split_batch(found[0])[0] if found else None
        integer = isinstance(x, torch.Tensor) and not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)
        return kind if integer else None

    def from_numpy(self, inputs: np.ndarray, targets: np.ndarray | None) -> Any:
        template = self._template if self._template is not None else self._first_batch()
        x0, y0, rebuild = _split_batch(template)
        x = torch.as_tensor(np.ascontiguousarray(inputs))
        if isinstance(x0, torch.Tensor):
            x = x.to(x0.dtype)
        y = None
        if targets is not None:
            y = torch.as_tensor(np.ascontiguousarray(targets))
            if isinstance(y0, torch.Tensor):
                y = y.to(y0.dtype)
        return rebuild(x, y)

    def _first_batch(self) -> Any:
        found = self.batches("train", 1) or self.batches("val", 1)
        if not found:
            raise ValueError("no training data: pass train_data (a DataLoader or (X, y))")
        self._template = found[0]
        return self._template

    def _device(self) -> torch.device:
        for p in self.module.parameters():
            return p.device
        return torch.device("cpu")

    def _inputs(self, batch: Any) -> Any:
        x, _, _ = _split_batch(_to_device(batch, self._device()))
        return x

    # -- what subclasses provide -----------------------------------------------------------------

    def _call(self, module: nn.Module, batch: Any) -> Any:
        """What `module` returns on the batch's inputs (`_model_args`), on the model's device."""
        return module(*_model_args(module, _to_device(batch, self._device())))

    def _outputs(self, batch: Any) -> torch.Tensor:
        return self._prediction(self._call(self.module, batch))

    def _prediction(self, out: Any) -> torch.Tensor:
        """The tensor the checks judge of what forward returned; what that was is kept for
        `call_convention`."""
        self._returned = _returned(out)
        return _first_tensor(out)

    def batch_keys(self, batch: Any) -> str | None:
        if not isinstance(batch, dict):
            return None
        x_key = next((k for k in _INPUT_KEYS if k in batch), None)
        y_key = next((k for k in _TARGET_KEYS if k in batch), None)
        if x_key is None:
            return None
        return f"inputs batch[{x_key!r}], targets " + (f"batch[{y_key!r}]" if y_key else "none")

    def call_convention(self, stage: str, batch: Any) -> str | None:
        inputs, _ = _batch_convention(batch)
        if stage == "forward" and inputs:
            return f"mlcheck called the model with {inputs}; {_CONVENTION_FIX}"
        return None

    def _loss_tensor(self, batch: Any) -> torch.Tensor:
        raise NotImplementedError

    def _copy(self) -> _TorchBase:
        """A new instance of the same kind around copies of module and optimizers."""
        raise NotImplementedError

    # -- model ---------------------------------------------------------------------------------

    def clone(self) -> _TorchBase:
        other = self._copy()
        other._data, other._cache, other._template = self._data, self._cache, self._template
        other.datamodule, other._setup_done = self.datamodule, self._setup_done
        other._loss_config = self._loss_config
        return other

    def forward(self, batch: Any) -> np.ndarray:
        with _mode(self.module, False), torch.no_grad():
            return self._outputs(batch).detach().float().cpu().numpy()

    def loss(self, batch: Any) -> float:
        with _mode(self.module, False), torch.no_grad():
            return float(self._loss_tensor(batch))

    def train_step(self, batch: Any) -> float:
        with _mode(self.module, True):
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            loss = self._loss_tensor(batch)
            if loss.requires_grad:  # a wholly frozen model has nothing to step
                loss.backward()
                for opt in self.optimizers:
                    if _needs_closure(opt):
                        opt.step(lambda: self._closure_loss(batch))
                    else:
                        opt.step()
        return float(loss.detach())

    def _closure_loss(self, batch: Any) -> torch.Tensor:
        """The closure an optimizer that re-evaluates the loss takes (`torch.optim.LBFGS`, as
        Lightning hands it one): the gradients zeroed, the batch's loss and its backward."""
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        loss = self._loss_tensor(batch)
        loss.backward()
        return loss

    def batch_norm_layers(self) -> list[str]:
        # SyncBatchNorm normalises over every process's batch: its batch is not the one seen here
        return [
            name
            for name, m in self.module.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm) and m.training
        ]

    def layer_step(self, batch: Any) -> LayerObservation:
        recorder = LayerRecorder(self.module)
        recorder.start()
        try:
            self.train_step(batch)
        except BaseException:
            recorder.abort()
            raise
        return recorder.finish(step=0)

    def gradients(self, batch: Any) -> dict[str, np.ndarray | None]:
        named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        with _mode(self.module, True), _buffers_kept(self.module):
            loss = self._loss_tensor(batch)
            if not loss.requires_grad:
                return {n: None for n, _ in named}
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
        return {n: None if g is None else tensor_to_numpy(g) for (n, _), g in zip(named, grads)}

    def input_gradient(self, batch: Any, index: int) -> np.ndarray:
        x = self._inputs(batch)
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError("input_gradient needs floating-point tensor inputs")
        x = x.detach().clone().requires_grad_(True)
        x_, y_, rebuild = _split_batch(_to_device(batch, self._device()))
        with _mode(self.module, False), torch.enable_grad():
            out = self._outputs(rebuild(x, y_))
            (grad,) = torch.autograd.grad(out[index].sum(), x, allow_unused=True)
        if grad is None:
            return np.zeros(tuple(x.shape), dtype=np.float32)
        return tensor_to_numpy(grad)

    def parameters(self) -> dict[str, np.ndarray]:
        return {n: tensor_to_numpy(p).copy() for n, p in self.module.named_parameters() if p.requires_grad}

    def frozen_parameters(self) -> dict[str, tuple[int, ...]] | None:
        return {n: tuple(p.shape) for n, p in self.module.named_parameters() if not p.requires_grad}

    def unregistered_parameters(self, batch: Any) -> dict[str, int] | None:
        registered = {id(p) for p in self.module.parameters()}
        held: dict[str, list[nn.Parameter]] = {}
        for prefix, module in self.module.named_modules():
            for attr, value in vars(module).items():
                if isinstance(value, dict):
                    items = list(itertools.islice(value.values(), _MAX_HELD_ITEMS))
                elif isinstance(value, (list, tuple)):
                    items = list(value[:_MAX_HELD_ITEMS])
                else:
                    continue
                params = [
                    p
                    for item in items
                    if isinstance(item, nn.Module)
                    for p in item.parameters()
                    if p.requires_grad and id(p) not in registered
                ]
                if params:
                    held[f"{prefix}.{attr}" if prefix else attr] = params
        if not held:
            return {}
        flat = [p for params in held.values() for p in params]
        with _mode(self.module, True), _buffers_kept(self.module):
            loss = self._loss_tensor(batch)
            if not loss.requires_grad:
                return {}
            grads = iter(torch.autograd.grad(loss, flat, allow_unused=True))
        reached = {path: sum(next(grads) is not None for _ in params) for path, params in held.items()}
        return {path: n for path, n in reached.items() if n}

    def optimizer_parameters(self) -> set[str] | None:
        if not self.optimizers:
            return None
        ids = grouped_parameter_ids(self.optimizers)
        return {n for n, p in self.module.named_parameters() if id(p) in ids}

    def get_lr(self) -> float | None:
        if not self.optimizers:
            return None
        group = self.optimizers[0].param_groups[0]
        # A scheduler records the configured rate as "initial_lr" (warmup may have lowered "lr").
        return float(group.get("initial_lr", group["lr"]))

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers:
            for group in opt.param_groups:
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(lr)
                else:
                    group["lr"] = lr
                if "initial_lr" in group:  # what get_lr reports
                    group["initial_lr"] = lr

    def get_weight_decay(self) -> float | None:
        if not self.optimizers:
            return None
        value = self.optimizers[0].param_groups[0].get("weight_decay")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def set_weight_decay(self, value: float) -> None:
        for opt in self.optimizers:
            for group in opt.param_groups:
                if "weight_decay" in group:
                    group["weight_decay"] = value

    def rng_state(self) -> Any:
        """The random generators, and the running statistics of the module's normalization layers:
        a forward pass in training mode updates them, which the checks' calls do on a module whose
        `train()` ignores `mode=False` (the run would otherwise go on with other statistics)."""
        stats = [
            (buffer, buffer.detach().clone())
            for m in self.module.modules()
            if isinstance(m, torch.nn.modules.batchnorm._NormBase)
            for buffer in m.buffers(recurse=False)
        ]
        return _torch_rng_state(), stats

    def set_rng_state(self, state: Any) -> None:
        rng, stats = state
        _set_torch_rng_state(rng)
        with torch.no_grad():
            for buffer, saved in stats:
                buffer.copy_(saved)

    # -- loss configuration ------------------------------------------------------------------------

    def _declared_loss(self) -> tuple[str | None, bool | None]:
        return None, None

    def _loss_modules(self) -> list[nn.Module]:
        """The loss modules the run holds (`nn.CrossEntropyLoss(...)`); none by default."""
        return []

    def _label_smoothing(self, out: torch.Tensor, y: Any, measured: float | None) -> float | None:
        """The `label_smoothing` of the cross-entropy module the loss is
        (`nn.CrossEntropyLoss(label_smoothing=0.1)`); None without one, where several disagree,
        or where the step's loss on the batch is the plain cross-entropy and not the smoothed one
        (a module held but not called). A loss that matches neither (the module's loss plus a
        penalty) keeps the module's value."""
        modules = [m for m in self._loss_modules() if isinstance(m, nn.CrossEntropyLoss)]
        values = {float(m.label_smoothing) for m in modules}
        if len(values) != 1:
            return None
        value = values.pop()
        if not 0 < value <= 1:
            return None
        if measured is not None and isinstance(y, torch.Tensor):
            plain, smoothed = (_module_cross_entropy(modules[0], out, y, s) for s in (0.0, value))
            if _matches(measured, plain) and not _matches(measured, smoothed):
                return None
        return value

    def loss_config(self) -> LossConfig:
        if self._loss_config is None:
            with _rng_kept():
                self._loss_config = self._detect_loss_config()
        return self._loss_config

    def _detect_loss_config(self) -> LossConfig:
        batch = _to_device(self._first_batch(), self._device())
        x, y, _ = _split_batch(batch)
        with _mode(self.module, False), torch.no_grad():
            out, last, before_last = self._outputs_and_last_module(batch)
        units = int(out.shape[-1]) if out.ndim >= 2 else 1
        activation = _activation(out, last)
        name, from_logits = self._declared_loss()
        if y is None and name is None:
            reconstruction = self._reconstruction_loss(batch, x, out)
            if reconstruction is not None:
                return LossConfig(
                    loss=reconstruction,
                    from_logits=_FROM_LOGITS.get(reconstruction),
                    output_activation=activation,
                    output_units=units,
                    task=task_facts.from_loss(reconstruction, units).task,
                    target_is_input=True,
                )
        measured, broadcast_warning = self._measured_loss(batch) if isinstance(y, torch.Tensor) else (None, None)
        candidates = _candidate_losses(out, y) if measured is not None else []
        weights = inline_smoothing = None
        if name is None and measured is not None:
            name = self._fingerprint(batch, out, measured, candidates, activation)
            if name is None:
                weights = self._weighted_by_buffer(batch, out, y, measured)
                name = "cross_entropy" if weights is not None else None
            if name is None:
                inline_smoothing = self._inline_smoothing(batch, out, y, measured)
                name = "cross_entropy" if inline_smoothing is not None else None
            from_logits = _FROM_LOGITS.get(name) if name else None
        return LossConfig(
            loss=name,
            from_logits=from_logits,
            output_activation=activation,
            output_units=units,
            task=task_facts.from_loss(name, units).task,
            # a dropout module that produced the outputs (identity here, in inference mode)
            output_dropout=float(last.p) if isinstance(last, nn.modules.dropout._DropoutNd) else None,
            output_normalisation=_output_normalisation(last, before_last),
            summed_over=_summed_over(measured, candidates, name, out),
            label_smoothing=(
                inline_smoothing
                if inline_smoothing is not None
                else self._label_smoothing(out, y, measured)
                if name == "cross_entropy"
                else None
            ),
            class_weights=weights,
            broadcast_warning=broadcast_warning,
            unmatched=name is None and bool(candidates),
            class_axis_misread=_class_axis_misread(out, y, last, measured)
            if name in ("cross_entropy", "nll")
            else None,
        )

    def _weighted_by_buffer(self, batch: Any, out: torch.Tensor, y: Any, measured: float) -> tuple[float, ...] | None:
        """The module buffer that the loss passes as a cross-entropy's class weights
        (`F.cross_entropy(out, y, weight=self.class_w)` inside the step, where no loss object
        holds them): a 1-D floating buffer of one value per output unit, outside normalisation
        layers, with which the weighted cross-entropy is the measured loss on the batch and on
        each of its quarters (a coincidence on one value is not taken). None where none is."""
        if out.ndim != 2 or out.shape[1] < 2 or not isinstance(y, torch.Tensor) or y.is_floating_point():
            return None
        norms = {
            id(b)
            for m in self.module.modules()
            if isinstance(m, nn.modules.batchnorm._NormBase)
            for b in m.buffers(recurse=False)
        }
        found = [
            b
            for b in self.module.buffers()
            if id(b) not in norms and b.ndim == 1 and b.is_floating_point() and b.numel() == out.shape[1]
        ]
        if not found:
            return None
        parts = self._parts(batch, len(out)) or []
        for buffer in found:
            w = buffer.detach().float().to(out.device)
            if not bool(torch.isfinite(w).all()) or not bool((w >= 0).all()) or bool((w == w[0]).all()):
                continue  # equal weights are the plain cross-entropy, which the fingerprint names

            def weighted(o: torch.Tensor, t: torch.Tensor, w: torch.Tensor = w) -> float:
                return float(F.cross_entropy(o.float(), t.long(), weight=w))

            try:
                pairs = [(measured, weighted(out, y))] + [(loss, weighted(o, t)) for loss, o, t in parts]
            except Exception:  # labels out of range for this buffer: not its weights
                continue
            if all(math.isclose(a, b, rel_tol=_MATCH_TOL, abs_tol=1e-6) for a, b in pairs):
                return tuple(float(v) for v in w.cpu().tolist())
        return None

    def _inline_smoothing(self, batch: Any, out: torch.Tensor, y: Any, measured: float) -> float | None:
        """The `label_smoothing` of a cross-entropy computed inline
        (`F.cross_entropy(out, y, label_smoothing=0.9)` in the step, where no loss module holds
        it): the smoothed loss is (1 - s) x the cross-entropy plus s x the mean over classes of
        -log p, so s solves that line on the batch, and is taken only where the same s gives the
        measured loss on each quarter of the batch too (a coincidence on one value is not taken)
        and lies in (0, 1]. None where none does."""
        if out.ndim != 2 or out.shape[1] < 2 or not isinstance(y, torch.Tensor) or y.is_floating_point():
            return None

        def solved(o: torch.Tensor, t: torch.Tensor, loss: float) -> float | None:
            log_p = F.log_softmax(o.float(), dim=1)
            plain = float(F.nll_loss(log_p, t.long()))
            uniform = float(-log_p.mean(dim=1).mean())
            if not math.isfinite(plain) or not math.isfinite(uniform):
                return None
            if abs(uniform - plain) <= _SMOOTHING_RESOLUTION * _MATCH_TOL * max(plain, 1.0):
                return None  # outputs too uniform for the matches to tell one smoothing from another
            return (loss - plain) / (uniform - plain)

        try:
            value = solved(out, y, measured)
            parts = self._parts(batch, len(out))
        except Exception:  # labels out of range: not a cross-entropy over these outputs
            return None
        if value is None or not 1e-3 < value <= 1 + _MATCH_TOL or not parts:
            return None
        for loss, o, t in parts:
            try:
                expected = float(F.cross_entropy(o.float(), t.long(), label_smoothing=min(value, 1.0)))
            except Exception:
                return None
            if not _matches(loss, expected):
                return None
        return round(min(value, 1.0), 4)

    def _reconstruction_loss(self, batch: Any, x: Any, out: torch.Tensor) -> str | None:
        """The common loss of the outputs against the inputs themselves that the model's own loss
        on a batch of inputs alone (`x`, `(x,)`) equals, exactly (`_MATCH_TOL`): an autoencoder's
        `F.binary_cross_entropy(decoder(encoder(x)), x)` or `F.mse_loss(recon, x)`; None where
        the batch is no floating-point tensor of the outputs' size, or no such loss matches (a
        loss with terms of its own, a VAE's KL, keeps its floor unknown)."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() != out.numel():
            return None
        measured, _ = self._measured_loss(batch)
        if measured is None:
            return None
        return next((name for name, value in _candidate_losses(out.detach(), x) if _matches(measured, value)), None)

    def _measured_loss(self, batch: Any) -> tuple[float | None, str | None]:
        """The model's own loss on the batch, in inference mode (None when it fails on this
        batch, e.g. labels out of range), and torch's warning that the loss broadcast outputs and
        targets of different shapes, where it raised one (`LossConfig.broadcast_warning`)."""
        try:
            with _mode(self.module, False), torch.no_grad(), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)  # also where the user's run already raised it
                value = float(self._loss_tensor(batch))
        except Exception:
            return None, None
        return value, next((str(w.message) for w in caught if _BROADCAST_WARNING in str(w.message)), None)

    def _outputs_and_last_module(self, batch: Any) -> tuple[torch.Tensor, nn.Module | None, nn.Module | None]:
        """The outputs, the last leaf module called when its output is the model's output, and
        the leaf module called before that one (None where the last is not known)."""
        calls: list[tuple[nn.Module, Any]] = []
        leaves = [m for m in self.module.modules() if not list(m.children())]
        handles = [m.register_forward_hook(lambda m, i, o: calls.append((m, o))) for m in leaves]
        try:
            out = self._outputs(batch)
        finally:
            for h in handles:
                h.remove()
        if calls and _is_reshaped(_first_tensor_or_none(calls[-1][1]), out):
            return out, calls[-1][0], calls[-2][0] if len(calls) >= 2 else None
        return out, None, None

    def _fingerprint(
        self,
        batch: Any,
        out: torch.Tensor,
        measured: float,
        candidates: list[tuple[str, float]],
        activation: str | None,
    ) -> str | None:
        """Names the loss (`measured`, the model's own on this batch) by matching its value against
        the common losses on it (`candidates`): exact matches first, then a constant multiple (e.g.
        `100 * F.cross_entropy(...)`), checked on each quarter of the batch so a class-weighted loss
        does not pass for a scaled one."""
        if activation == "log_softmax":  # CE over log-probabilities equals NLL; call it NLL
            candidates = sorted(candidates, key=lambda c: c[0] != "nll")
        for name, value in candidates:
            if math.isclose(measured, value, rel_tol=_MATCH_TOL, abs_tol=1e-6):
                return name
        summed = _summed_match(measured, candidates, out)
        if summed is not None:
            return summed  # loss-at-init names the sum (its halves add up)
        parts = self._parts(batch, len(out))
        if parts is None:
            return None
        scaled = []
        for name, value in candidates:
            if value <= 1e-8:
                continue
            ratios = [measured / value]
            for loss_part, out_part, y_part in parts:
                ref = dict(_candidate_losses(out_part, y_part)).get(name)
                if ref is None or ref <= 1e-8:
                    break
                ratios.append(loss_part / ref)
            # a constant multiple holds to float rounding on every part; two losses of one label
            # mix (a BCE on `y >= 5` beside an MAE on the digit y, from a new head's near-constant
            # outputs) track each other to ~1e-3 over two halves, so four parts at the exact
            # match's tolerance
            if len(ratios) == len(parts) + 1 and max(ratios) - min(ratios) <= _MATCH_TOL * abs(ratios[0]):
                scaled.append(name)
        return scaled[0] if len(scaled) == 1 else None

    def _parts(self, batch: Any, n: int) -> list[tuple[float, torch.Tensor, torch.Tensor]] | None:
        """(loss, outputs, targets) of each quarter of the batch (halves below 8 rows); None when
        it is too small to split or a part fails."""
        if n < 4:
            return None
        x, y, rebuild = _split_batch(batch)
        k = 4 if n >= 8 else 2
        bounds = [i * n // k for i in range(k + 1)]
        parts = []
        for part in (slice(a, b) for a, b in zip(bounds, bounds[1:])):
            try:
                b = rebuild(x[part], y[part])
                with _mode(self.module, False), torch.no_grad():
                    parts.append((float(self._loss_tensor(b)), self._outputs(b), y[part]))
            except Exception:
                return None
        return parts


def _needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer.step` must be given a closure that re-evaluates the loss: its `closure`
    argument has no default (`torch.optim.LBFGS`, which evaluates the loss several times a step;
    the other torch optimizers take one optionally)."""
    try:
        parameter = inspect.signature(optimizer.step).parameters.get("closure")
    except (TypeError, ValueError):  # a step without a readable signature: called as before
        return False
    return parameter is not None and parameter.default is inspect.Parameter.empty


def _module_cross_entropy(
    module: nn.CrossEntropyLoss, out: torch.Tensor, y: torch.Tensor, smoothing: float
) -> float | None:
    """The cross-entropy `module` computes on (`out`, `y`) with `label_smoothing=smoothing`
    instead of its own; None where it fails on them."""
    try:
        weight = module.weight.float().to(out.device) if module.weight is not None else None
        target = y.float() if y.is_floating_point() else y.long()
        value = F.cross_entropy(
            out.float(),
            target,
            weight=weight,
            ignore_index=module.ignore_index,
            reduction=module.reduction,
            label_smoothing=smoothing,
        )
        return float(value)
    except Exception:
        return None


def _matches(measured: float, value: float | None) -> bool:
    return value is not None and math.isclose(measured, value, rel_tol=_MATCH_TOL, abs_tol=1e-6)


def _first_tensor_or_none(value: Any) -> torch.Tensor | None:
    try:
        return _first_tensor(value)
    except TypeError:
        return None


def _candidate_losses(out: torch.Tensor, y: torch.Tensor) -> list[tuple[str, float]]:
    """Values of the common losses for outputs `out` and targets `y` (those that apply)."""
    found: list[tuple[str, float]] = []
    out = out.float()

    def attempt(name: str, fn: Callable[[], torch.Tensor]) -> None:
        try:
            value = float(fn())
        except Exception:
            return
        if math.isfinite(value):
            found.append((name, value))

    if out.ndim >= 2 and out.shape[1] >= 2:
        if not y.is_floating_point():
            attempt("cross_entropy", lambda: F.cross_entropy(out, y.long()))
            attempt("nll", lambda: F.nll_loss(out, y.long()))
        elif y.shape == out.shape:
            attempt("cross_entropy", lambda: F.cross_entropy(out, y))
    if y.numel() == out.numel():
        yf = y.float().reshape(out.shape)
        attempt("bce_with_logits", lambda: F.binary_cross_entropy_with_logits(out, yf))
        if out.min() >= 0 and out.max() <= 1 and yf.min() >= 0 and yf.max() <= 1:
            attempt("bce", lambda: F.binary_cross_entropy(out, yf))
        attempt("mse", lambda: F.mse_loss(out, yf))
        attempt("mae", lambda: F.l1_loss(out, yf))
        attempt("smooth_l1", lambda: F.smooth_l1_loss(out, yf))
        # last, so a common regression loss that also matches keeps its name; `log_input=True`
        # (torch's default: the outputs are log-rates) names the inline `F.poisson_nll_loss(out, y)`
        attempt("poisson", lambda: F.poisson_nll_loss(out, yf))
    return found


def grouped_parameter_ids(optimizers: Any) -> set[int]:
    """The ids of every parameter in the parameter groups of `optimizers` (None: none)."""
    return {id(p) for opt in optimizers or () for g in opt.param_groups for p in g["params"]}


def _class_axis_misread(
    out: torch.Tensor, y: Any, last: nn.Module | None, measured: float | None
) -> tuple[str, int] | None:
    """(the last layer's class name, its features) where 3-D outputs (batch, positions, features)
    come straight from a last layer that maps the last axis (`nn.Linear`, `nn.Bilinear`: its
    output is the model's, unpermuted, and its features are the last axis) and the measured loss
    is the cross-entropy (or NLL) over dim 1 of them with integer targets (batch, features), but
    not the one over the last axis: the loss reads the positions as classes. None otherwise."""
    if last is None or not isinstance(last, (nn.Linear, nn.Bilinear)) or measured is None:
        return None
    if out.ndim != 3 or not isinstance(y, torch.Tensor) or y.is_floating_point() or y.ndim != 2:
        return None
    features = int(last.out_features)
    if out.shape[-1] != features or tuple(y.shape) != (out.shape[0], out.shape[2]) or out.shape[1] < 2:
        return None
    o, t = out.float(), y.long()
    try:
        dim1 = [float(F.cross_entropy(o, t)), float(F.nll_loss(o, t))]
        last_axis = [float(F.cross_entropy(o.transpose(1, 2), t)), float(F.nll_loss(o.transpose(1, 2), t))]
    except Exception:  # labels out of range for one reading: not this slip
        return None
    if not any(_matches(measured, v) for v in dim1) or any(_matches(measured, v) for v in last_axis):
        return None
    return type(last).__name__, features


def _is_reshaped(produced: torch.Tensor | None, out: torch.Tensor) -> bool:
    """True when `out` is `produced` itself or a view of it with the same elements in the same
    order (`squeeze(-1)`, `view(-1)`, `flatten()` of a regression or binary head)."""
    if produced is None:
        return False
    if produced is out:
        return True
    return (
        produced.numel() == out.numel()
        and produced.data_ptr() == out.data_ptr()
        and torch.equal(produced.detach().reshape(-1), out.detach().reshape(-1))
    )


def _summed_over(
    measured: float | None, candidates: list[tuple[str, float]], name: str | None, out: torch.Tensor
) -> int | None:
    """The rows (or elements) of the batch when its loss is that many times the mean of the
    loss `name` (any candidate when unknown): `reduction="sum"`, in a loss object or inline."""
    if measured is None:
        return None
    found = _summed_count(measured, [(n, v) for n, v in candidates if name is None or n == name], out)
    return None if found is None else found[1]


def _summed_match(measured: float, candidates: list[tuple[str, float]], out: torch.Tensor) -> str | None:
    """The candidate loss whose mean times the rows (or elements) of the batch is the measured
    loss: `reduction="sum"`, inline or in a loss object."""
    found = _summed_count(measured, candidates, out)
    return None if found is None else found[0]


def _summed_count(measured: float, candidates: list[tuple[str, float]], out: torch.Tensor) -> tuple[str, int] | None:
    """(the candidate loss, the count) where the candidate's mean times the rows (or elements)
    of the batch is the measured loss."""
    for name, value in candidates:
        for count in sorted({len(out), out.numel()}):
            if count > 1 and math.isclose(measured, value * count, rel_tol=1e-4, abs_tol=1e-6):
                return name, count
    return None


#: normalisation modules that re-centre and re-scale what they are given
_NORMALISATION_MODULES = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


def _output_normalisation(last: nn.Module | None, before: nn.Module | None) -> tuple[str, str] | None:
    """(module class, activation) where the module that produced the outputs is a normalisation
    layer called right after a Softmax or Sigmoid module (`LossConfig.output_normalisation`)."""
    if not isinstance(last, _NORMALISATION_MODULES):
        return None
    if isinstance(before, nn.Softmax):
        return type(last).__name__, "softmax"
    if isinstance(before, nn.Sigmoid):
        return type(last).__name__, "sigmoid"
    return None


def _activation(out: torch.Tensor, last: nn.Module | None) -> str | None:
    """The last operation on the outputs: from the last module when it produced them, else from
    their values (rows summing to 1 are softmax, log-sum-exp 0 is log-softmax, all inside (0, 1)
    is sigmoid)."""
    if isinstance(last, nn.Softmax):
        return "softmax"
    if isinstance(last, nn.LogSoftmax):
        return "log_softmax"
    if isinstance(last, nn.Sigmoid):
        return "sigmoid"
    # The output came straight from an affine layer: no activation, whatever the values.
    if isinstance(last, (nn.Linear, nn.Identity)) or (
        last is not None and type(last).__name__.startswith(("Conv", "Bilinear", "Embedding"))
    ):
        return "linear"
    if not out.is_floating_point() or out.numel() == 0:
        return None
    o = out.float()
    rows = o.reshape(len(o), -1) if o.ndim >= 2 else o.reshape(-1, 1)
    if (
        o.ndim >= 2
        and o.min() >= 0
        and o.max() <= 1
        and torch.allclose(rows.sum(dim=1), torch.ones(len(rows)), atol=1e-4)
    ):
        return "softmax"
    if (
        o.ndim >= 2
        and rows.shape[1] >= 2
        and o.max() <= 1e-6
        and bool((torch.logsumexp(rows, dim=1).abs() < 1e-4).all())
    ):
        return "log_softmax"
    if o.numel() >= 8 and o.min() > 0 and o.max() < 1:
        return "sigmoid"
    if last is not None:
        return type(last).__name__.lower()
    return None


def _clone_module_and_optimizers(
    module: nn.Module, optimizers: list[torch.optim.Optimizer]
) -> tuple[nn.Module, list[torch.optim.Optimizer]]:
    """Deep-copies module and optimizers in one go, so the copied optimizers (state included)
    refer to the copied parameters. A Lightning module is detached from its trainer for the copy."""
    trainer = module.__dict__.get("_trainer")
    if trainer is not None:
        module.__dict__["_trainer"] = None
    memo: dict[int, Any] = {}
    try:
        with torch.no_grad():
            new_module, new_optimizers = copy.deepcopy((module, list(optimizers)), memo)
            for old, new in zip(optimizers, new_optimizers):
                _restore_attributes(old, new, memo)
    finally:
        if trainer is not None:
            module.__dict__["_trainer"] = trainer
    return new_module, new_optimizers


def _restore_attributes(old: torch.optim.Optimizer, new: torch.optim.Optimizer, memo: dict[int, Any]) -> None:
    """Gives the copy `new` the plain attributes of `old` that an optimizer's copy loses: its
    `__getstate__` keeps the defaults, state and groups only, not what `__init__` set beside them
    (`torch.optim.LBFGS`'s `_params`, without which its step raises). They are copied with the
    copy's `memo`, so they refer to the copied parameters. Functions are left out: a scheduler's
    wrapper of `step` holds the original optimizer."""
    for name, value in vars(old).items():
        if name in vars(new) or callable(value):
            continue
        try:
            setattr(new, name, copy.deepcopy(value, memo))
        except Exception:  # an attribute that cannot be copied stays off the copy, as before
            logger.debug("mlcheck: optimizer attribute %s not copied", name, exc_info=True)


# -- plain torch ------------------------------------------------------------------------------


class TorchTrainable(_TorchBase):
    """A plain `nn.Module` with its loss function, optimizer and data.

    Args:
        model: the `nn.Module`; its forward takes the batch's inputs.
        loss_fn: `loss_fn(outputs, targets)`, a loss module (`nn.CrossEntropyLoss()`) or function.
        optimizer: the optimizer the run will use (its state is copied, never stepped). Default
            None: `torch.optim.Adam(model.parameters(), lr=1e-3)` (Adam's own default rate).
        train_data: a DataLoader, a Dataset, (X, y) arrays/tensors, a LightningDataModule
            (its `setup("fit")` is called once) or any iterable of batches.
        val_data: the same, optional.
        batch_size: used when the data are not already batched. Default 32.
    """

    framework = "torch"

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[..., Any],
        optimizer: torch.optim.Optimizer | None = None,
        train_data: Any = None,
        val_data: Any = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        super().__init__(model, train_data, val_data, batch_size)
        self.loss_fn = loss_fn
        if optimizer is None and any(True for _ in model.parameters()):
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.optimizer = optimizer
        self.optimizers = [optimizer] if optimizer is not None else []

    def _loss_tensor(self, batch: Any) -> torch.Tensor:
        batch = _to_device(batch, self._device())
        y = _split_batch(batch)[1]
        out = self._prediction(self._call(self.module, batch))
        return _loss_value(self.loss_fn(out, y) if y is not None else self.loss_fn(out))

    def call_convention(self, stage: str, batch: Any) -> str | None:
        if stage != "loss":
            return super().call_convention(stage, batch)
        _, targets = _batch_convention(batch)
        returned = getattr(self, "_returned", None)
        if returned is None and targets is None:
            return None
        prediction = f"the first tensor of the {returned} the model returned" if returned else "the model's output"
        targets = targets or "the batch's last element"
        return f"mlcheck called loss(prediction, targets) with {prediction} and {targets}; {_CONVENTION_FIX}"

    def _copy(self) -> TorchTrainable:
        module, optimizers = _clone_module_and_optimizers(self.module, self.optimizers)
        other = TorchTrainable.__new__(TorchTrainable)
        _TorchBase.__init__(other, module, None, None, self.batch_size)
        other.loss_fn, other.optimizers = self.loss_fn, optimizers
        other.optimizer = optimizers[0] if optimizers else None
        return other

    @property
    def model(self) -> nn.Module:
        return self.module

    def _declared_loss(self) -> tuple[str | None, bool | None]:
        for cls, name, logits in _LOSS_CLASSES:
            if isinstance(self.loss_fn, cls):
                return name, logits
        return _LOSS_FUNCTIONS.get(self.loss_fn, (None, None))

    def _loss_modules(self) -> list[nn.Module]:
        return [self.loss_fn] if isinstance(self.loss_fn, nn.Module) else []


# -- Lightning --------------------------------------------------------------------------------


class LightningTrainable(_TorchBase):
    """A LightningModule (from `lightning.pytorch` or `pytorch_lightning`) with its data.

    The loss is what `training_step(batch, 0)` returns (a tensor or a dict with "loss"), run on
    a copy that shares the module's weights (`_shell`), so the step's own counters and lists see
    the run's steps only; the outputs are the module's call, or, for a module that defines no
    `forward`, the call of the children its `training_step` calls one on the output of the other
    (`self.net(x)`, `self.head(self.encoder(x))`), after the tensor operations it applies to the
    inputs first (`x.view(len(x), -1)`: `_StepPrefix`), traced once; the optimizers come from
    the attached trainer when there is one (their state included), else from
    `configure_optimizers()`. `self.log` / `self.log_dict` are no-ops while mlcheck calls
    `training_step`, so no trainer is needed and a live trainer's logs stay clean.

    Args:
        module: the LightningModule.
        train_data: a DataLoader, Dataset, (X, y) or iterable of batches. Default None: the
            datamodule's, else the module's own `train_dataloader()`.
        val_data: the same for validation. Default None: as for train_data.
        datamodule: a LightningDataModule; `setup("fit")` is called on it once.
        batch_size: used when the data are not already batched. Default 32.
        optimizer: the optimizer to use instead of the trainer's or `configure_optimizers()`'s
            (for a `configure_optimizers` that needs a trainer, e.g. OneCycleLR). Default None.
    """

    framework = "lightning"

    def __init__(
        self,
        module: nn.Module,
        train_data: Any = None,
        val_data: Any = None,
        datamodule: Any = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        optimizer: torch.optim.Optimizer | None = None,
    ):
        super().__init__(module, train_data, val_data, batch_size, datamodule)
        self.optimizers = [optimizer] if optimizer is not None else self._find_optimizers(module)
        # the trace of `training_step` ("chain", "prefix", "error"), shared with every copy: the
        # copies' children have the same names, so the first to need it traces for all
        self._trace: dict[str, Any] = {}
        # the run's own module, not a copy: its training_step runs on a `_shell` of it, so that
        # mlcheck's calls leave the step's own state (counters, appended outputs) as it was
        self._live = True

    @staticmethod
    def _find_optimizers(module: nn.Module) -> list[torch.optim.Optimizer]:
        trainer = module.__dict__.get("_trainer")
        live = list(getattr(trainer, "optimizers", None) or []) if trainer is not None else []
        if live:
            return [getattr(o, "optimizer", o) for o in live]  # unwrap LightningOptimizer
        try:
            with _rng_kept():
                return _optimizers_from(module.configure_optimizers())
        except Exception as error:
            raise ValueError(
                f"{type(module).__name__}.configure_optimizers() failed outside a Trainer "
                f"({type(error).__name__}: {error}); pass the optimizer explicitly: "
                "LightningTrainable(module, ..., optimizer=torch.optim.Adam(module.parameters()))"
            ) from error

    def _source(self, split: str) -> Any:
        if self._data.get(split) is None and self.datamodule is None:
            return self._hook_loader(self.module, split)  # the module's own *_dataloader()
        return super()._source(split)

    def _outputs(self, batch: Any) -> torch.Tensor:
        network = self.network(batch)
        return _first_tensor(self._call(network, batch))

    def network(self, batch: Any) -> nn.Module:
        """The module whose call on the batch's inputs gives the prediction: the module itself
        when it defines `forward`; else the chain of children its `training_step` calls one on
        the output of the other, after the tensor operations it applies to the inputs first
        (`x.view(len(x), -1)`, `x.float() / 255`), traced once on a copy and kept as child names
        so that clones follow it; else the one child that holds its parameters (`_network_of`)."""
        if _defines_forward(type(self.module)):
            return self.module
        if "chain" not in self._trace:
            self._trace["chain"] = self._traced_chain(batch)
        chain = self._trace["chain"]
        if not chain:
            return _network_of(self.module)
        return _Chain(self.module, chain, self._trace.get("prefix"))

    def call_convention(self, stage: str, batch: Any) -> str | None:
        if stage == "forward" and self._trace.get("chain") == ():
            name = type(self.module).__name__
            raised = self._trace.get("error")
            if raised:  # the step itself failed on the copy: nothing is known of what it does
                return (
                    f"{name} defines no forward(), and its training_step could not be traced on a copy "
                    f"without its trainer (it raised {raised}): add a `def forward(self, x)` that returns "
                    "the prediction training_step gives its loss (for example "
                    "`return self.head(self.encoder(x))`) and call it as `self(x)` in training_step."
                )
            refused = self._trace.get("prefix_refused")
            if refused:  # tensor operations on the inputs before its first submodule, not replayable
                return (
                    f"{name} defines no forward(), and what its training_step does to the inputs before its "
                    f"first submodule cannot be replayed ({refused}): add a `def forward(self, x)` that returns "
                    "the prediction training_step gives its loss (for example "
                    "`return self.net(x.view(len(x), -1))`) and call it as `self(x)` in training_step."
                )
            return (
                f"{name} defines no forward(), and its training_step does more between its submodules than "
                "call one on the output of the other (the first batch's step, traced): add a "
                "`def forward(self, x)` that returns the prediction training_step gives its loss (for "
                "example `return self.head(self.encoder(x))`) and call it as `self(x)` in training_step."
            )
        return super().call_convention(stage, batch)

    def _traced_chain(self, batch: Any) -> tuple[str, ...]:
        """The names of the module's children that `training_step` calls one on the output of
        the other, starting from the batch's inputs (`self.net(x)`, `self.head(self.encoder(x))`)
        or from what its own tensor operations made of them (`self.net(x.view(len(x), -1))`:
        kept in `self._trace["prefix"]`, see `_StepPrefix`), where they are all of its children
        that hold parameters and are called; () where the step does anything else between them,
        or raises. Run on a deep copy in training mode, without gradients, with the random state
        put back: the run's module and results are untouched."""
        try:
            copy_, _ = _clone_module_and_optimizers(self.module, [])
            batch = _to_device(batch, self._device())
            x = _split_batch(batch)[0]
            calls: list[tuple[str, Any, Any]] = []
            hooks = [
                child.register_forward_hook(
                    lambda m, args, out, name=name: calls.append((name, args[0] if args else None, out))
                )
                for name, child in copy_.named_children()
                if not _is_loss_or_metric(child)
            ]
            try:
                # in training mode, as Lightning calls it: a functional dropout between two
                # children then breaks the chain, as it should (the chain would leave it out)
                with torch.no_grad(), _rng_kept(), _quiet_logging(copy_), _mode(copy_, True):
                    copy_.training_step(batch, 0)
            finally:
                for hook in hooks:
                    hook.remove()
        except Exception as exc:  # the step needs its trainer, or more than a copy gives it: no chain
            logger.debug("training_step could not be traced on a copy: %s: %s", type(exc).__name__, exc)
            self._trace["error"] = f"{type(exc).__name__}: {exc}"[:200]
            return ()
        chain = _chain_of(copy_, x, calls)
        if chain or not calls or not isinstance(calls[0][1], torch.Tensor):
            return chain
        # the step worked on the inputs before its first submodule: replay that on the way in
        first_input = calls[0][1]
        chain = _chain_of(copy_, first_input, calls)
        if not chain or any(True for _ in self.module.parameters(recurse=False)):
            return ()  # the module's own parameters could take part in those operations
        del copy_
        prefix = _StepPrefix(self.module, chain[0], batch)
        refused = prefix.refusal(x, first_input)
        if refused:
            self._trace["prefix_refused"] = refused
            return ()
        self._trace["prefix"] = prefix
        return chain

    def _loss_tensor(self, batch: Any) -> torch.Tensor:
        if getattr(self.module, "automatic_optimization", True) is False:
            raise NotImplementedError(
                f"{type(self.module).__name__} uses manual optimization (automatic_optimization=False): its "
                "training_step steps the optimizers itself, which needs a Trainer, so its loss cannot be computed "
                "here; give the script an mlcheck_target() returning the network inside the module (e.g. "
                "module.net) with its loss and optimizer (docs/sanity.md), or in Python wrap that network in "
                "TorchTrainable"
            )
        module = self.module
        if self._live:  # the run's own module: its counters and lists stay as the run left them
            try:
                module = _shell(self.module, keep_trainer=True)
            except Exception as exc:  # something in it does not copy: step the module itself
                logger.debug("training_step runs on the module itself: %s: %s", type(exc).__name__, exc)
        with _quiet_logging(module):
            try:
                out = module.training_step(_to_device(batch, self._device()), 0)
            except RuntimeError as exc:
                if _DETACHED not in str(exc):
                    raise
                name = type(self.module).__name__
                raise CloneRefused(
                    f"a copy of {name} trained on the side cannot run its training_step, which reads the "
                    f"Trainer the model is attached to ({type(exc).__name__}: {exc})",
                    hint="Nothing is wrong with the run: these checks train a copy of the model outside the "
                    "Trainer. To run them, let training_step work without one: read what it needs from "
                    "`self.trainer` in a hook such as `on_train_epoch_start` and keep it on the module.",
                ) from exc
            return _loss_value(out)

    def _copy(self) -> LightningTrainable:
        module, optimizers = _clone_module_and_optimizers(self.module, self.optimizers)
        other = LightningTrainable.__new__(LightningTrainable)
        _TorchBase.__init__(other, module, None, None, self.batch_size)
        other.optimizers = optimizers
        other._trace = self._trace  # child names: the copy's children are the same
        other._live = False
        return other

    def _declared_loss(self) -> tuple[str | None, bool | None]:
        found = set()
        for m in self.module.modules():
            for cls, name, logits in _LOSS_CLASSES:
                if isinstance(m, cls):
                    found.add((name, logits))
                    break
        # One loss module is the loss; none or several: tell from the loss values instead.
        return next(iter(found)) if len(found) == 1 else (None, None)

    def _loss_modules(self) -> list[nn.Module]:
        return [m for m in self.module.modules() if isinstance(m, tuple(cls for cls, _, _ in _LOSS_CLASSES))]


def prediction_module(module: nn.Module, batch: Any, trainable: LightningTrainable | None = None) -> nn.Module:
    """The module whose output is a LightningModule's prediction: the module itself, the one
    child that holds its parameters, or the last of the children its `training_step` calls one
    on the output of the other (`LightningTrainable.network`); the module itself where none is
    found. A forward hook on it sees the real steps' predictions. `trainable`: one made for this
    module already (the train-start checks'), whose trace of `training_step` is reused."""
    if trainable is None or trainable.module is not module:
        trainable = LightningTrainable(module)
    network = trainable.network(batch)
    return network.steps[-1] if isinstance(network, _Chain) else network


class _Chain(nn.Module):
    """The children of a module called one on the output of the other (`self.head(self.encoder(x))`),
    as one callable network, after `prefix` (what `training_step` does to the inputs before the
    first, see `_StepPrefix`); it shares their parameters."""

    def __init__(self, module: nn.Module, names: tuple[str, ...], prefix: _StepPrefix | None = None) -> None:
        super().__init__()
        self.steps = nn.ModuleList(getattr(module, name) for name in names)
        self.prefix = prefix

    def forward(self, x: Any) -> Any:
        if self.prefix is not None:
            x = self.prefix(x)
        for step in self.steps:
            x = step(x)
        return x


class _Reached(Exception):
    """Raised by `_StepPrefix`'s hook on the first submodule, carrying what it was called on."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


class _StepPrefix:
    """What a module's `training_step` does to the inputs before its first submodule call
    (`x.view(x.size(0), -1)`, `x.flatten(1)`, `x.float() / 255`, `torch.cat([x, extra], 1)` of a
    batch's other element), replayed on new inputs: the step runs on a copy that shares the
    module's parameters (`_shell`) up to that call, which a hook cuts short, so the submodules'
    work is not done twice and the module's own state is not touched. The batch around the new
    inputs is the traced batch's, its per-row elements cut or cycled to their rows."""

    def __init__(self, module: nn.Module, first: str, batch: Any) -> None:
        self.shell = _shell(module, keep_trainer=False)
        self.first = first
        x0, self._y0, self._rebuild = _split_batch(batch)  # the traced batch: split once, for every call
        self._rows = len(x0) if _is_array(x0) and x0.ndim else None

    def __call__(self, x: Any) -> Any:
        y0, rows = self._y0, self._rows
        new_rows = len(x) if _is_array(x) and x.ndim else rows
        batch = self._rebuild(x, _rows_followed(y0, rows, new_rows or 0) if new_rows else y0)

        def reached(module: nn.Module, args: tuple[Any, ...]) -> None:
            raise _Reached(args[0] if args else None)

        hook = getattr(self.shell, self.first).register_forward_pre_hook(reached)
        try:
            with _rng_kept(), _quiet_logging(self.shell), _mode(self.shell, True):
                self.shell.training_step(batch, 0)
        except _Reached as done:
            return done.value
        finally:
            hook.remove()
        raise RuntimeError(f"training_step did not call self.{self.first} on these inputs")

    def refusal(self, x: torch.Tensor, traced: torch.Tensor) -> str | None:
        """Why the replay cannot stand for the step (None when it can): it must give what the
        traced step gave, twice over (random augmentation is held still by the random state each
        call puts back; other randomness is not), and follow the rows of a part of the batch (no
        fixed batch size in a `view`, no statistics over the batch)."""
        try:
            with torch.no_grad(), _rng_kept():
                again, twice = self(x), self(x)
                rows = len(x) // 2 if x.ndim else 0
                part = self(x[:rows]) if rows else None
        except Exception as exc:
            return f"replaying them raised {type(exc).__name__}: {exc}"[:200]
        if not (isinstance(again, torch.Tensor) and isinstance(twice, torch.Tensor)):
            return "they do not give one tensor"
        if not (_same(again, traced) and _same(twice, traced)):
            return "they give other values on each call, from randomness the random state put back does not hold"
        if part is not None and not (
            isinstance(part, torch.Tensor)
            and part.shape == traced[:rows].shape
            and torch.allclose(part.float(), traced[:rows].float(), rtol=1e-5, atol=1e-6)
        ):
            return "on half the batch they do not give the same rows, as a fixed batch size or batch statistics do"
        return None


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


def _shell(module: nn.Module, keep_trainer: bool) -> nn.Module:
    """A copy of `module` that shares its parameters and buffers (and its trainer, when
    `keep_trainer`), so it costs no memory for weights and computes with them, but has its own
    Python state: a counter, a list `training_step` appends to (`self.training_step_outputs`),
    a metric's running totals change on the copy, not on the run's module."""
    memo: dict[int, Any] = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    trainer = module.__dict__.get("_trainer")
    if trainer is not None:
        memo[id(trainer)] = trainer  # reached another way (a hook's owner): shared, never copied
        module.__dict__["_trainer"] = None  # not copied (LightningModule.__getstate__ drops it too)
    try:
        with torch.no_grad():
            shell = copy.deepcopy(module, memo)
    finally:
        if trainer is not None:
            module.__dict__["_trainer"] = trainer
    if keep_trainer and trainer is not None:
        shell.__dict__["_trainer"] = trainer
    return shell


def _is_loss_or_metric(module: nn.Module) -> bool:
    """A loss module or a torchmetrics metric: called on the prediction, not part of the network."""
    return isinstance(module, nn.modules.loss._Loss) or type(module).__module__.startswith("torchmetrics")


def _chain_of(module: nn.Module, x: Any, calls: list[tuple[str, Any, Any]]) -> tuple[str, ...]:
    """The chain in `calls` (name, first argument, output of each child's call, in order) that
    starts from the tensor `x` itself (the batch's inputs, or what the step made of them before
    its first call) and takes each output on as the next call's first argument;
    () unless it holds every child with parameters that was called."""
    if not isinstance(x, torch.Tensor):
        return ()
    chain, current = [], x
    for name, arg, out in calls:
        if arg is current:
            chain.append(name)
            current = out
    called = {name for name, _, _ in calls}
    owners = {name for name, child in module.named_children() if name in called and _holds_parameters(child)}
    if not chain or not owners <= set(chain) or not isinstance(current, torch.Tensor):
        return ()
    return tuple(chain)


def _holds_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


@contextlib.contextmanager
def _quiet_logging(module: nn.Module) -> Iterator[None]:
    """Makes `self.log`/`self.log_dict` no-ops on the module for the duration."""
    d = module.__dict__
    saved = {k: d[k] for k in ("log", "log_dict") if k in d}
    d["log"] = d["log_dict"] = lambda *args, **kwargs: None
    try:
        yield
    finally:
        for k in ("log", "log_dict"):
            if k in saved:
                d[k] = saved[k]
            else:
                d.pop(k, None)


def _network_of(module: nn.Module) -> nn.Module:
    """The module whose call gives a LightningModule's outputs: the LightningModule itself, or,
    when it defines no `forward` (its `training_step` calls `self.net(x)` directly, a common
    shape), the one child module that holds all its parameters. Otherwise the module itself,
    whose call then raises torch's "missing the required forward function"."""
    if _defines_forward(type(module)):
        return module
    owners = [child for child in module.children() if any(True for _ in child.parameters())]
    if len(owners) != 1:
        return module  # no child or several hold parameters: which one is the model is unknown
    total = sum(p.numel() for p in module.parameters())
    return owners[0] if sum(p.numel() for p in owners[0].parameters()) == total else module


def _defines_forward(cls: type) -> bool:
    """True when a class of the user's (not torch's or Lightning's) defines `forward`."""
    for klass in cls.__mro__:
        if "forward" in vars(klass):
            return not klass.__module__.startswith(("torch.", "lightning.", "pytorch_lightning."))
    return False


def _optimizers_from(config: Any) -> list[torch.optim.Optimizer]:
    """The optimizers in whatever `configure_optimizers` returned."""
    if config is None:
        return []
    if isinstance(config, torch.optim.Optimizer):
        return [config]
    if isinstance(config, dict):
        return _optimizers_from(config.get("optimizer"))
    if isinstance(config, (list, tuple)):
        if len(config) == 2 and isinstance(config[0], (list, tuple)):  # ([opts], [schedulers])
            return _optimizers_from(list(config[0]))
        out: list[torch.optim.Optimizer] = []
        for item in config:
            if isinstance(item, (torch.optim.Optimizer, dict)):
                out += _optimizers_from(item)
        return out
    return []
