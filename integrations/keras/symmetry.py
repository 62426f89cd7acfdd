"""Units of a Keras layer that are copies of each other: every unit's kernel slice equal.

The Keras side of `integrations/torch_symmetry.py`: a layer whose output units start with the
same weights get the same gradient at every step, so they stay the same for good and the layer
computes one unit, however wide it is (a `Constant`/`Ones` initialiser; NeuraLint's "constant
initialisation" rule). Keras kernels keep the output units on their last axis (`Dense`: (in,
out); `ConvND`: (*window, in, out)), so the units are the kernel's columns once flattened to (-1,
out). `KerasSymmetricUnits.find` lists the trainable layers whose columns are all equal at the
start of training (one read of each kernel, once a run); `confirm` keeps those whose kernels
moved and whose columns are still all equal (only those kernels are read again), which a layer
initialised to zero on purpose, an output head its targets pull apart on the first step, never is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from mlcheck.integrations.keras.layers import leaf_layers

#: units equal within this share of the kernel's largest value, now or at the start (the larger):
#: float32 arithmetic on equal units gives equal results, so only rounding between them could
#: differ, and its size is set by the largest values the kernel held (a constant 0.05 that
#: training shrank to ~1e-3 keeps the rounding of 0.05: 6e-6 of the shrunk kernel's largest value)
UNIT_TOLERANCE = 1e-6

#: layers whose kernel has its output units on the last axis (a transposed convolution's are
#: second to last, a depthwise one's are per channel: left out)
_UNIT_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _units(kernel: Any) -> np.ndarray:
    """The kernel as a (fan-in, units) float64 array."""
    values = np.asarray(keras.ops.convert_to_numpy(kernel), np.float64)
    return values.reshape(-1, values.shape[-1])


def _units_equal(units: np.ndarray, start_scale: float = 0.0) -> bool:
    scale = max(float(np.abs(units).max()), start_scale)
    return float(np.abs(units - units[:, :1]).max()) <= UNIT_TOLERANCE * scale


@dataclass
class KerasSymmetricUnits:
    """Layers (path, kernel variable, its sum of squares and largest magnitude at the start)
    whose output units were all equal when training started."""

    layers: list[tuple[str, Any, float, float]]

    @classmethod
    def find(cls, model: Any) -> KerasSymmetricUnits | None:
        """The trainable `Dense`/`ConvND` layers with a kernel of 2 or more units and 2 or more
        weights a unit, all units equal; None when there is none."""
        found = []
        for path, layer in leaf_layers(model):
            kernel = getattr(layer, "kernel", None)
            if not isinstance(layer, _UNIT_LAYERS) or kernel is None or not layer.trainable:
                continue
            if not getattr(kernel, "trainable", True) or len(kernel.shape) < 2:
                continue
            units = _units(kernel)
            if units.shape[1] < 2 or units.shape[0] < 2:
                continue
            if _units_equal(units):
                found.append((path, kernel, float((units**2).sum()), float(np.abs(units).max())))
        return cls(found) if found else None

    def confirm(self) -> tuple[tuple[str, int], ...]:
        """(layer path, units) of the layers whose kernels moved and whose units are still all
        equal."""
        kept = []
        for path, kernel, start, start_scale in self.layers:
            units = _units(kernel)
            if float((units**2).sum()) != start and _units_equal(units, start_scale):
                kept.append((path, int(units.shape[1])))
        return tuple(kept)
