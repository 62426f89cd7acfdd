"""What a torch-based callback measures on the live model: tensors as numpy arrays, the
update/weight ratio and the names of non-finite gradients and weights. Translation only; the
live core (`mlcheck.live`) decides what to do with the numbers."""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mlcheck import task

logger = logging.getLogger("mlcheck")

__all__ = [
    "GradientAlignment",
    "GradientProbe",
    "HostCopies",
    "LeftoverGradients",
    "OneBatch",
    "ParameterScan",
    "default_batch_to_arrays",
    "dense_values",
    "gather",
    "loss_class_weights",
    "loss_ignored_class",
    "loss_of",
    "losses_to_floats",
    "pretrained_weights",
    "scalars",
    "tensor_to_numpy",
    "to_numpy",
    "train_mode_layers",
    "eval_mode_layers",
    "first_conv2d",
]


def tensor_to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a numpy array on the host; bfloat16 (which numpy has no type for) and float16
    as float32. Raises where the values have no numpy form (meta, sparse, nested tensors)."""
    tensor = tensor.detach()
    if tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.float()
    return tensor.cpu().numpy()


class HostCopies:
    """Tensors copied from an accelerator to the host without waiting for them.

    `start` enqueues a non-blocking copy of each tensor into page-locked host memory and
    records an event behind them; `then` runs with the numpy arrays once the event shows the
    copies have landed (`land`, which never waits, at a later batch), or when `drain` waits for
    them (at the end of a pass, where the trainer itself waits for the device). A full pass
    over a run's first epoch so costs no host synchronisation at its steps: a blocking copy of
    every batch would make the host wait for the device's queue at each one, which on a fast
    device costs more than the copy itself. The order of `then` calls is the order of `start`.
    More than `depth` copies, or more than `max_bytes` of them, in flight: the oldest is waited
    for (a bound on the page-locked memory held; one batch larger than that still goes alone)."""

    def __init__(
        self,
        depth: int = 8,
        device_type: str = "cuda",
        event: Callable[[], Any] | None = None,
        pinned: bool = True,
        max_bytes: int = 256 * 2**20,
    ) -> None:
        self.depth, self.device_type, self.pinned, self.max_bytes = depth, device_type, pinned, max_bytes
        self._bytes = 0  # held by the copies in flight
        self._event = event if event is not None else torch.cuda.Event
        self.started = 0  # copies started over the instance's life
        #: (event, host copies, then, their bytes) of each copy in flight, oldest first
        self._queue: collections.deque[tuple[Any, list[torch.Tensor | None], Callable[..., None], int]] = (
            collections.deque()
        )

    def wanted(self, *values: Any) -> bool:
        """Whether `start` can take these: tensors (or None), all on one device of
        `device_type`, each with a numpy form once on the host (strided, not a subclass)."""
        if not all(v is None or (type(v) is torch.Tensor and v.layout == torch.strided) for v in values):
            return False
        devices = {v.device for v in values if v is not None}
        return len(devices) == 1 and next(iter(devices)).type == self.device_type

    def start(self, tensors: Sequence[torch.Tensor | None], then: Callable[..., None]) -> None:
        """Copies `tensors` (None stays None) to the host; `then(*arrays)` later."""
        copies: list[torch.Tensor | None] = []
        for tensor in tensors:
            if tensor is None:
                copies.append(None)
                continue
            tensor = tensor.detach()
            if tensor.dtype in (torch.bfloat16, torch.float16):
                tensor = tensor.float()  # numpy has no bfloat16: converted on the device
            host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=self.pinned)
            host.copy_(tensor, non_blocking=True)
            copies.append(host)
        event = self._event()
        event.record()
        self.started += 1
        size = sum(c.nbytes for c in copies if c is not None)
        self._queue.append((event, copies, then, size))
        self._bytes += size
        while len(self._queue) > self.depth or (self._bytes > self.max_bytes and len(self._queue) > 1):
            self._run(wait=True)
        self.land()

    def land(self) -> None:
        """Runs `then` for each copy that has landed, in order, without waiting."""
        while self._queue and self._queue[0][0].query():
            self._run(wait=False)

    def drain(self) -> None:
        """Waits for every copy in flight and runs its `then`."""
        while self._queue:
            self._run(wait=True)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _run(self, wait: bool) -> None:
        event, copies, then, size = self._queue.popleft()
        self._bytes -= size
        if wait:
            event.synchronize()
        then(*(None if c is None else c.numpy() for c in copies))


def to_numpy(value: Any) -> np.ndarray | None:
    """A tensor (bfloat16 and float16 as float32) or array-like as a numpy array; None when it
    is neither, or when a tensor's values have no numpy form (the meta device holds none; sparse
    and nested tensors), as `Monitor.log_batch` skips what has no array form."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        try:
            return tensor_to_numpy(value)
        except (RuntimeError, NotImplementedError, TypeError):
            return None
    try:
        return np.asarray(value)
    except Exception:
        return None


