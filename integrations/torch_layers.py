"""Per-layer statistics of a torch model on sampled steps, and where a NaN or Inf was born.

`LayerRecorder` attaches a forward hook (one, global, that reads the recorded layers' outputs)
and gradient hooks to the layers' parameters on a sampled step only, reduces each output and
gradient on the device to a few numbers, brings them to the host in one transfer (on the CPU,
numpy reads them in place) and removes every hook (also when the step raises). The
numbers become a framework-free `mlcheck.layers.LayerObservation` for the checks.
`locate_nonfinite` re-runs a batch on a copy of the model with hooks on every module and names
the first one that produced a NaN or Inf from finite inputs.

Example (a plain loop):
    >>> from mlcheck import Monitor
    >>> from mlcheck.integrations.torch_layers import LayerRecorder
    >>> recorder = LayerRecorder(model)                          # doctest: +SKIP
    >>> with Monitor(log_dir="runs/exp1") as monitor:            # doctest: +SKIP
    ...     for step, (x, y) in enumerate(loader):
    ...         with recorder.step(monitor, step, sample=step % 25 == 0):
    ...             loss = loss_fn(model(x), y)
    ...             optimizer.zero_grad(); loss.backward(); optimizer.step()
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from mlcheck.integrations.torch_live import dense_values
from mlcheck.layers import RECTIFYING, SATURATING, LayerObservation, LayerStats, NonfiniteOrigin, layer_stats

__all__ = [
    "LayerRecorder",
    "RecordedLayer",
    "activation_of",
    "locate_nonfinite",
]

#: torch's warning at each call of a compiled module while a global module hook exists
_COMPILE_HOOK_WARNING = r"Using `torch\.compile\(module\)` when there are global hooks on modules"
_ACTIVATIONS = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Hardtanh": "hardtanh",
    "Hardsigmoid": "hardsigmoid",
    "Softsign": "softsign",
}
#: A saturating activation's value counts as saturated where its slope is below this share of
#: its largest slope (tanh |y| > 0.995, sigmoid y < 0.0025 or > 0.9975): SageMaker's input
#: bounds (tanh |x| > 9.5) are far stricter; 1% already stops learning through the unit.
SLOPE_FLOOR = 0.01
#: A unit (feature or channel) is dead when active on fewer than this share of the batch's values,
#: saturated when saturated on more than 1 - this share (SageMaker DeadRelu and
#: SaturatedActivation: 1% / 99%).
UNIT_SHARE = 0.01
#: nonfinite, sum, sum of squares, -min, max, non-zero, saturated, saturated units, dead units
_FORWARD_STATS = 9
#: where the shares start (non-zero, saturated, saturated units, dead units): NaN for an output
#: holding NaN or Inf, whose zeros, saturation and dead units cannot be told
_SHARES = 5
#: Buckets of the per-layer activation histogram (`LayerStats.histogram`), taken on every
#: `HISTOGRAM_EVERY`-th recorded step (its ~8 extra operations per layer stay off the others),
#: for activation modules and for layers whose output does not go straight into one (a Conv2d
#: followed by a ReLU module gets none: the ReLU's shows what it passes on; a third of the cost).
HISTOGRAM_BINS = 30
HISTOGRAM_EVERY = 4


def activation_of(module: nn.Module) -> str | None:
    """The activation a module applies ("relu", "tanh", ...), None for other modules."""
    return _ACTIVATIONS.get(type(module).__name__)


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        return _first_tensor(list(value.values()))
    return None


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _needs_grad(args: Any) -> bool:
    """True when a module's inputs carry a gradient."""
    if len(args) == 1 and type(args[0]) is torch.Tensor:  # the usual single input
        return args[0].requires_grad
    return any(t.requires_grad for t in _tensors(args))


def _saturated(y: torch.Tensor, activation: str) -> torch.Tensor:
    """Where the activation's slope is below `SLOPE_FLOOR` of its maximum, from its output."""
    if activation == "tanh":
        return 1 - y * y < SLOPE_FLOOR
    if activation == "sigmoid":
        return 4 * y * (1 - y) < SLOPE_FLOOR
    if activation == "softsign":
        return (1 - y.abs()) ** 2 < SLOPE_FLOOR
    if activation == "hardtanh":
        return y.abs() >= 1
    return (y <= 0) | (y >= 1)  # hardsigmoid


def _unit_dims(x: torch.Tensor, channels_first: bool) -> tuple[int, ...]:
    """The dimensions a per-unit (feature or channel) count sums over: all but the unit's."""
    if x.ndim < 2:
        return tuple(range(x.ndim))  # one unit: the whole output
    unit = 1 if channels_first else x.ndim - 1
    return tuple(d for d in range(x.ndim) if d != unit)


def _on_host(x: torch.Tensor) -> bool:
    """True for a plain dense CPU tensor, whose values numpy reads in place."""
    return x.is_cpu and x.layout == torch.strided and type(x) is torch.Tensor  # is_cpu: no device object


def _forward_stats(
    output: torch.Tensor, activation: str | None, channels_first: bool, nan: torch.Tensor
) -> tuple[torch.Tensor | list[float], int]:
    """`_FORWARD_STATS` raw numbers of one output, `nan` where not applicable: non-finite count,
    sum, sum of squares, -min, max, non-zero count, then the activation's saturated count,
    saturated units and dead units; and the number of units. Means, standard deviations and
    shares are derived on the host. On an accelerator the numbers stay a tensor on the device
    (gathered in `finish`, one transfer); on the CPU they are floats already (`_host_stats`).
    Float arithmetic where it can be: a comparison's boolean mask and its sum cost several
    float passes on the CPU (a ReLU output of 64k values costs ~40 us this way, ~500 us with
    `isfinite` and `== 0` counts)."""
    x = output.detach()
    if x.dtype != torch.float32:
        x = x.float()
    if _on_host(x):
        return _host_stats(x, activation, channels_first)
    return _device_stats(x, activation, channels_first, nan)


def _device_stats(
    x: torch.Tensor, activation: str | None, channels_first: bool, nan: torch.Tensor
) -> tuple[torch.Tensor, int]:
    """`_forward_stats` of a float32 tensor as a tensor on its device, without a host sync."""
    flat = x.reshape(-1)
    n = flat.numel()
    if not n:
        return nan.expand(_FORWARD_STATS), 0
    saturated = saturated_units = dead_units = nan
    # x - x: 0 where finite, NaN at NaN and +-Inf
    nonfinite = (flat - flat).nan_to_num_(1.0).sum()
    dims = _unit_dims(x, channels_first)
    if activation in RECTIFYING:  # values >= 0: sign() is 1 where active, 0 at the zeros
        low, high = nan, flat.amax()
        active = torch.sign(x).sum(dims)
        units = active.numel()
        nonzero = active.sum()
        dead_units = (active < UNIT_SHARE * (n / units)).sum().float()  # stack() is slower promoting
    else:
        low, high = torch.aminmax(flat)
        low = -low
        nonzero = flat.abs().sign_().sum()
        units = 0
        if activation in SATURATING:
            counts = _saturated(x, activation).sum(dims)
            units = counts.numel()
            saturated = counts.sum().float()
            saturated_units = (counts > (1 - UNIT_SHARE) * (n / units)).sum().float()
    parts = [nonfinite, flat.sum(), torch.dot(flat, flat), low, high, nonzero, saturated, saturated_units, dead_units]
    stats = torch.stack(parts)
    # the shares mean nothing where the output holds NaN/Inf (an all-NaN ReLU output counted as
    # every unit dead): NaN there, as `_host_stats` gives, chosen on the device without a sync
    stats[_SHARES:] = torch.where(nonfinite > 0, nan, stats[_SHARES:])
    return stats, units


