"""Layer statistics: what a recorder measured inside the model on one sampled step.

Framework-free values (numbers only) that the live core routes to the checks declaring
`Signal.LAYER_STATS`. The torch recorder (`mlcheck.integrations.torch_layers.LayerRecorder`,
which the Keras callback also uses on the torch backend) builds them; breakpoint conditions
(`mlcheck.breakpoints`) receive one `LayerStats` per layer; `LayerHistory` keeps the recent
ones in a ring buffer, so memory stays flat in the number of steps.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["LayerHistory", "LayerObservation", "LayerStats", "NonfiniteOrigin"]

#: Activation kinds whose outputs the recorder judges for saturation and dead units.
SATURATING = frozenset({"sigmoid", "tanh", "hardtanh", "hardsigmoid", "softsign"})
RECTIFYING = frozenset({"relu", "relu6"})


@dataclass(frozen=True)
class LayerStats:
    """One layer on one sampled step.

    Attributes:
        path: the module path as `named_modules` names it ("net.3", "encoder.layers.0.attn").
        kind: the module's class name ("Linear", "Tanh").
        activation: "relu", "tanh", "sigmoid", ... for an activation module, else None.
        order: position in the forward pass of the sampled step (-1: did not run forward).
        source: for an activation, the path of the weighted layer that fed it (None if none).
        nonfinite: NaN and Inf values in the forward output.
        abs_max, mean, std: of the forward output (NaN or Inf where it holds such values; NaN
            when not recorded).
        zero_fraction: share of the output values that are exactly zero.
        saturated_fraction: share of the output values where a saturating activation's slope is
            below 1% of its maximum (None for other kinds).
        dead_units: share of the output units (features or channels) active (> 0) on fewer than
            1% of the batch's values (rectifying activations only, else None).
        saturated_units: share of the units saturated on more than 99% of the batch's values
            (saturating activations only, else None).
            These four shares are not measured on a step whose output holds NaN or Inf
            (`nonfinite` > 0): zero_fraction is NaN, the others None (an all-NaN output is not
            "every unit dead").
        params: number of the module's own parameter values (0 for an activation).
        trainable: True when any of its own parameters has `requires_grad`.
        input_requires_grad: the forward input carries a gradient path (a trainable layer runs
            before it), so a gradient flows through this layer.
        grad_norm: L2 norm of the gradients of its own parameters (None: no gradient).
        weight_norm: L2 norm of its own parameters (None: it has none).
        update_ratio: |weights after the step - before| / |before| (None: not measured).
        histogram: (min, max, counts) of the finite forward output values: equal-width buckets
            between min and max (None: not recorded).
        init_distance: for a frozen layer whose input carries a gradient, how far its largest
            weight tensor is from a fresh uniform draw: sqrt(n) times the Kolmogorov-Smirnov
            distance between the weights' magnitudes and a uniform over [0, their largest].
            Fresh uniform initialisers (torch's default, Keras' glorot_uniform) stay under
            ~1.6; trained weights lie far above (None: not measured, or under 256 weights).
        running_stats_at_init: for a BatchNorm layer that ran in inference mode (`.eval()`)
            during the recorded training step, so that it normalised with its running statistics
            and did not update them: whether these are still exactly their initial values (mean
            0, variance 1), i.e. were never updated; None for any other layer, a BatchNorm in
            training mode, or one without running statistics.
    """

    path: str
    kind: str
    activation: str | None = None
    order: int = -1
    source: str | None = None
    nonfinite: int = 0
    abs_max: float = math.nan
    mean: float = math.nan
    std: float = math.nan
    zero_fraction: float = math.nan
    saturated_fraction: float | None = None
    dead_units: float | None = None
    saturated_units: float | None = None
    params: int = 0
    trainable: bool = False
    input_requires_grad: bool = False
    grad_norm: float | None = None
    weight_norm: float | None = None
    update_ratio: float | None = None
    histogram: tuple[float, float, tuple[float, ...]] | None = None
    init_distance: float | None = None
    running_stats_at_init: bool | None = None

    @property
    def grad_rms(self) -> float | None:
        """Root mean square of the parameter gradients: comparable across layers of any size."""
        if self.grad_norm is None or not self.params:
            return None
        return self.grad_norm / math.sqrt(self.params)

    @property
    def name(self) -> str:
        """How findings name the layer: its path and kind, and what fed an activation."""
        fed = f" after {self.source}" if self.source else ""
        return f"{self.path} ({self.kind}{fed})"


#: every field of `LayerStats` at its default, in field order (`path` and `kind`: None, given always)
_LAYER_STATS_DEFAULTS = {
    f.name: None if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(LayerStats)
}


def layer_stats(values: Mapping[str, object]) -> LayerStats:
    """`LayerStats(**values)` (`values` names `path` and `kind`, and any other fields), built
    without the frozen dataclass's `__init__`, which sets each of the 22 fields with a call of
    `object.__setattr__`: most of the Python a recorder spends assembling a sampled step's
    statistics. The same object: equal, the same fields in the same order, still frozen."""
    stats = object.__new__(LayerStats)
    state = stats.__dict__
    state.update(_LAYER_STATS_DEFAULTS)
    state.update(values)
    return stats


@dataclass(frozen=True)
class NonfiniteOrigin:
    """The module that first produced a NaN or Inf from finite inputs, found by re-running
    the offending batch on a copy of the model.

    Attributes:
        path: module path; "" when the value was produced by code outside any module.
        kind: the module's class name ("" outside modules).
        phase: "forward" or "backward".
        value: "nan", "inf" or "-inf": what it produced.
        input_range / output_range / weight_range: (min, max) of the finite values of its
            inputs, outputs (gradients in the backward phase) and own parameters; None if none.
        previous: the module that ran just before it (for code outside modules: the last module
            whose output was still finite).
        cause: why, where the search can tell (None: the module's own operation):
            "masked-row": it turned a row of its input that was -inf in every position (a fully
            masked attention row) into NaN, as softmax does (0/0);
            "weights": its own weights already held NaN/Inf (an earlier update broke them);
            "overflow": its finite inputs and weights were too large for its float type (their
            product overflowed: they had grown, usually from too high a learning rate);
            "batch": the batch re-run already held NaN or +Inf (its targets, or inputs handed to
            a submodule rather than to the model: `nonfinite-input`'s business); the module
            named is where the data's value met the model, not a fault of its operation.
        masked_by: for "masked-row", the module that made the -inf (None: it came from outside
            any module, e.g. a mask passed in with the batch).
    """

    path: str
    kind: str
    phase: str
    value: str
    input_range: tuple[float, float] | None = None
    output_range: tuple[float, float] | None = None
    weight_range: tuple[float, float] | None = None
    previous: str | None = None
    cause: str | None = None
    masked_by: str | None = None

    @property
    def name(self) -> str:
        """How findings name the module: "layer net.3 (Scores)"; "" outside any module."""
        return f"layer {self.path} ({self.kind})" if self.path else ""


@dataclass(frozen=True)
class LayerObservation:
    """Every recorded layer of one sampled step, in forward order where known."""

    step: int
    layers: tuple[LayerStats, ...]
    epoch: int | None = None
    origin: NonfiniteOrigin | None = None

    def __iter__(self) -> Iterator[LayerStats]:
        return iter(self.layers)

    def weighted(self) -> list[LayerStats]:
        """Layers with their own parameters, in forward order (those that did not run last)."""
        layers = [s for s in self.layers if s.params]
        return sorted(layers, key=lambda s: (s.order < 0, s.order))


class LayerHistory:
    """The most recent `capacity` layer observations (a ring buffer: memory flat in steps)."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self._items: deque[LayerObservation] = deque(maxlen=capacity)
        self.total = 0

    def add(self, observation: LayerObservation) -> None:
        self._items.append(observation)
        self.total += 1

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[LayerObservation]:
        return iter(self._items)

    @property
    def last(self) -> LayerObservation | None:
        return self._items[-1] if self._items else None