def default_batch_to_arrays(batch: Any) -> tuple[Any, Any]:
    """(inputs, targets) of a batch: the first tensor found is the inputs, the last the targets.

    Tuples, lists and dicts are searched depth-first in order; a lone tensor is inputs only.
    Pass your own function as `MLCheckCallback(batch_to_arrays=...)` for other layouts.
    """
    if type(batch) in (tuple, list) and len(batch) == 2:  # the usual (x, y): what the walk gives
        x, y = batch
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            return x, y
    tensors: list[torch.Tensor] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            tensors.append(obj)
        elif isinstance(obj, Mapping):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value)

    walk(batch)
    if not tensors:
        return None, None
    return tensors[0], (tensors[-1] if len(tensors) > 1 else None)


def batch_arrays(batch_to_arrays: Callable[[Any], Any], batch: Any) -> tuple[Any, Any]:
    """`batch_to_arrays(batch)` held to its contract: a pair (inputs, targets); TypeError else."""
    pair = batch_to_arrays(batch)
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"batch_to_arrays must return a pair (inputs, targets), got {type(pair).__name__}")
    return pair[0], pair[1]


def leading_rows(batch: Any) -> int | None:
    """The rows of a batch: the leading size of its first tensor with a dimension (tuples, lists
    and dicts searched depth-first, as `default_batch_to_arrays` does), None where it has none.
    The shape is read on the host: no device sync."""
    if type(batch) in (tuple, list) and batch and isinstance(batch[0], torch.Tensor) and batch[0].ndim:
        return int(batch[0].shape[0])  # the usual (x, y)
    stack = [batch]
    while stack:
        obj = stack.pop()
        if isinstance(obj, torch.Tensor):
            if obj.ndim:
                return int(obj.shape[0])
        elif isinstance(obj, Mapping):
            stack.extend(reversed(list(obj.values())))
        elif isinstance(obj, (list, tuple)):
            stack.extend(reversed(obj))
    return None


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The single-number entries of a metrics mapping (tensors, ints, floats) as floats, those
    on an accelerator read back together (one host sync, not one per metric)."""
    out: dict[str, float] = {}
    held: dict[str, torch.Tensor] = {}
    for name, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            if not value.is_cpu:
                held[name] = value.detach().reshape(())
                out[name] = math.nan  # a place kept, so the order stays the mapping's
                continue
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    if held:
        tensors = list(held.values())
        try:  # float64 on the host: exact for every float dtype, and MPS has none
            values = torch.stack(tensors).cpu().double().tolist()
        except RuntimeError:  # metrics on several devices: one read each
            values = [float(t.item()) for t in tensors]
        out.update(zip(held, values))
    return out


def gather(strategy: Any, value: Any) -> Any:
    """Concatenates a batch's tensor from every rank through a Lightning strategy (rows padded
    to the longest, then cut)."""
    if value is None:
        return None
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    tensor = tensor.detach()
    n = torch.tensor([tensor.shape[0] if tensor.ndim else 1], device=tensor.device)
    sizes = strategy.all_gather(n).reshape(-1).tolist()
    longest = max(sizes)
    if tensor.ndim == 0:
        tensor = tensor.reshape(1)
    if tensor.shape[0] < longest:
        pad = tensor.new_zeros((longest - tensor.shape[0], *tensor.shape[1:]))
        tensor = torch.cat([tensor, pad])
    gathered = strategy.all_gather(tensor)
    return torch.cat([gathered[r, : sizes[r]] for r in range(len(sizes))])


def loss_of(outputs: Any) -> torch.Tensor | None:
    """The detached scalar loss a training step returned (a tensor or a dict's "loss")."""
    if type(outputs) is dict or (type(outputs) is not torch.Tensor and isinstance(outputs, Mapping)):
        outputs = outputs.get("loss")
    if isinstance(outputs, torch.Tensor) and outputs.numel() == 1:
        # Lightning hands over a detached copy already: detaching it again (a new tensor through
        # the dispatcher, ~0.5 us) only where it is still part of a graph
        return outputs.detach() if outputs.requires_grad else outputs
    return None


def pretrained_weights(module: torch.nn.Module) -> bool:
    """The module holds a model loaded from a checkpoint: a Hugging Face model (the module itself
    or a submodule, e.g. a LightningModule's backbone) whose config names where its weights came
    from (`from_pretrained` sets `config._name_or_path`; a model built from a config leaves it
    empty). What `RunInfo.pretrained` tells the checks."""
    for sub in module.modules():
        named = getattr(getattr(sub, "config", None), "_name_or_path", None)
        if isinstance(named, str) and named:
            return True
    return False


def loss_class_weights(module: torch.nn.Module) -> dict[int, float] | None:
    """The weight per class label of the module's class-weighted loss: the `weight` buffer of
    the `CrossEntropyLoss` / `NLLLoss` modules it holds (`self.loss_fn = nn.CrossEntropyLoss(
    weight=w)`), read without the user changing their code. None when it holds none with a
    weight, or when several hold different ones (which of them trains is unknown). A weight
    passed to `F.cross_entropy(..., weight=w)` inside `training_step` is not reachable here; the
    loss fingerprint finds a module buffer so passed (`LossConfig.class_weights`)."""
    found: torch.Tensor | None = None
    for sub in module.modules():
        if not isinstance(sub, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)):
            continue
        weight = getattr(sub, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim != 1 or weight.numel() < 2:
            continue
        weight = weight.detach().to("cpu", torch.float64)
        if found is not None and (found.shape != weight.shape or not torch.equal(found, weight)):
            return None
        found = weight
    if found is None or not bool(torch.isfinite(found).all()):
        return None
    return {label: float(w) for label, w in enumerate(found.tolist())}


def loss_ignored_class(module: torch.nn.Module) -> int | None:
    """The `ignore_index` of the `CrossEntropyLoss` / `NLLLoss` modules the module holds, where it
    is a label a class can have (>= 0; torch's default -100 is none). None when it holds none so
    set, or when several hold different ones (which of them trains is unknown)."""
    found: set[int] = set()
    for sub in module.modules():
        if isinstance(sub, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)):
            found.add(int(getattr(sub, "ignore_index", -100)))
    if len(found) != 1:
        return None
    (index,) = found
    return index if index >= 0 else None