def _host_stats(x: torch.Tensor, activation: str | None, channels_first: bool) -> tuple[list[float], int]:
    """`_forward_stats` of a float32 CPU tensor, as floats: the same numbers from numpy on the
    tensor's own memory, where reading a value costs nothing and an operation ~1 us instead of
    torch's ~5 us (a third of the CPU time per layer: `bench_layer_costs.py`). A finite sum of
    squares proves every value finite, so the non-finite count is taken only when it is not."""
    flat = x.numpy().ravel(order="K")  # memory order: a view for channels_last outputs too
    n = flat.size
    if not n:
        return [math.nan] * _FORWARD_STATS, 0
    # the ufuncs' reductions called directly: `flat.sum()`, `.min()` and `.max()` are the same
    # reductions behind a Python wrapper each (the same values; a sixth of this function's calls)
    with np.errstate(all="ignore"):  # NaN, Inf and overflows are values here, as in torch
        squares = float(np.dot(flat, flat))
        nonfinite = 0 if math.isfinite(squares) else n - int(np.count_nonzero(np.isfinite(flat)))
        total = float(_sum(flat))
        saturated = saturated_units = dead_units = math.nan
        dims = _unit_dims(x, channels_first)
        units = 0
        if activation in RECTIFYING:  # values >= 0: sign() is 1 where active, 0 at the zeros
            low, high = math.nan, float(_max(flat))
            active = torch.sign(x).sum(dims).numpy()  # faster than numpy's per-axis counts
            units = active.size
            nonzero = float(_sum(active, axis=None))
            dead_units = float(np.count_nonzero(active < UNIT_SHARE * (n / units)))
        else:
            low, high = -float(_min(flat)), float(_max(flat))
            # zeros are rare outside rectifiers: a smallest |value| above 0 proves there are
            # none in two fast passes (a count takes ~3x as long)
            nonzero = float(n) if _min(np.abs(flat)) > 0 else float(np.count_nonzero(flat))
            if activation in SATURATING:
                counts = _saturated(x, activation).sum(dims).numpy()
                units = counts.size
                saturated = float(_sum(counts, axis=None))
                saturated_units = float(np.count_nonzero(counts > (1 - UNIT_SHARE) * (n / units)))
    if nonfinite:  # the shares mean nothing where the output holds NaN/Inf (`_device_stats`)
        nonzero = saturated = saturated_units = dead_units = math.nan
    return [float(nonfinite), total, squares, low, high, nonzero, saturated, saturated_units, dead_units], units


_sum, _min, _max = np.add.reduce, np.minimum.reduce, np.maximum.reduce


def _histogram(flat: torch.Tensor, stats: torch.Tensor, rectifying: bool) -> torch.Tensor:
    """min, max and `HISTOGRAM_BINS` equal-width bucket counts of one output, on its device and
    without a host sync, from the min and max `_forward_stats` took (a rectifier's min: 0).
    Meaningless where the output holds NaN or Inf: the host then drops it."""
    low = torch.zeros_like(stats[4]) if rectifying else -stats[3]
    scale = HISTOGRAM_BINS / (stats[4] - low).clamp_min(1e-30)
    index = ((flat - low) * scale).nan_to_num_(0.0, 0.0, 0.0).long().clamp_(0, HISTOGRAM_BINS - 1)
    counts = torch.bincount(index, minlength=HISTOGRAM_BINS).float()
    return torch.cat([low.reshape(1), stats[4].reshape(1), counts])


def _host_histogram(x: torch.Tensor, stats: list[float], rectifying: bool) -> list[float] | None:
    """`_histogram` of a float32 CPU tensor from its `_host_stats`, as floats; None where the
    output holds NaN or Inf."""
    low, high = 0.0 if rectifying else -stats[3], stats[4]
    if stats[0] or not (math.isfinite(low) and math.isfinite(high)):
        return None
    scaled = np.subtract(x.numpy().ravel(order="K"), np.float32(low))
    scaled *= np.float32(HISTOGRAM_BINS / max(high - low, 1e-30))
    # >= 0: low is the minimum. intp, which bincount counts without a converted copy; the top
    # bucket takes what lands at or past it (the maximum, rounding) after the count, not by a
    # clip of every index before it: one pass and one copy fewer, the same counts
    counts = np.bincount(scaled.astype(np.intp), minlength=HISTOGRAM_BINS + 1)
    return [low, high, *counts[: HISTOGRAM_BINS - 1].tolist(), int(counts[HISTOGRAM_BINS - 1 :].sum())]


def _check_breakpoints(breakpoints: Any) -> None:
    """A `TorchBreakpoints` or None; anything else raises here, naming the argument, rather
    than deep in the recorder after the step ran."""
    if breakpoints is not None and not hasattr(breakpoints, "on_layers"):
        raise TypeError(
            "breakpoints must be a mlcheck.integrations.torch_breakpoints.TorchBreakpoints "
            f"(e.g. TorchBreakpoints({breakpoints!r:.60})), got {type(breakpoints).__name__}"
        )


def _gather(parts: list[torch.Tensor | list[float]]) -> list[float]:
    """The numbers of `parts` in order: the tensors brought to the host together (`_to_host`),
    the lists (numbers already on the host) as they are."""
    tensors = [p for p in parts if isinstance(p, torch.Tensor)]
    if len(tensors) == len(parts):
        return _to_host(tensors)
    moved = iter(_to_host(tensors))
    values: list[float] = []
    for p in parts:
        values.extend(itertools.islice(moved, p.numel()) if isinstance(p, torch.Tensor) else p)
    return values


def _to_host(parts: list[torch.Tensor]) -> list[float]:
    """Concatenated on their device, then one host transfer (per device, where a model is split
    over several)."""
    parts = [t for t in parts if t.numel()]
    if not parts:
        return []
    if len(parts) == 1:  # the usual case: the fused norms alone (a one-tensor cat is a copy)
        t = parts[0]
        return (t if t.dtype == torch.float32 else t.float()).cpu().tolist()
    devices = {t.device for t in parts}
    if len(devices) == 1:
        return torch.cat([t if t.dtype == torch.float32 else t.float() for t in parts]).cpu().tolist()
    return torch.cat([t.float().cpu() for t in parts]).tolist()


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """True when every value of `tensors` is finite (one fused norm and one host sync). The
    largest |value| (ord=inf), not the L2 norm: a sum of squares overflows float32 from values
    of ~1.8e19 up, so weights grown huge but finite (an SGD run on its way to an overflowing
    loss) read as non-finite, and no finite weights were left to re-run its batch with."""
    if not tensors:
        return True
    norms = torch._foreach_norm([dense_values(t) for t in tensors], ord=math.inf)
    if len({n.device for n in norms}) > 1:  # a model split over devices
        norms = [n.cpu() for n in norms]
    return bool(torch.isfinite(torch.stack(norms)).all())


