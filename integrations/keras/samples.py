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
    """Pairs each step's batch with the predictions its loss saw, and hands both to the live core
    in blocks of up to `HOLD_VALUES` input values or `HOLD_BATCHES` batches (and at `flush()`).

    Args:
        live: the `LiveRun`.
        slice_by: optional function of the batch `(x, y)` -> one slice key per row.
    """

    #: Input values held before a block is handed over: 1 MiB of float32, as `Monitor.DEFER_VALUES`.
    HOLD_VALUES = 1 << 18
    #: Batches held before a block is handed over.
    HOLD_BATCHES = 64

    def __init__(self, live: Any, slice_by: Any = None) -> None:
        self.live = live
        self.slice_by = slice_by
        self.off = False
        self._pending: tuple[str, int, Any, Any] | None = None
        self._held: list[tuple[Any, ...]] = []
        self._held_key: tuple[str, int] | None = None
        self._held_values = 0

    def begin(self, split: str, epoch: int, x: Any, y: Any) -> None:
        self._pending = None if self.off else (split, epoch, x, y)

    def collect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Holds `y` and `y_pred` of a `compute_loss(x, y, y_pred, ...)` call with the step's
        inputs; consecutive steps of one split and epoch are handed over in blocks."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        split, epoch, x, y = pending
        y_pred = kwargs.get("y_pred", args[2] if len(args) > 2 else None)
        y = kwargs.get("y", args[1] if len(args) > 1 else y)
        if y is None or y_pred is None or isinstance(y_pred, (list, tuple, dict)):
            return self._stop("the step's targets or its single output were not seen in compute_loss")
        if self._held and self._held_key != (split, epoch):
            self.flush()
        slices = self.slice_by((x, y)) if self.slice_by is not None else None
        inputs = np.asarray(backend.to_numpy(x))
        self._held.append((inputs, backend.to_numpy(y), backend.to_numpy(y_pred), slices))
        self._held_key = (split, epoch)
        self._held_values += inputs.size
        if self._held_values >= self.HOLD_VALUES or len(self._held) >= self.HOLD_BATCHES:
            self.flush()

    def flush(self) -> None:
        held, self._held, self._held_values = self._held, [], 0
        if not held or self.off:
            return
        split, epoch = self._held_key
        try:
            y_pred = np.concatenate([np.asarray(h[2]) for h in held])
            y = np.concatenate([np.asarray(h[1]) for h in held])
            x = np.concatenate([h[0] for h in held])
        except ValueError as exc:  # batches of different layouts
            return self._stop(f"the batches do not stack ({exc})")
        reduced = reduce_scores(y_pred, y)
        if isinstance(reduced, str):
            return self._stop(reduced)
        labels, true_prob, predicted, other_prob, other_class = reduced
        keep = labels >= 0
        slices = None
        if self.slice_by is not None:
            keys = [np.asarray(backend.to_numpy(h[3])).reshape(len(h[0]), -1)[:, 0] for h in held]
            slices = np.concatenate(keys)[keep]
        self.live.observe_samples(
            split,
            epoch,
            labels=labels[keep],
            true_prob=true_prob[keep],
            predicted=predicted[keep],
            other_prob=other_prob[keep],
            other_class=other_class[keep],
            inputs=x[keep],
            slices=slices,
        )

    def _stop(self, reason: str) -> None:
        self.off = True
        self._held = []
        logger.info("mlcheck: per-sample outputs are not recorded (noisy-labels, weak-slice are off): %s", reason)