def first_conv2d(module: torch.nn.Module) -> tuple[str, torch.nn.Conv2d] | None:
    """The path and module of the module's first `nn.Conv2d` in registration order (which a
    network's image input meets first in the models seen: a stem before its blocks), or None when
    it holds none. torch's convolutions read `(N, C, H, W)` only, so this one's input shape, seen
    once by a forward pre-hook, is what `RunInfo.conv_input` needs."""
    for name, sub in module.named_modules():
        if isinstance(sub, torch.nn.Conv2d):
            return name or type(sub).__name__, sub
    return None


def train_mode_layers(module: torch.nn.Module) -> tuple[str, ...]:
    """The paths of the module's layers that act differently in training and are in training
    mode now: dropout (p > 0) and BatchNorm (which also updates its running statistics)."""
    return tuple(
        f"{name or type(module).__name__} ({type(sub).__name__})"
        for name, sub in module.named_modules()
        if sub.training
        and (
            (isinstance(sub, torch.nn.modules.dropout._DropoutNd) and sub.p > 0)
            or isinstance(sub, torch.nn.modules.batchnorm._BatchNorm)
        )
    )


def eval_mode_layers(module: torch.nn.Module) -> tuple[str, ...]:
    """The paths of the module's layers that act differently in training and are in evaluation
    mode now: dropout (p > 0), which then passes its inputs through, and BatchNorm with running
    statistics, which then normalises with them and stops updating them (one without them,
    `track_running_stats=False`, uses the batch's statistics in both modes)."""
    return tuple(
        f"{name or type(module).__name__} ({type(sub).__name__})"
        for name, sub in module.named_modules()
        if not sub.training
        and (
            (isinstance(sub, torch.nn.modules.dropout._DropoutNd) and sub.p > 0)
            or (isinstance(sub, torch.nn.modules.batchnorm._BatchNorm) and sub.track_running_stats)
        )
    )


