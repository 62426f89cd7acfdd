"""What the Keras callback measures on the live model: the update/weight ratio and the paths of
non-finite weights and gradients, all weights as one flat vector (a handful of tensor ops, one
transfer to the host: `backend.flat_float32` and `backend.scan_values`, `keras.ops` calls or,
on torch, the torch calls they make). Translation only; `mlcheck.live` decides what follows."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import keras

from mlcheck.integrations.keras import backend

__all__ = ["WeightScan"]


class WeightScan:
    """`snapshot()` before a step every n steps; `measure()` after it."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.before: Any = None

    def snapshot(self) -> None:
        values = list(backend.trainable_values(self.model))
        if not values:  # a subclassed model not built yet: no weights to compare with
            self.before = None
            return
        with backend.no_grad():
            self.before = _flat(values)

    def measure(self) -> tuple[float | None, list[str] | None, list[str] | None]:
        """(|dW| / |W| over all trainable weights since the snapshot, paths of variables with
        non-finite values, paths of variables with non-finite gradients)."""
        variables = self.model.trainable_variables
        before, self.before = self.before, None
        if not variables:
            return None, None, None
        # A LossScaleOptimizer skips steps whose scaled gradients overflow and lowers its scale:
        # inf gradients there are routine, and so is a skipped step's zero update.
        scaled = isinstance(self.model.optimizer, keras.optimizers.LossScaleOptimizer)
        grads = None if scaled else backend.last_gradients(self.model)
        present = [g for g in grads if g is not None] if grads is not None else []
        values_now = backend.trainable_values(self.model)
        with backend.no_grad():
            weights = _flat(values_now)
            values = backend.scan_values(weights, _flat(present) if present else None, before)
        bad_weights = _nonfinite_paths(variables, values_now) if not values[0] else None
        bad_grads = _nonfinite_paths(variables, grads) if present and not values[1] else None
        ratio = None
        if before is not None:
            delta, norm = float(values[-2]), float(values[-1])
            if norm > 0 and math.isfinite(delta) and math.isfinite(norm) and not (scaled and delta == 0):
                ratio = math.sqrt(delta) / math.sqrt(norm)
        return ratio, bad_weights or None, bad_grads or None


def _flat(tensors: Iterable[Any]) -> Any:
    """The tensors as one float32 vector (a copy)."""
    return backend.flat_float32(list(tensors))


def _nonfinite_paths(variables: list[Any], values: list[Any]) -> list[str]:
    """Paths of the variables whose value (or gradient, in `values`) holds NaN or Inf."""
    ops = keras.ops
    flags = backend.to_numpy(
        ops.stack([ops.cast(ops.all(ops.isfinite(x)), "float32") if x is not None else ops.ones(()) for x in values])
    )
    return [v.path for v, ok in zip(variables, flags) if not ok]
