"""Per-sample outputs of a Keras model's own train and test steps, for `Signal.SAMPLE_OUTPUTS`.

The step wrapper of the callback hands over each batch before its step (`begin`) and the
`y`/`y_pred` its `compute_loss` receives (`collect`): the predictions the step computed anyway,
so nothing extra runs through the model.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mlcheck.integrations.keras import backend
from mlcheck.samples import reduce_scores

logger = logging.getLogger(__name__)


class KerasSampleCapture:
    """Pairs each step's batch with the predictions its loss saw, and hands both to the live core.

    Args:
        live: the `LiveRun`.
        slice_by: optional function of the batch `(x, y)` -> one slice key per row.
    """

    def __init__(self, live: Any, slice_by: Any = None) -> None:
        self.live = live
        self.slice_by = slice_by
        self.off = False
        self._pending: tuple[str, int, Any, Any] | None = None

    def begin(self, split: str, epoch: int, x: Any, y: Any) -> None:
        self._pending = None if self.off else (split, epoch, x, y)

    def collect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Takes `y` and `y_pred` from a `compute_loss(x, y, y_pred, ...)` call."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        split, epoch, x, y = pending
        y_pred = kwargs.get("y_pred", args[2] if len(args) > 2 else None)
        y = kwargs.get("y", args[1] if len(args) > 1 else y)
        if y is None or y_pred is None or isinstance(y_pred, (list, tuple, dict)):
            return self._stop("the step's targets or its single output were not seen in compute_loss")
        reduced = reduce_scores(backend.to_numpy(y_pred), backend.to_numpy(y))
        if isinstance(reduced, str):
            return self._stop(reduced)
        labels, true_prob, predicted = reduced
        keep = labels >= 0
        slices = None
        if self.slice_by is not None:
            slices = np.asarray(backend.to_numpy(self.slice_by((x, y)))).reshape(len(keep), -1)[keep]
        self.live.observe_samples(
            split,
            epoch,
            labels=labels[keep],
            true_prob=true_prob[keep],
            predicted=predicted[keep],
            inputs=np.asarray(backend.to_numpy(x))[keep],
            slices=slices,
        )

    def _stop(self, reason: str) -> None:
        self.off = True
        logger.info("mlcheck: per-sample outputs are not recorded (noisy-labels, weak-slice are off): %s", reason)