def weight_fingerprint(module: torch.nn.Module) -> torch.Tensor | None:
    """The sum and the sum of squares of each trainable parameter tensor, stacked (on the
    parameters' device, no host sync): taken at an epoch's start and end, two fingerprints that
    are equal mean no optimizer step moved any trainable weight in between. The sum alone is
    not enough: a softmax cross-entropy's gradient sums to 0 over the classes, so plain SGD
    leaves the sum of an output layer's weights (and bias) unchanged, and a logistic regression
    has no other layer (the fault suite's clean `early_converging` at seed 2 read as never
    stepped); the sum of squares moves with any update. Two reductions per tensor, twice an
    epoch. None when nothing is trainable (a frozen model has nothing to move)."""
    with torch.no_grad():
        trained = [p.detach().float() for p in module.parameters() if p.requires_grad]
        if not trained:
            return None
        device = trained[0].device
        return torch.stack([torch.stack([t.sum(), (t * t).sum()]).to(device) for t in trained])


def losses_to_floats(losses: list[torch.Tensor | float]) -> list[float]:
    """Scalar loss tensors as floats, with one device synchronisation for all of them (losses
    already read as floats stay as they are). On the CPU, where there is nothing to wait for,
    each is read alone: the same floats, a quarter of the time of a stack for 16 losses."""
    flat = [t for t in losses if isinstance(t, torch.Tensor)]
    if all(t.is_cpu for t in flat):
        # item() reads a one-value tensor of any shape: no reshape (a third of this time)
        values = [float(t.item()) for t in flat]
    else:
        flat = [t.reshape(()) if t.ndim else t for t in flat]
        values = torch.stack(flat).cpu().double().tolist()  # the one sync (MPS has no float64)
    if len(flat) == len(losses):
        return values
    read = iter(values)
    return [next(read) if isinstance(t, torch.Tensor) else float(t) for t in losses]


class OneBatch:
    """One batch as a data source for a `Trainable` (an iterable, never mistaken for a
    dataset of samples)."""

    def __init__(self, batch: Any) -> None:
        self.batch = batch

    def __iter__(self) -> Any:
        return iter([self.batch])


def learning_rate(optimizer: Any) -> float | None:
    """The highest learning rate among the optimizer's parameter groups, or None without groups.

    The fastest group is the one that diverges or oscillates, and a group held low on purpose
    (a frozen backbone at 0, discriminative rates of 1e-5 under a head's 1e-3) is not the run's
    rate: reading the first group would tell a rate decayed to nothing or far too low. `mlcheck
    analyze` reads the same group (the rate curve with the highest median) when a log holds
    several."""
    groups = getattr(optimizer, "param_groups", None) or []
    return max((float(g["lr"]) for g in groups), default=None)


def _params(optimizer: Any) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]