def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norms of `tensors` as one 1-D tensor (on their device): one fused operation."""
    if not tensors:
        return torch.zeros(0)
    norms = torch._foreach_norm([dense_values(t) for t in tensors])
    if len({n.device for n in norms}) > 1:  # a model split over devices
        norms = [n.cpu() for n in norms]
    return torch.stack(norms)


def _sqrt(value: float | None) -> float | None:
    return None if value is None else math.sqrt(value) if value >= 0 else value


class RecordedLayer:
    """A recorded module: its path, kind, activation and own parameters (by name). By default
    read from a torch module; other frameworks whose layers are torch modules (Keras on its
    torch backend) pass them explicitly, and `running_stats` too: the (mean, variance) tensors
    of a BatchNorm layer that is not a torch `_BatchNorm` (Keras' moving statistics), read
    after each recorded step for `LayerStats.running_stats_at_init`."""

    __slots__ = ("activation", "kind", "module", "names", "params", "path", "running_stats")

    def __init__(
        self,
        path: str,
        module: nn.Module,
        *,
        kind: str | None = None,
        activation: str | None = None,
        params: list[tuple[str, torch.Tensor]] | None = None,
        running_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.path = path
        self.module = module
        self.running_stats = running_stats
        self.kind = kind or type(module).__name__
        self.activation = activation if kind is not None else activation_of(module)
        named = list(module.named_parameters(recurse=False)) if params is None else params
        # floating-point weights only: a Keras Normalization's count or a seed state is an integer
        named = [(n, p) for n, p in named if torch.is_tensor(p) and p.is_floating_point()]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]


class LayerRecorder:
    """Records per-layer statistics of a torch model on the steps it is asked to.

    Layers are the modules with parameters of their own and the activation modules (ReLU,
    Tanh, Sigmoid, ...). On a recorded step: each one's forward output (non-finite count,
    |max|, mean, std, share of zeros; saturated share and saturated units for tanh/sigmoid-like
    activations, dead units for ReLU-like ones), the L2 norm of its parameters' gradients (read
    by gradient hooks as they accumulate, so it does not matter where `zero_grad` is called),
    and |weights after - before| / |before|. Nothing stays attached between recorded steps and
    training computes exactly what it would without the recorder.

    Args:
        model: the `nn.Module` (a LightningModule too).
        keep_tensors: also keep each layer's input, output and weights of a recorded step in
            `kept` (module path -> dict of CPU tensors) until the next one, for breakpoint
            snapshots. Default False.
        keep_weights: keep the weights of the last recorded step whose weights were all finite
            (the copy a recorded step takes anyway for the update ratio, kept instead of freed:
            one copy of the trainable weights), so that a batch whose loss turned out
            non-finite some steps later can be re-run with finite weights
            (`weights_for_rerun`). Default False.
        grad_hooks: read each gradient with a hook as it accumulates (default True), so that
            it does not matter where the loop calls `zero_grad`. False reads `.grad` in `finish`
            instead, for loops that keep the step's gradients until then (Lightning's automatic
            optimization zeroes them before the next backward): no hook to add and remove per
            parameter (~5 us each).

    Example:
        >>> recorder = LayerRecorder(model)                      # doctest: +SKIP
        >>> recorder.start()                                     # doctest: +SKIP
        >>> loss = loss_fn(model(x), y); loss.backward(); optimizer.step()
        >>> observation = recorder.finish(step=0)                # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        keep_tensors: bool = False,
        layers: Iterable[RecordedLayer] | None = None,
        channels_last: bool = False,
        keep_weights: bool = False,
        grad_hooks: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}: {model!r:.80}")
        self.model = model
        self.keep_weights = keep_weights
        self.grad_hooks = grad_hooks
        #: with `keep_weights`: (parameter, its value) at the last recorded step whose weights
        #: were all finite, and that step
        self.finite_weights: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.finite_step: int | None = None
        self.channels_last = channels_last
        self.keep_tensors = keep_tensors
        #: with `keep_tensors`: the last recorded step's tensors per layer path ("input",
        #: "output", "weights": the weights that produced the output, before the step)
        self.kept: dict[str, dict[str, Any]] = {}
        self._kept: dict[int, tuple[torch.Tensor | None, torch.Tensor]] = {}
        if layers is not None:
            self.layers = list(layers)
        else:
            self.layers = [
                RecordedLayer(path, m)
                for path, m in model.named_modules()
                if path and (activation_of(m) or any(True for _ in m.parameters(recurse=False)))
            ]
        self._handles: list[Any] = []
        self._index: dict[int, int] = {}  # id(module) -> its position in `layers`, while recording
        self._feeds: set[int] = set()  # layers whose output goes straight into an activation module
        self._forward: dict[int, tuple[torch.Tensor, bool]] = {}
        self._hist: dict[int, torch.Tensor] = {}  # histograms of this recorded step, if taken
        self._init_distances: dict[str, float | None] = {}  # of each frozen layer, measured once
        self._stats_moved: set[int] = set()  # layers whose `running_stats` left (0, 1): never back
        self._histograms = False
        self._recorded = 0  # recorded steps so far
        self._order: dict[int, int] = {}
        self._source: dict[int, int] = {}
        self._grads: dict[tuple[int, int], torch.Tensor] = {}
        self._numel: dict[int, tuple[int, int]] = {}  # layer -> (output values, units)
        self._nan: dict[torch.device, torch.Tensor] = {}
        self._before: list[torch.Tensor] = []
        self._last_weighted: int | None = None
        self.recording = False
        self._compiled: bool | None = None  # the model holds a torch.compile'd module
        self._filter: tuple | None = None  # the warnings filter `_quiet_compile_warning` added

    # -- one recorded step -----------------------------------------------------------------------

    def start(self) -> None:
        """Attaches the hooks and keeps a copy of the trainable weights, until `finish`."""
        if self.recording:
            return
        self._forward, self._order, self._source, self._grads = {}, {}, {}, {}
        self._kept, self.kept, self._hist = {}, {}, {}
        self._histograms = self._recorded % HISTOGRAM_EVERY == 0
        self._recorded += 1
        self._last_weighted = None
        # one global forward hook, not one per layer: registering and removing a module's hook
        # costs ~5 us, and a dict lookup filters the modules that are not recorded (~0.3 us)
        self._index = {id(layer.module): i for i, layer in enumerate(self.layers)}
        if self._compiled is None:  # once: a model's modules are not compiled mid-run
            self._compiled = any(hasattr(m, "_orig_mod") and hasattr(m, "dynamo_ctx") for m in self.model.modules())
        if self._compiled:
            self._quiet_compile_warning()
        self._handles.append(nn.modules.module.register_module_forward_hook(self._on_forward))
        for i, layer in enumerate(self.layers if self.grad_hooks else ()):
            for p in layer.params:
                if p.requires_grad:
                    self._handles.append(p.register_post_accumulate_grad_hook(self._grad_hook(i)))
        with torch.no_grad():
            self._before = [p.detach().clone() for layer in self.layers for p in layer.params if p.requires_grad]
        self.recording = True

    def remove_hooks(self) -> None:
        """Detaches every hook (idempotent; also used when a step raises)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._filter is not None:
            with contextlib.suppress(ValueError):  # the program reset the filters meanwhile
                warnings.filters.remove(self._filter)
            getattr(warnings, "_filters_mutated", lambda: None)()
            self._filter = None

    def _quiet_compile_warning(self) -> None:
        """Silences torch's "Using `torch.compile(module)` when there are global hooks on modules"
        while this recorder's own global forward hook is attached. torch warns at every call of a
        compiled module while any global hook exists, and the warning's consequence (the hook
        fires once more, for the `OptimizedModule` wrapper) is nothing here: the wrapper holds no
        weights of its own, so it is not a recorded layer and its call is filtered out. Without
        this a healthy compiled model printed the warning at each recorded step (batch 18 h01)."""
        if self._filter is not None:
            return
        warnings.filterwarnings("ignore", message=_COMPILE_HOOK_WARNING, category=UserWarning)
        self._filter = warnings.filters[0]

    def abort(self) -> None:
        """Drops a recording in progress."""
        self.remove_hooks()
        self._before, self._forward, self._grads, self._kept, self._hist = [], {}, {}, {}, {}
        self.recording = False

    def finish(self, step: int, epoch: int | None = None) -> LayerObservation:
        """Detaches the hooks and returns the step's statistics (one host transfer)."""
        self.remove_hooks()
        self.recording = False
        trainable = [(i, p) for i, layer in enumerate(self.layers) for p in layer.params if p.requires_grad]
        if not self.grad_hooks:
            self._grads = {(i, id(p)): p.grad for i, p in trainable if p.grad is not None}
        with torch.no_grad():
            after = [p for _, p in trainable]  # no_grad: nothing to detach
            parts = [stats for stats, _ in self._forward.values()]
            # one fused norm: the gradients, the updates and the weights before, all the weights
            deltas = torch._foreach_sub(after, self._before) if after else []
            weights = [p for layer in self.layers for p in layer.params]
            parts.append(_norms([*self._grads.values(), *deltas, *self._before, *weights]))
            parts.extend(self._hist.values())  # last: the positions before them stay fixed
            values = _gather(parts)
            if self.keep_tensors:
                self._keep(trainable)
        if self.keep_weights and after:
            # where the norms of the weights before the step begin
            start = _FORWARD_STATS * len(self._forward) + len(self._grads) + len(trainable)
            if all(map(math.isfinite, values[start : start + len(trainable)])):
                self.finite_weights = [(p, b) for (_, p), b in zip(trainable, self._before)]
                self.finite_step = step
        self._before = []
        return self._observation(step, epoch, values, trainable)

    def weights_for_rerun(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """The weights to re-run a batch with (`locate_nonfinite(weights=...)`) once its loss
        is known to be non-finite, possibly some steps late: [] when the trainable weights are
        all finite now (the model's own serve), else those kept at the last recorded step
        whose weights were finite (`keep_weights`), else None: nothing finite to re-run with
        (a re-run on broken weights would name the first layer that holds them, not the
        origin)."""
        params = [p.detach() for layer in self.layers for p in layer.params if p.requires_grad]
        if not params or _all_finite(params):
            return []
        return self.finite_weights or None

    def keep_weights_now(self, step: int) -> None:
        """Keeps a copy of the trainable weights as they are now, where all are finite, as those
        `weights_for_rerun` hands out: called where a step's loss is found non-finite before the
        optimizer steps on it, so that its batch is re-run with the weights that produced it."""
        params = [p for layer in self.layers for p in layer.params if p.requires_grad]
        with torch.no_grad():
            copies = [p.detach().clone() for p in params]
        if copies and _all_finite(copies):
            self.finite_weights = list(zip(params, copies))
            self.finite_step = step

    def release_weights(self) -> None:
        """Frees the weights kept by `keep_weights`."""
        self.finite_weights, self.finite_step = [], None

    def _keep(self, trainable: list[tuple[int, Any]]) -> None:
        """The recorded step's input, output and weights (before the step) of each layer, on the
        CPU, in `kept`."""
        before = {id(p): b for (_, p), b in zip(trainable, self._before)}
        for i, (x, y) in self._kept.items():
            layer = self.layers[i]
            weights = {name: before.get(id(p), p.detach()).cpu().clone() for name, p in zip(layer.names, layer.params)}
            self.kept[layer.path] = {"input": x, "output": y, "weights": weights}
        self._kept = {}

    @contextlib.contextmanager
    def step(
        self,
        monitor: Any,
        step: int,
        *,
        epoch: int | None = None,
        sample: bool = True,
        batch: Any = None,
        breakpoints: Any = None,
    ) -> Iterator[None]:
        """Records the training step run inside the block (forward, backward and optimizer
        step) when `sample` is True, and hands the statistics to `monitor.log_layers`. Hooks are
        removed on the way out, also when the block raises.

        With `breakpoints` (a `mlcheck.integrations.torch_breakpoints.TorchBreakpoints`), a
        tripped one saves `batch` (what the model was given) with the layer's tensors."""
        _check_breakpoints(breakpoints)
        if not sample:
            yield
            return
        if breakpoints is not None:
            self.keep_tensors = True
        self.start()
        try:
            yield
        except BaseException:
            self.abort()
            raise
        if self.recording:  # not dropped by `locate` inside the block
            observation = self.finish(step, epoch)
            found = monitor.log_layers(observation)
            if breakpoints is not None:
                breakpoints.on_layers(monitor, observation, found, self, batch)

    def locate(
        self,
        monitor: Any,
        step: int,
        compute_loss: Callable[[nn.Module], torch.Tensor | None],
        *,
        epoch: int | None = None,
        allow: Iterable[str] = (),
        batch: Any = None,
        breakpoints: Any = None,
    ) -> list[Any]:
        """For a step whose loss or gradients are non-finite: names the module that produced
        them (`locate_nonfinite`, on a copy) and hands it to `monitor.log_layers`; returns the
        findings. Drops the step's recording, which would only repeat the finding. With
        `breakpoints` (`TorchBreakpoints`), a breakpoint on `nonfinite-origin` saves `batch` and the
        module's tensors."""
        _check_breakpoints(breakpoints)
        self.abort()
        capture: dict[str, Any] | None = {} if breakpoints is not None else None
        origin = locate_nonfinite(self.model, compute_loss, allow=allow, capture=capture)
        if origin is None:
            return []
        found = monitor.log_layers(LayerObservation(step=step, epoch=epoch, layers=(), origin=origin))
        if breakpoints is not None:
            breakpoints.on_origin(monitor, found, capture or {}, self.model, batch)
        return found

    # -- hooks ---------------------------------------------------------------------------------------

    def _on_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        i = self._index.get(id(module))
        if i is None:  # not a recorded layer (or a copy of one: deepcopy copies hooks)
            return
        layer = self.layers[i]
        if layer.params:
            self._last_weighted = i
        out = output if type(output) is torch.Tensor else _first_tensor(output)
        if i not in self._order:
            self._order[i] = len(self._order)
            if layer.activation and self._last_weighted not in (None, i):
                self._source[i] = self._last_weighted
        if out is None or not out.is_floating_point():
            return
        source = self._source.get(i)
        channels_first = not self.channels_last and (
            out.ndim != 3 or (source is not None and self.layers[source].kind.startswith("Conv"))
        )
        needs_grad = _needs_grad(args)
        nan = self._nan.get(out.device)
        if nan is None:
            nan = self._nan[out.device] = torch.full((), math.nan, device=out.device)
        stats, units = _forward_stats(out, layer.activation, channels_first, nan)
        self._forward[i] = (stats, needs_grad)
        if source is not None:  # the activation's histogram shows what its source passes on
            self._feeds.add(source)
            self._hist.pop(source, None)
        if self._histograms and out.numel() and i not in self._feeds:
            self._take_histogram(i, out, stats)
        if self.keep_tensors:  # copies: a later in-place op must not change them
            x = _first_tensor(args)
            self._kept[i] = (None if x is None else x.detach().cpu().clone(), out.detach().cpu().clone())
        self._numel[i] = (out.numel(), units)

    def _take_histogram(self, i: int, out: torch.Tensor, stats: torch.Tensor | list[float]) -> None:
        rectifying = self.layers[i].activation in RECTIFYING
        if isinstance(stats, list):
            histogram = _host_histogram(out.detach().float(), stats, rectifying)
            if histogram is not None:
                self._hist[i] = histogram
        else:
            self._hist[i] = _histogram(out.detach().reshape(-1).float(), stats, rectifying)

    def _grad_hook(self, i: int) -> Callable[[torch.Tensor], None]:
        params = self.layers[i].params

        def hook(param: torch.Tensor) -> None:
            if param.grad is not None and any(param is p for p in params):
                # the last call holds the accumulated gradient; norms are taken in `finish`, fused
                self._grads[(i, id(param))] = param.grad

        return hook

    # -- assembling ----------------------------------------------------------------------------------

    def _observation(
        self, step: int, epoch: int | None, values: list[float], trainable: list[tuple[int, Any]]
    ) -> LayerObservation:
        # the order of `finish`: forward statistics, then norms (squared from here on: a layer's
        # are summed) of the gradients, the updates, the weights before and all the weights,
        # then the histograms
        n = _FORWARD_STATS
        forward = {i: (values[k * n : k * n + n], grad) for k, (i, (_, grad)) in enumerate(self._forward.items())}
        at = n * len(forward)
        grad_sq: dict[int, float] = {}
        for (i, _), g in zip(self._grads, values[at : at + len(self._grads)]):
            grad_sq[i] = grad_sq.get(i, 0.0) + g * g
        at += len(self._grads)
        deltas = [v * v for v in values[at : at + len(trainable)]]
        at += len(trainable)
        befores = [v * v for v in values[at : at + len(trainable)]]
        at += len(trainable)
        count = sum(len(layer.params) for layer in self.layers)
        norms = [v * v for v in values[at : at + count]]
        at += count
        n = HISTOGRAM_BINS + 2
        hist = {i: values[at + k * n : at + k * n + n] for k, i in enumerate(self._hist)}
        delta_sq: dict[int, list[float]] = {}
        for (i, _), d, b in zip(trainable, deltas, befores):
            acc = delta_sq.setdefault(i, [0.0, 0.0])
            acc[0] += d
            acc[1] += b
        out = []
        k = 0
        for i, layer in enumerate(self.layers):
            w = norms[k : k + len(layer.params)]
            k += len(layer.params)
            out.append(self._stats(i, layer, forward.get(i), grad_sq.get(i), w, delta_sq.get(i), hist.get(i)))
        out.sort(key=lambda s: (s.order < 0, s.order))
        self._forward, self._grads, self._hist = {}, {}, {}
        return LayerObservation(step=step, epoch=epoch, layers=tuple(out))

    #: Most weights read for `LayerStats.init_distance` (evenly strided): the distance's
    #: sampling error is ~1/sqrt(n), far below the gap between fresh and trained weights.
    INIT_SAMPLE = 1 << 16
    #: Fewer weights than this tell a uniform draw from a trained one too loosely: not measured.
    MIN_INIT_VALUES = 256

    def _init_distance(self, layer: RecordedLayer) -> float | None:
        """`LayerStats.init_distance` of a frozen layer, measured once (its weights do not
        change while it stays frozen)."""
        cache = self._init_distances
        if layer.path not in cache:
            weight = max(layer.params, key=lambda p: p.numel())
            cache[layer.path] = _uniform_distance(weight, self.INIT_SAMPLE, self.MIN_INIT_VALUES)
        return cache[layer.path]

    def _stats(
        self,
        i: int,
        layer: RecordedLayer,
        forward: tuple[list[float], bool] | None,
        grad_sq: float | None,
        weight_sq: list[float],
        delta: list[float] | None,
        histogram: list[float] | None,
    ) -> LayerStats:
        source = self._source.get(i)
        params = layer.params
        trainable = any(p.requires_grad for p in params)
        ratio = None
        if delta is not None and delta[0] > 0 and delta[1] > 0:
            ratio = math.sqrt(delta[0] / delta[1])
        elif delta is not None and delta[1] > 0:
            ratio = 0.0
        # one dict for `layer_stats` (no frozen `__init__`): the fields as `LayerStats(...)` had them
        values: dict[str, Any] = {
            "path": layer.path,
            "kind": layer.kind,
            "activation": layer.activation,
            "order": self._order.get(i, -1),
            "source": self.layers[source].path if source is not None else None,
            "params": sum([p.numel() for p in params]),
            "trainable": trainable,
            "grad_norm": _sqrt(grad_sq),  # NaN stays NaN
            "weight_norm": _sqrt(sum(weight_sq)) if weight_sq else None,
            "update_ratio": ratio,
        }
        if forward is not None:
            (nonfinite, total, squares, low, high, nonzero, sat, sat_units, dead), needs_grad = forward
            n, units = self._numel.get(i, (0, 0))
            mean = total / n if n else math.nan
            nonfinite = int(nonfinite) if n else 0
            if histogram is not None and not nonfinite and math.isfinite(histogram[0] + histogram[1]):
                values["histogram"] = (histogram[0], histogram[1], tuple(histogram[2:]))
            values["nonfinite"] = nonfinite
            values["abs_max"] = high if math.isnan(low) or math.isnan(high) else max(low, high)
            values["mean"] = mean
            values["std"] = math.sqrt(max(squares / n - mean * mean, 0.0)) if n else math.nan
            # the shares are NaN (None) where the output holds NaN or Inf: not measured
            values["zero_fraction"] = (n - nonzero) / n if n else math.nan
            values["saturated_fraction"] = None if math.isnan(sat) or not n else sat / n
            values["saturated_units"] = None if math.isnan(sat_units) or not units else sat_units / units
            values["dead_units"] = None if math.isnan(dead) or not units else dead / units
            values["input_requires_grad"] = needs_grad
            if needs_grad and params and not trainable:
                values["init_distance"] = self._init_distance(layer)
        module = layer.module
        if layer.running_stats is not None:
            values["running_stats_at_init"] = self._given_stats_at_init(i, layer.running_stats)
        # a BatchNorm in inference mode while the model trains: read its running statistics
        # (only then: a training-mode BatchNorm, the usual case, costs one attribute read)
        elif not getattr(module, "training", True) and isinstance(module, nn.modules.batchnorm._BatchNorm):
            values["running_stats_at_init"] = _running_stats_at_init(module)
        return layer_stats(values)

    def _given_stats_at_init(self, i: int, stats: tuple[torch.Tensor, torch.Tensor]) -> bool:
        """Whether a layer's given (mean, variance) are still exactly (0, 1) after a training
        step. A layer has no torch `training` flag to say its mode (Keras passes `training` as
        a call argument), but statistics updated by a training-mode pass leave (0, 1) at the
        first step (momentum < 1) and never return exactly: once they have, not read again."""
        if i in self._stats_moved:
            return False
        at_init = _at_init(*stats)
        if not at_init:
            self._stats_moved.add(i)
        return at_init


def _running_stats_at_init(module: nn.modules.batchnorm._BatchNorm) -> bool | None:
    """Whether a BatchNorm's running statistics are exactly their initial values (mean 0,
    variance 1: `reset_running_stats`), i.e. never updated; None where it keeps none."""
    mean, var = module.running_mean, module.running_var
    if mean is None or var is None:
        return None
    return _at_init(mean, var)


def _at_init(mean: torch.Tensor, var: torch.Tensor) -> bool:
    """Mean exactly 0 and variance exactly 1 everywhere: BatchNorm's initial statistics."""
    with torch.no_grad():
        return bool(torch.count_nonzero(mean) == 0 and torch.all(var == 1))


def _uniform_distance(weight: torch.Tensor, most: int, least: int) -> float | None:
    """sqrt(n) x the Kolmogorov-Smirnov distance between |weight| / max|weight| and U(0, 1), on
    at most `most` evenly strided values; None under `least` values or where they are not finite."""
    with torch.no_grad():
        flat = weight.detach().reshape(-1)
        if flat.numel() < least or not flat.is_floating_point():
            return None
        flat = flat[:: max(1, flat.numel() // most)].abs().double()
        top = flat.max()
        if not bool(torch.isfinite(top)) or float(top) <= 0:
            return None
        u = torch.sort(flat / top).values
        n = u.numel()
        i = torch.arange(1, n + 1, dtype=torch.float64, device=u.device)
        d = torch.maximum(i / n - u, u - (i - 1) / n).max()
        return float(d) * math.sqrt(n)


# -- where a NaN or Inf was born ------------------------------------------------------------------


def _range(tensors: Iterable[torch.Tensor]) -> tuple[float, float] | None:
    lo, hi = math.inf, -math.inf
    for t in tensors:
        if not t.is_floating_point() or not t.numel():
            continue
        t = t.detach().float()
        finite = t[torch.isfinite(t)]
        if finite.numel():
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    return (lo, hi) if lo <= hi else None


def _flags(tensors: Iterable[torch.Tensor]) -> tuple[bool, bool, bool]:
    """(holds NaN, holds +Inf, holds -Inf) over floating tensors."""
    nan = pos = neg = False
    for t in tensors:
        if t.is_floating_point() and t.numel():
            t = t.detach()
            nan |= bool(torch.isnan(t).any())
            pos |= bool((t == math.inf).any())
            neg |= bool((t == -math.inf).any())
    return nan, pos, neg


def _produced(inputs: tuple[bool, bool, bool], outputs: tuple[bool, bool, bool]) -> str | None:
    """What a module produced that its inputs did not already hold: "nan", "inf", "-inf" or None.
    An infinity its inputs held passes through (attention masks use -inf on purpose)."""
    for value, had, has in zip(("nan", "inf", "-inf"), inputs, outputs):
        if has and not had and not (value != "nan" and inputs[0]):
            return value
    return None


def _masked_rows(tensors: Iterable[torch.Tensor]) -> int:
    """How many rows (along the last axis, of 2 or more values) of floating tensors are -inf in
    every position: fully masked attention rows, whose softmax is 0/0 = NaN. A tensor -inf in
    every row counts none: a mask leaves something unmasked (log(0) of a whole output does not)."""
    rows = 0
    for t in tensors:
        if t.is_floating_point() and t.ndim and t.shape[-1] >= 2 and t.numel():
            full = int((t.detach() == -math.inf).all(-1).sum())
            rows += full if full < t.numel() // t.shape[-1] else 0
    return rows


def _nan_rows(tensors: Iterable[torch.Tensor]) -> int:
    """How many rows (along the last axis; a 0-d or 1-d tensor is one row) hold a NaN."""
    rows = 0
    for t in tensors:
        if t.is_floating_point() and t.numel():
            nan = torch.isnan(t.detach())
            rows += int(nan.any(-1).sum()) if t.ndim > 1 else int(nan.any())
    return rows


def _overflowed(inputs: Iterable[torch.Tensor], weights: list[torch.Tensor], output: Any) -> bool:
    """True when a weighted module's finite inputs and weights are large enough that a weighted
    sum of them can pass its float type's largest value (|x| * |w| * number of weights, an upper
    bound of any output of a Linear or Conv): then an infinity is an overflow of values that
    grew, not a fault of the module's operation."""
    out = _first_tensor(output)
    if not weights or out is None or not out.is_floating_point():
        return False
    x, w = _range(inputs), _range(weights)
    if x is None or w is None:
        return False
    bound = max(-x[0], x[1]) * max(-w[0], w[1]) * sum(t.numel() for t in weights)
    return bound >= torch.finfo(out.dtype).max


class _OriginSearch:
    """Hooks on every module of a copy: the first module (in execution order) that produced a
    non-finite value from its inputs, forward, then backward. A subclass says where a module's
    own weights and their gradients are (`weights`, `weight_grads`) and how its paths nest
    (`separator`): the Keras search (`mlcheck.integrations.keras.torch_origin`) does."""

    #: what joins a parent's path to its children's ("encoder.layers.0")
    separator = "."

    def __init__(self, model: nn.Module | None, allow: Iterable[str], paths: dict[Any, str] | None = None) -> None:
        self.model = model
        self.allow = tuple(allow)
        self.paths = paths if paths is not None else {m: p for p, m in model.named_modules()}
        self.found: NonfiniteOrigin | None = None
        self.last_finite: str | None = None
        self.first_bad_input: str | None = None
        self.data_nonfinite = False
        self.backward_order: list[nn.Module] = []
        self.grad_out_finite: dict[nn.Module, bool] = {}
        self.found_module: nn.Module | None = None
        #: the last module that made a -inf (allowed or not): where a fully masked row came from
        self.made_neg_inf: str | None = None
        #: how many rows of its output are -inf in every position
        self.made_masked_rows = 0
        #: with capture on: each module's (first input, first output) of the re-run
        self.seen: dict[nn.Module, tuple[torch.Tensor | None, torch.Tensor | None]] | None = None
        self.grads: tuple[Any, Any] = ((), ())

    def allowed(self, module: nn.Module) -> bool:
        path = self.paths.get(module, "")
        return any(a == path or a == type(module).__name__ or path.startswith(a + self.separator) for a in self.allow)

    def loss_origin(self, loss: torch.Tensor) -> NonfiniteOrigin | None:
        """A non-finite loss computed from finite outputs of every module: made outside any
        module (in the loss), after the last module whose output was finite; else None."""
        if bool(torch.isfinite(loss.detach()).all()):
            return None
        value = "nan" if bool(torch.isnan(loss.detach()).any()) else "inf"
        return NonfiniteOrigin(path="", kind="", phase="forward", value=value, previous=self.last_finite)

    def weights(self, module: Any) -> list[torch.Tensor]:
        """The module's own weights."""
        return list(module.parameters(recurse=False))

    def weight_grads(self, module: Any) -> list[torch.Tensor]:
        """The gradients of the module's own weights, after the backward pass."""
        return [p.grad for p in module.parameters(recurse=False) if p.grad is not None]

    def _encloses(self, module: Any, path: str) -> bool:
        """Whether `module` (at `path`) contains the found one (the model itself contains all)."""
        found = self.found.path if self.found is not None else ""
        return module is self.model or (bool(path) and found.startswith(path + self.separator))

    def forward_hook(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        path = self.paths.get(module, "")
        if self.found is not None and self._after_found(module, path, args, kwargs, output):
            return
        inputs, outputs = _flags(_tensors((args, kwargs))), _flags(_tensors(output))
        if self.seen is not None:
            self.seen[module] = (_first_tensor((args, kwargs)), _first_tensor(output))
        if module is self.model and any(inputs):
            self.data_nonfinite = True  # the batch itself: nonfinite-input names it, no module made it
            self.found = None
            return
        weights = self.weights(module)
        value = _produced(inputs, outputs)
        broken = any(outputs) and any(_flags(weights))
        if value is None and broken:
            value = "nan" if outputs[0] else "inf"  # its own weights are already broken
        if value == "-inf":  # allowed or not: a fully masked row later names where its -inf came from
            self.made_neg_inf, self.made_masked_rows = path or self.made_neg_inf, _masked_rows(_tensors(output))
        if value is not None and not self.allowed(module):
            cause, masked_by = self._cause((module, path), value, broken, outputs, (args, kwargs), weights, output)
            self._found_at(module, (path, value, cause, masked_by), args, kwargs, output)
        elif not any(outputs):
            self.last_finite = path or self.last_finite
        elif any(inputs) and self.first_bad_input is None and path:
            self.first_bad_input = path

    def _cause(
        self,
        at: tuple[nn.Module, str],
        value: str,
        broken: bool,
        outputs: tuple,
        inputs: Any,
        weights: list[torch.Tensor],
        output: Any,
    ) -> tuple[str | None, str | None]:
        """(`NonfiniteOrigin.cause`, `masked_by`) of a module found producing `value`."""
        if broken:
            return "weights", None
        if value == "nan" and outputs == (True, False, False) and self._masked_inside(*at, inputs, output):
            return "masked-row", self.made_neg_inf
        if _overflowed(_tensors(inputs), weights, output):
            return "overflow", None
        return None, None

    def _after_found(self, module: nn.Module, path: str, args: Any, kwargs: Any, output: Any) -> bool:
        """With an origin found: True when the hook has nothing more to do for `module`; False
        when the found one was no origin after all and the search goes on from `module`."""
        if self.found is None or self.found.phase != "forward":
            return True
        outputs = _flags(_tensors(output))
        if self._turns_masked_row(module, path, (args, kwargs), output, outputs):
            # the -inf was a mask (intended); the NaN is this module's softmax of a row masked
            # everywhere: the origin of what broke the run
            masked_by = self.found.path
            self._found_at(module, (path, "nan", "masked-row", masked_by), args, kwargs, output)
            return True
        if not self._encloses(module, path) or any(outputs):
            return True
        # a module around the found one returned finite values: the infinity never left it
        # (a -inf attention mask consumed by the softmax next to it), so it is no origin
        self.found, self.found_module = None, None
        return False

    def _turns_masked_row(self, module: nn.Module, path: str, inputs: Any, output: Any, outputs: tuple) -> bool:
        """Whether `module`, after a found -inf, made NaN (and no infinity) from a row that is -inf
        in every position: of its own inputs (a softmax module), or of the found module's output
        inside it (an attention block whose inline softmax met its mask module's full row).
        A layer fed -inf (a Linear after log(0)) makes infinities too, so it does not count."""
        found = self.found
        if found is None or found.value != "-inf" or found.cause is not None or self.allowed(module):
            return False
        if outputs != (True, False, False) or _flags(_tensors(inputs))[0]:
            return False
        return self._masked_inside(module, path, inputs, output)

    def _masked_inside(self, module: nn.Module, path: str, inputs: Any, output: Any) -> bool:
        """Whether `module`'s NaN comes from rows that are -inf in every position: its inputs
        hold such rows, or the last module that made a -inf inside it (a mask module within an
        attention block) did, and no more of its output rows hold NaN than there were such rows
        (softmax makes NaN of those rows alone; a Linear fed -inf makes it of every row holding
        two of them, so the -inf's maker stays the origin)."""
        made = self.made_neg_inf
        inside = made is not None and bool(path) and made.startswith(path + self.separator)
        masked = max(self.made_masked_rows if inside else 0, _masked_rows(_tensors(inputs)))
        return masked > 0 and _nan_rows(_tensors(output)) <= masked

    def _found_at(
        self, module: nn.Module, what: tuple[str, str, str | None, str | None], args: Any, kwargs: Any, output: Any
    ) -> None:
        """`module` is the origin: `what` is its (path, value, cause, masked_by)."""
        path, value, cause, masked_by = what
        if self.seen is not None:
            self.seen[module] = (_first_tensor((args, kwargs)), _first_tensor(output))
        self.found_module = module
        self.found = NonfiniteOrigin(
            path=path,
            kind=type(module).__name__,
            phase="forward",
            value=value,
            input_range=_range(_tensors((args, kwargs))),
            output_range=_range(_tensors(output)),
            weight_range=_range(self.weights(module)),
            previous=self.last_finite,
            cause=cause,
            masked_by=masked_by,
        )

    def backward_hook(self, module: nn.Module, grad_input: Any, grad_output: Any) -> None:
        self.backward_order.append(module)
        out_flags = _flags(_tensors(grad_output))
        self.grad_out_finite[module] = not any(out_flags)
        if self.found is not None or any(out_flags):
            return
        value = _produced(out_flags, _flags(_tensors(grad_input)))
        if value is not None and not self.allowed(module):
            self.found = self._backward_origin(module, value, grad_output, grad_input)
            self.found_module = module
            self.grads = (grad_output, grad_input)

    def _backward_origin(self, module: nn.Module, value: str, grad_output: Any, grad_input: Any) -> NonfiniteOrigin:
        return NonfiniteOrigin(
            path=self.paths.get(module, ""),
            kind=type(module).__name__,
            phase="backward",
            value=value,
            input_range=_range(_tensors(grad_output)),
            output_range=_range(_tensors(grad_input)),
            weight_range=_range(self.weights(module)),
        )

    def parameter_origin(self) -> NonfiniteOrigin | None:
        """After backward: the first module (backward order) whose own parameter gradients are
        non-finite although the gradient reaching its output was finite."""
        for module in self.backward_order:
            if not self.grad_out_finite.get(module) or self.allowed(module):
                continue
            grads = self.weight_grads(module)
            flags = _flags(grads)
            if any(flags):
                value = "nan" if flags[0] else ("inf" if flags[1] else "-inf")
                self.found_module = module
                self.found = self._backward_origin(module, value, (), grads)
                return self.found
        return None

    def tensors(self) -> dict[str, Any]:
        """The found module's input, output and weights of the re-run (and, for a backward
        origin, the gradients at its output and input), detached on the CPU."""
        module = self.found_module
        if module is None:
            return {}
        x, y = (self.seen or {}).get(module, (None, None))
        out: dict[str, Any] = {
            "input": x,
            "output": y,
            "weights": {n: p for n, p in module.named_parameters(recurse=False)},
        }
        grad_output, grad_input = (_first_tensor(g) for g in self.grads)
        if grad_output is not None:
            out["grad_output"] = grad_output
        if grad_input is not None:
            out["grad_input"] = grad_input
        if self.found is not None and self.found.phase == "backward":
            out["weight_grads"] = {n: p.grad for n, p in module.named_parameters(recurse=False) if p.grad is not None}
        return _detached(out)


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items() if v is not None}
    return value


def _clone(model: nn.Module, weights: Iterable[tuple[torch.Tensor, torch.Tensor]] = ()) -> nn.Module:
    """A deep copy, detached from a Lightning trainer (which must not be copied), with
    `weights` ((parameter of `model`, value) pairs) loaded into its copies of those parameters."""
    trainer = model.__dict__.get("_trainer")
    if trainer is not None:
        model.__dict__["_trainer"] = None
    try:
        memo: dict[int, Any] = {}
        clone = copy.deepcopy(model, memo)
        with torch.no_grad():
            for param, value in weights:
                copied = memo.get(id(param))
                if isinstance(copied, torch.Tensor) and copied.shape == value.shape:
                    copied.copy_(value)
        return clone
    finally:
        if trainer is not None:
            model.__dict__["_trainer"] = trainer


def _rng_state() -> tuple[Any, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[Any, Any]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


def locate_nonfinite(
    model: nn.Module,
    compute_loss: Callable[[nn.Module], torch.Tensor | None],
    *,
    allow: Iterable[str] = (),
    capture: dict[str, Any] | None = None,
    weights: Iterable[tuple[torch.Tensor, torch.Tensor]] = (),
    batch: Any = None,
) -> NonfiniteOrigin | None:
    """Re-runs a batch on a copy of `model` with hooks on every module and returns the first
    module that produced a NaN or Inf from finite inputs: in the forward pass, else in the
    backward pass. The user's model, its gradients and the random state are left untouched.

    Args:
        model: the model as it was when the non-finite value appeared (before the optimizer
            stepped, so its weights are still those that produced it), or with finite
            `weights` to load into the copy.
        compute_loss: runs the offending batch through the copy it is given and returns the
            scalar loss (e.g. `lambda m: loss_fn(m(x), y)`).
        allow: module paths or class names allowed to produce infinities or NaN on purpose (a
            layer that builds a -inf attention mask). An infinity a module's input already held
            is always allowed to pass through.
        capture: a dict to fill with the found module's tensors of the re-run ("input",
            "output", "weights"; for a backward origin also "grad_output", "grad_input" and
            "weight_grads"), detached on the CPU, for a breakpoint snapshot. Default None: none kept.
        weights: (parameter of `model`, value) pairs to re-run with instead of the parameters'
            current values, e.g. the finite weights of an earlier step when the non-finite
            loss was noticed after the optimizer had stepped on it
            (`LayerRecorder.weights_for_rerun`). Default: the current ones.
        batch: the batch `compute_loss` runs (tensors, nested in lists, tuples and dicts). Where
            it holds NaN or +Inf, what is found has cause "batch": the data carried the value
            in (`carried_in`). Default None: not looked at.

    Returns None when nothing non-finite appears on the re-run, or when all of it came from a
    NaN/Inf in the model's own input (no module made anything new). A value produced by code
    outside any module is reported with `path=""` and `previous`, the last module whose output
    was finite.
    """
    return carried_in(_rerun(model, compute_loss, allow, capture, weights), batch)


def carried_in(origin: NonfiniteOrigin | None, batch: Any) -> NonfiniteOrigin | None:
    """`origin`, with cause "batch" where `batch` (tensors, nested in lists, tuples and dicts)
    holds NaN or +Inf: a value that came in with the data (targets, or inputs handed to a
    submodule rather than to the model) is no fault of the module where it met the model. A
    -inf alone leaves `origin` as found: an attention mask handed in with the batch holds it
    on purpose."""
    if origin is None or batch is None:
        return origin
    nan, pos_inf, _ = _flags(_tensors(batch))
    return dataclasses.replace(origin, cause="batch", masked_by=None) if nan or pos_inf else origin


def _rerun(
    model: nn.Module,
    compute_loss: Callable[[nn.Module], torch.Tensor | None],
    allow: Iterable[str],
    capture: dict[str, Any] | None,
    weights: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> NonfiniteOrigin | None:
    """`locate_nonfinite` without the look at the batch."""
    state = _rng_state()
    clone = _clone(model, weights)
    for module in clone.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False  # on the copy: backward hooks cannot wrap in-place ops
    search = _OriginSearch(clone, allow)
    if capture is not None:
        search.seen = {}
    handles = []
    try:
        for module in clone.modules():
            handles.append(module.register_forward_hook(search.forward_hook, with_kwargs=True))
            handles.append(module.register_full_backward_hook(search.backward_hook))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. Lightning's self.log without a trainer
            with torch.enable_grad():
                loss = compute_loss(clone)
            if search.data_nonfinite:
                return None
            if search.found is not None or loss is None:
                return search.found
            outside = search.loss_origin(loss)
            if outside is not None:
                return outside
            clone.zero_grad(set_to_none=True)
            loss.backward()
        return search.found or search.parameter_origin()
    finally:
        if capture is not None:
            capture.update(search.tensors())
        for handle in handles:
            handle.remove()
        _set_rng_state(state)
