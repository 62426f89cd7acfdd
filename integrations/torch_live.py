"""What a torch-based callback measures on the live model: tensors as numpy arrays, the
update/weight ratio and the names of non-finite gradients and weights. Translation only; the
live core (`mlcheck.live`) decides what to do with the numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mlcheck import task

__all__ = ["OneBatch", "ParameterScan", "to_numpy"]


def to_numpy(value: Any) -> np.ndarray | None:
    """A tensor (bfloat16 and float16 as float32) or array-like as a numpy array; None when it
    is neither."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.cpu().numpy()
    try:
        return np.asarray(value)
    except Exception:
        return None


class OneBatch:
    """One batch as a data source for a `Trainable` (an iterable, never mistaken for a
    dataset of samples)."""

    def __init__(self, batch: Any) -> None:
        self.batch = batch

    def __iter__(self) -> Any:
        return iter([self.batch])


def _params(optimizer: Any) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]


class ParameterScan:
    """Before an optimizer step (every n steps): non-finite gradients and weights, and a copy of
    the weights; after it: |dW| / |W|. Parameters are named by the module's `named_parameters`.
    All on the device, a few fused ops per scan."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.names = {id(p): n for n, p in module.named_parameters()}
        self.input_kind = task.input_kind_of_model((type(m) for m in module.modules()), ordered=False)
        self._snapshot: list[torch.Tensor] | None = None
        self._snapshot_params: list[torch.Tensor] = []
        self._snapshot_norm = 0.0
        self._snapshot_step: int | None = None
        self._measured: dict[str, list[str]] = {}

    def before_step(self, optimizer: Any, step: int, *, scaled: bool) -> None:
        """Scans the parameters the optimizer is about to update (`scaled`: a GradScaler skips
        steps with non-finite gradients, so those are no finding)."""
        if self._snapshot is not None:
            return
        params = _params(optimizer)
        if not params:
            return
        bad_grads = self._nonfinite_grads(params)
        if bad_grads and scaled:
            return  # the scaler skips this step and lowers its scale: not a finding
        weights = [p.detach() for p in params]
        w_norms = torch.stack(torch._foreach_norm(weights))
        bad_weights = self._nonfinite(params, w_norms)
        if not bad_grads and not bad_weights:
            self._snapshot = [w.clone() for w in weights]
            self._snapshot_params = params
            self._snapshot_norm = float(torch.linalg.vector_norm(w_norms))
        self._measured = {k: v for k, v in (("nonfinite_grads", bad_grads), ("nonfinite_weights", bad_weights)) if v}
        self._snapshot_step = step

    def after_step(self, step: int) -> tuple[float | None, dict[str, list[str]]]:
        """(update ratio of this step where it was scanned, names found non-finite before it)."""
        ratio = self._update_ratio() if self._snapshot is not None and self._snapshot_step == step else None
        self._snapshot = None
        measured, self._measured = self._measured, {}
        return ratio, measured

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
        return self._nonfinite(with_grad, torch.stack(torch._foreach_norm([p.grad for p in with_grad])))

    def _nonfinite(self, params: list[torch.Tensor], norms: torch.Tensor) -> list[str]:
        finite = torch.isfinite(norms)
        if bool(finite.all()):
            return []
        flags = finite.tolist()
        return [self.names.get(id(p), f"param{i}") for i, (p, ok) in enumerate(zip(params, flags)) if not ok]

    def _update_ratio(self) -> float | None:
        if not self._snapshot_norm or not math.isfinite(self._snapshot_norm):
            return None
        after = [p.detach() for p in self._snapshot_params]
        diff = torch._foreach_sub(after, self._snapshot)
        delta = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(diff))))
        if delta == 0.0:
            return None  # no step was taken (e.g. skipped by a GradScaler or a closure)
        return delta / self._snapshot_norm