def dense_values(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor`, or the values of a sparse one (the gradient of `nn.Embedding(sparse=True)`,
    stepped by `SparseAdam`), whose norm is the tensor's: norms of sparse tensors raise. The
    one place both the parameter scan and the layer statistics read sparse values."""
    return tensor if tensor.layout == torch.strided else tensor.coalesce().values()


class GradientAlignment:
    """The norm of a step's gradient and its cosine with the previous step's, the signal of
    gradients never zeroed (`stale-gradients`): `measure` before an optimizer step keeps a
    sample of the gradient, and at the step after one that kept it, measures the pair. Who
    calls it decides the steps: every step that `wants` and each scan step."""

    #: Most gradient values kept from a step to the next, for the cosine: 4 MiB of float32;
    #: larger models keep an evenly strided sample of each parameter's gradient.
    GRADIENT_SAMPLE = 1 << 20
    #: Early steps whose gradient is also kept (compared at the step after): gradients never
    #: zeroed show within tens of steps, before the loss they spoil is judged.
    EARLY_GRADIENT_STEPS = frozenset({2, 4, 8, 16})

    def __init__(self) -> None:
        self._ref: tuple[int, torch.Tensor] | None = None  # (step, sampled gradient)
        self._stats: tuple[int, float, float] | None = None  # (step, norm, cosine)

    @property
    def pending(self) -> bool:
        """True when a measurement waits to be taken."""
        return self._stats is not None

    def wants(self, step: int) -> bool:
        """True at the early steps and at the step after one that kept a gradient."""
        return step in self.EARLY_GRADIENT_STEPS or (self._ref is not None and self._ref[0] == step - 1)

    def measure(self, optimizer: Any, step: int) -> None:
        """Before an optimizer step: keeps a sample of the gradient, or, at the step after one
        that kept it, measures the gradient's norm and its cosine with the kept one."""
        # a sparse gradient's rows change every step: no cosine with the last one (dense ones only)
        grads = [p.grad.detach() for p in _params(optimizer) if p.grad is not None and p.grad.layout == torch.strided]
        if not grads:
            self._ref = None
            return
        stride = max(1, sum(g.numel() for g in grads) // self.GRADIENT_SAMPLE)
        flat = [g.reshape(-1) for g in grads]
        if stride > 1:
            flat = [f[::stride] for f in flat]
        sample = torch.cat(flat).float()  # a copy (each value as float32, as cast one by one)
        ref, self._ref = self._ref, None
        if ref is None or ref[0] != step - 1 or ref[1].shape != sample.shape:
            self._ref = (step, sample)
            return
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())
        cosine = torch.nn.functional.cosine_similarity(sample, ref[1], dim=0)
        values = torch.stack([norm, cosine]).tolist()  # the one sync
        if all(map(math.isfinite, values)):
            self._stats = (step, values[0], values[1])

    def take(self, step: int | None = None) -> tuple[float | None, float | None]:
        """(gradient norm, cosine with the previous step's gradient) measured at `step` (None:
        at whichever step it was last measured), once; (None, None) where there is none."""
        stats, self._stats = self._stats, None
        return (stats[1], stats[2]) if stats is not None and step in (None, stats[0]) else (None, None)


class _Window:
    """One armed window of `LeftoverGradients`: a few parameters of one optimizer, hooked from
    one of its steps to the next."""

    __slots__ = ("handles", "leftovers", "fresh", "clean")

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.leftovers: dict[int, list[torch.Tensor]] = {}  # per parameter: the norm found in .grad at each arrival
        self.fresh: dict[int, torch.Tensor] = {}  # per parameter: the norm of its first fresh gradient
        self.clean = False  # an arrival found .grad None: zeroed (set_to_none)

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


class LeftoverGradients:
    """Gradients that survive an optimizer step (`stale-gradients`, exactly): after a sampled
    step of an optimizer, a hook on a few of its parameters looks at `.grad` each time a
    backward reaches them, until that optimizer's next step. Where every such look finds the
    gradient the step used still there (non-zero), nothing zeroed it in between: the next step
    applies the sum. Per optimizer, so two optimizers stepping in turn (a GAN) and gradient
    accumulation (several backward()s between steps, zeroed after the step) stay clean; a
    zeroing anywhere between the steps makes a look find `.grad` None or zero. Nothing is read
    back on unsampled steps; one host sync per sampled window. A failure is logged once and
    switches it off: it never breaks the run it watches."""

    #: Parameters hooked per window (the first ones with a gradient, evenly spread): enough to
    #: see a zeroing, which clears every parameter of the optimizer at once.
    SAMPLED_PARAMETERS = 4
    #: Early steps (counted per optimizer, from 0) after which a window opens, besides every
    #: `every_n_steps`-th: the bug shows at the very first step, before the loss it spoils.
    EARLY_STEPS = frozenset({0, 2, 8})

    def __init__(self, optimizers: Any, every_n_steps: int) -> None:
        self.every_n_steps = every_n_steps
        self._steps: dict[int, int] = {}  # optimizer id -> its steps taken
        self._windows: dict[int, _Window] = {}  # optimizer id -> its open window
        self._found: tuple[float, float] | None = None  # (leftover norm, fresh norm)
        self._handles = [o.register_step_post_hook(self._after_step) for o in optimizers]

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        key = id(optimizer)
        step = self._steps.get(key, 0)
        self._steps[key] = step + 1
        window = self._windows.pop(key, None)
        if window is None and step not in self.EARLY_STEPS and step % self.every_n_steps:
            return  # the common case: one dict look-up and a modulo
        try:
            if window is not None:
                self._judge(window)
            if step in self.EARLY_STEPS or step % self.every_n_steps == 0:
                self._windows[key] = self._open(optimizer)
        except Exception as e:  # e.g. a parameter that cannot take a hook: the run goes on unwatched
            logger.warning("mlcheck: leftover-gradient measurement switched off after %s: %s", type(e).__name__, e)
            self.close()

    def _open(self, optimizer: Any) -> _Window:
        params = [p for p in _params(optimizer) if p.grad is not None and p.grad.layout == torch.strided]
        stride = max(1, len(params) // self.SAMPLED_PARAMETERS)
        window = _Window()
        for p in params[::stride][: self.SAMPLED_PARAMETERS]:
            window.handles.append(p.register_hook(self._arrival(window, p)))
        return window

    @staticmethod
    def _arrival(window: _Window, param: torch.Tensor) -> Callable[[torch.Tensor], None]:
        """The hook of one parameter: called with each fresh gradient before autograd adds it to
        `.grad`, so `.grad` still holds what was there before this backward."""
        key = id(param)

        def look(grad: torch.Tensor) -> None:
            held = param.grad
            with torch.no_grad():
                if key not in window.fresh:
                    window.fresh[key] = torch.linalg.vector_norm(grad.detach().float())
                if held is None:
                    window.clean = True
                else:
                    window.leftovers.setdefault(key, []).append(torch.linalg.vector_norm(held.float()))

        return look

    def _judge(self, window: _Window) -> None:
        """At the optimizer's next step: a leftover when every look found the gradient
        non-zero (its norm at the first look of each parameter), 0 when one found it zeroed;
        nothing when no backward reached the hooked parameters."""
        window.close()
        if not window.fresh:
            return
        keys = list(window.leftovers)
        looks = [n for k in keys for n in window.leftovers[k]]
        firsts = [window.leftovers[k][0] for k in keys]
        values = torch.stack([*looks, *firsts, *window.fresh.values()]).tolist()  # the one sync
        n, m = len(looks), len(keys)
        new = math.sqrt(sum(v * v for v in values[n + m :]))
        # zeroed to None (set_to_none) or in place (set_to_none=False) somewhere between the steps
        clean = window.clean or not all(v > 0 and math.isfinite(v) for v in values[:n])
        leftover = 0.0 if clean else math.sqrt(sum(v * v for v in values[n : n + m]))
        if self._found is None or self._found[0] == 0:  # two optimizers' windows: a leftover wins
            self._found = (leftover, new)

    def take(self) -> tuple[float, float] | None:
        """(norm of the gradient found left over on the hooked parameters, norm of the fresh
        gradient of the first backward after the step) when a window showed it since the last
        call, else None."""
        found, self._found = self._found, None
        return found

    def close(self) -> None:
        """Removes every hook."""
        for window in self._windows.values():
            window.close()
        self._windows = {}
        for handle in self._handles:
            handle.remove()
        self._handles = []


class GradientProbe:
    """`Monitor(optimizer=...)` in a hand-written loop: a step pre-hook on the optimizer (torch
    >= 2.0) measures the gradient's norm and its cosine with the previous step's at the steps
    the callbacks measure them (the early steps 3, 5, 9 and 17, and the step after every
    `every_n_steps`-th), counting the optimizer's steps from 0; `take` hands the latest
    measurement to the next `Monitor.log_step`, `take_leftover` the gradients found left over
    across a step (`LeftoverGradients`). A failure is logged once and switches it off: it never
    breaks the loop it watches."""

    def __init__(self, optimizer: Any, every_n_steps: int) -> None:
        self.every_n_steps = every_n_steps
        self.alignment = GradientAlignment()
        self.leftover = LeftoverGradients([optimizer], every_n_steps)
        self.steps = 0  # optimizer steps seen
        self._handle = optimizer.register_step_pre_hook(self._before_step)

    def _before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        step, self.steps = self.steps, self.steps + 1
        if step % self.every_n_steps and not self.alignment.wants(step):
            return
        try:
            self.alignment.measure(optimizer, step)
        except Exception as e:  # e.g. sparse or meta gradients: the loop goes on unwatched
            logger.warning("mlcheck: gradient measurement switched off after %s: %s", type(e).__name__, e)
            self.close()

    def take(self) -> tuple[float | None, float | None]:
        """(gradient norm, cosine) measured since the last call, else (None, None)."""
        return self.alignment.take()

    def take_leftover(self) -> tuple[float, float] | None:
        """(leftover gradient norm, fresh gradient norm) found since the last call, else None."""
        return self.leftover.take()

    def close(self) -> None:
        """Removes the hooks from the optimizer."""
        self.leftover.close()
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


class ParameterScan:
    """Before an optimizer step (every n steps): non-finite gradients and weights, and a copy of
    the weights; after it: |dW| / |W|. Parameters are named by the module's `named_parameters`.
    All on the device, a few fused ops per scan. `gradients()` at a scan step and at the step
    after it: the second step's gradient norm and its cosine with the first's
    (`GradientAlignment`), unless `track_gradients` is False (the framework zeroes them)."""

    def __init__(self, module: torch.nn.Module, *, track_gradients: bool = True) -> None:
        self.names = {id(p): n for n, p in module.named_parameters()}
        self.input_kind = task.input_kind_of_model((type(m) for m in module.modules()), ordered=False)
        self._snapshot: list[torch.Tensor] | None = None
        self._snapshot_params: list[torch.Tensor] = []
        self._snapshot_norm = 0.0
        self._snapshot_step: int | None = None
        self._empty_step: int | None = None  # a scanned step whose optimizer held no gradient at all
        self._measured: dict[str, list[str]] = {}
        self._alignment = GradientAlignment() if track_gradients else None

    def before_step(self, optimizer: Any, step: int, *, scaled: bool) -> None:
        """Scans the parameters the optimizer is about to update (`scaled`: a GradScaler skips
        steps with non-finite gradients, so those are no finding)."""
        if self._snapshot is not None:
            return
        params = _params(optimizer)
        if not params:
            return
        with_grad = [p for p in params if p.grad is not None]
        if not with_grad:  # nothing for the step to apply (step() before backward()): an update of 0
            self._empty_step = step
            return
        weights = [p.detach() for p in params]
        # one norm pass over gradients and weights, and one host sync for all that it decides
        # (the same per-tensor norms, and the same weight norm, as a pass over each list)
        norms = torch._foreach_norm([dense_values(p.grad) for p in with_grad] + weights)
        g = len(with_grad)
        w_norms = torch.stack(norms[g:])
        values = torch.stack([*norms, torch.linalg.vector_norm(w_norms)]).tolist()
        bad_grads = self._names_nonfinite(with_grad, values[:g])
        if bad_grads and scaled:
            return  # the scaler skips this step and lowers its scale: not a finding
        bad_weights = self._names_nonfinite(params, values[g:-1])
        if not bad_grads and not bad_weights:
            self._snapshot = [w.clone() for w in weights]
            self._snapshot_params = params
            self._snapshot_norm = values[-1]
        self._measured = {k: v for k, v in (("nonfinite_grads", bad_grads), ("nonfinite_weights", bad_weights)) if v}
        self._snapshot_step = step

    @property
    def idle(self) -> bool:
        """True when `after_step` and `gradient_stats` have nothing to hand over (most steps)."""
        return (
            self._snapshot is None
            and self._empty_step is None
            and not self._measured
            and not (self._alignment and self._alignment.pending)
        )

    def after_step(self, step: int) -> tuple[float | None, dict[str, list[str]]]:
        """(update ratio of this step where it was scanned, names found non-finite before it)."""
        ratio = self._update_ratio() if self._snapshot is not None and self._snapshot_step == step else None
        if self._empty_step == step:
            ratio, self._empty_step = 0.0, None  # exact: an optimizer skips parameters without a gradient
        self._snapshot = None
        measured, self._measured = self._measured, {}
        return ratio, measured

    def wants_gradients(self, step: int) -> bool:
        """True at the early steps and at the step after one that kept a gradient."""
        return self._alignment is not None and self._alignment.wants(step)

    def gradients(self, optimizer: Any, step: int) -> None:
        """Before an optimizer step: `GradientAlignment.measure` (nothing when not tracked)."""
        if self._alignment is not None:
            self._alignment.measure(optimizer, step)

    def gradient_stats(self, step: int) -> tuple[float | None, float | None]:
        """(gradient norm, cosine with the previous step's gradient) where measured at `step`."""
        return self._alignment.take(step) if self._alignment is not None else (None, None)

    def nonfinite_now(self, optimizer: Any, *, scaled: bool) -> dict[str, list[str]]:
        """Names of the parameters whose gradients or weights are non-finite now."""
        params = _params(getattr(optimizer, "_optimizer", optimizer))
        if not params:
            return {}
        measured = {}
        if not scaled:
            measured["nonfinite_grads"] = self._nonfinite_grads(params)
        norms = torch.stack(torch._foreach_norm([p.detach() for p in params]))
        measured["nonfinite_weights"] = self._nonfinite(params, norms)
        return {k: v for k, v in measured.items() if v}

    def _nonfinite_grads(self, params: list[torch.Tensor]) -> list[str]:
        with_grad = [p for p in params if p.grad is not None]
        if not with_grad:
            return []
        return self._nonfinite(with_grad, torch.stack(torch._foreach_norm([dense_values(p.grad) for p in with_grad])))

    def _names_nonfinite(self, params: list[torch.Tensor], norms: list[float]) -> list[str]:
        """Names of the parameters whose norm (read to the host already) is NaN or Inf."""
        if all(map(math.isfinite, norms)):
            return []
        return [
            self.names.get(id(p), f"param{i}") for i, (p, n) in enumerate(zip(params, norms)) if not math.isfinite(n)
        ]

    def _nonfinite(self, params: list[torch.Tensor], norms: torch.Tensor) -> list[str]:
        """Names of the parameters whose norm (on the device: read in one sync) is NaN or Inf."""
        return self._names_nonfinite(params, norms.tolist())

    def _update_ratio(self) -> float | None:
        if not self._snapshot_norm or not math.isfinite(self._snapshot_norm):
            return None
        after = [p.detach() for p in self._snapshot_params]
        # in place, on the snapshot no longer needed: before - after is -(after - before) exactly
        torch._foreach_sub_(self._snapshot, after)
        delta = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(self._snapshot))))
        if delta == 0.0:
            return None  # no step was taken (e.g. skipped by a GradScaler or a closure)
        return delta / self._snapshot_norm
