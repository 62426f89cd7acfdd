"""Units of a torch layer that are copies of each other: every row of its weight equal.

A layer whose output units start with the same weights and bias get the same gradient at every
step, so they stay the same for good and the layer computes one unit, however wide it is (the
symmetry that random initialisation exists to break: NeuraLint's "constant initialisation"
rule). `SymmetricUnits.find` lists the trainable layers whose rows are all equal at the start of
training (one pass over the weights, once a run); `confirm` keeps those whose rows are still all
equal after training moved them (only those layers are read again), which a layer initialised
to zero on purpose, an output head that its targets pull apart on the first step, never is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: rows equal within this share of the weight's largest value: float32 arithmetic on equal rows
#: gives equal results, so only rounding between them could differ
ROW_TOLERANCE = 1e-6


def _rows_equal(weight: torch.Tensor) -> bool:
    rows = weight.detach().reshape(weight.shape[0], -1).float()
    scale = float(rows.abs().max())
    return float((rows - rows[:1]).abs().max()) <= ROW_TOLERANCE * scale


@dataclass
class SymmetricUnits:
    """Layers (module path, weight, its sum of squares at the start) whose output rows were all
    equal when training started."""

    layers: list[tuple[str, torch.Tensor, float]]

    @classmethod
    def find(cls, module: torch.nn.Module) -> SymmetricUnits | None:
        """The trainable layers with a weight of 2 or more output rows (Linear, convolutions:
        rows on the first axis), all equal; None when there is none."""
        found = []
        with torch.no_grad():
            for path, layer in module.named_modules():
                weight = getattr(layer, "weight", None)
                if not isinstance(weight, torch.nn.Parameter) or not weight.requires_grad:
                    continue
                if weight.ndim < 2 or weight.shape[0] < 2 or weight.numel() == weight.shape[0]:
                    continue
                if not isinstance(layer, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)):
                    continue
                if _rows_equal(weight):
                    found.append((path or type(layer).__name__, weight, float((weight.detach().float() ** 2).sum())))
        return cls(found) if found else None

    def confirm(self) -> tuple[tuple[str, int], ...]:
        """(module path, units) of the layers whose weights moved and whose rows are still all
        equal."""
        kept = []
        with torch.no_grad():
            for path, weight, start in self.layers:
                now = float((weight.detach().float() ** 2).sum())
                if now != start and _rows_equal(weight):
                    kept.append((path, int(weight.shape[0])))
        return tuple(kept)
