"""Each validation row's loss from a Keras model's own test steps, summed on the device, for
`Signal.VAL_LOSSES` (`train-val-gap`'s guard on small validation sets).

The callback's step wrapper hands over the `y` and `y_pred` each test step gives its
`compute_loss`; they are held (references, no copy) and every 16 batches, and at the pass's end,
the held rows' -log of the probability of their class is computed at once and reduced to a sum
and a sum of squares that stay on the device (`backend.class_row_loss_sums`: on torch a few
torch calls, elsewhere `keras.ops`); at the pass's end the two sums come to the host in one
transfer. Nothing extra runs through the model. Steps the
callback does not see (a compiled JAX or TensorFlow step) give nothing: the check then judges as
without it.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from mlcheck.integrations.keras import backend

__all__ = ["KerasValidationLosses"]

#: Batches whose outputs are held before their rows' losses are summed: one reduction (a few
#: device calls) per 16 batches instead of per batch, with at most 16 batches' outputs held
#: (the step itself holds one; a 1,000-class float32 batch of 256 is 1 MB).
_FOLD_BATCHES = 16


class KerasValidationLosses:
    """-log p of each validation row's class: `start` at the validation pass's start, `collect`
    in each test step's `compute_loss`, `end` at the pass's end returns (rows, sum, sum of
    squares) or None (no class scores seen for class labels).

    Args:
        from_logits: the compiled loss's `from_logits` (`loss_config`); None where unknown, then
            read once from the first batch's values (one host synchronisation a fit). A wrong
            reading leaves the rows' mean far from the logged validation loss, where the check
            does not use them.
    """

    def __init__(self, from_logits: bool | None) -> None:
        self.from_logits = from_logits
        self.off = False  # outputs that are no class scores for these targets: not asked again
        self._ys: list[Any] = []
        self._y_preds: list[Any] = []
        self._shapes: tuple[Any, ...] | None = None  # (kind, the held batches' shapes past rows)
        self._sums: Any = None
        self._rows = 0

    def start(self) -> None:
        self._ys, self._y_preds, self._shapes, self._sums, self._rows = [], [], None, None, 0

    def collect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Holds the `y` and `y_pred` of a `compute_loss(x, y, y_pred, ...)` call of a test step;
        every `_FOLD_BATCHES` batches (and at the pass's end) their rows' losses are summed."""
        if self.off:
            return
        y = kwargs.get("y", args[1] if len(args) > 1 else None)
        y_pred = kwargs.get("y_pred", args[2] if len(args) > 2 else None)
        shapes = self._class_scores(y, y_pred) if y is not None and y_pred is not None else None
        if shapes is None:
            self.off = True
            self.start()
            return
        if shapes != self._shapes or len(self._ys) >= _FOLD_BATCHES:
            self._fold()
            self._shapes = shapes
        self._ys.append(backend.held(y))
        self._y_preds.append(backend.held(y_pred))
        self._rows += int(y_pred.shape[0])

    def end(self) -> tuple[int, float, float] | None:
        """(rows, sum, sum of squares) of the pass's per-row losses, in one host transfer."""
        if self.off or not self._rows:
            return None
        self._fold()
        total, total_sq = backend.to_numpy(self._sums).tolist()
        rows = self._rows
        self.start()
        return rows, total, total_sq

    def _fold(self) -> None:
        """The held batches' [sum, sum of squares], added to the pass's on the device."""
        if not self._ys:
            return
        kind = self._shapes[0]
        sums = backend.class_row_loss_sums(self._ys, self._y_preds, self.from_logits, kind)
        self._sums = sums if self._sums is None else self._sums + sums
        self._ys, self._y_preds = [], []

    def _class_scores(self, y: Any, y_pred: Any) -> tuple[Any, ...] | None:
        """(kind, shapes past the rows) of a batch whose `y_pred` is (rows, classes) scores (or
        (rows,) for one) and `y` class labels of them, `kind` as `backend.class_row_loss_sums`
        takes it; else None. The first batch of a fit with `from_logits` unknown reads it."""
        if not hasattr(y_pred, "shape") or not hasattr(y, "shape"):
            return None  # several outputs (a dict or list of them): the logged loss sums theirs
        shape, target_shape = tuple(y_pred.shape), tuple(y.shape)
        if len(shape) not in (1, 2) or not target_shape or target_shape[0] != shape[0] or not shape[0]:
            return None
        width = shape[1] if len(shape) == 2 else 1
        if "float" not in str(y_pred.dtype):
            return None
        one_hot = len(target_shape) == 2 and target_shape[1] == width > 1
        if not one_hot and not (len(target_shape) == 1 or (len(target_shape) == 2 and target_shape[1] == 1)):
            return None  # a sequence's or an image's targets: not one class a row
        if self.from_logits is None:  # once a fit: the first batch's values say which
            if width == 1:
                inside = ops.logical_and(ops.all(y_pred >= 0), ops.all(y_pred <= 1))
                self.from_logits = not bool(ops.convert_to_numpy(inside))
            else:
                sums = ops.max(ops.abs(ops.sum(y_pred, axis=1) - 1))
                probs = ops.logical_and(ops.all(y_pred >= 0), sums < 1e-3)
                self.from_logits = not bool(ops.convert_to_numpy(probs))
        # sparse labels are clamped into the classes, as the per-sample reduction does
        kind = "binary" if width == 1 else "one_hot" if one_hot else "sparse"
        return kind, shape[1:], target_shape[1:]


def compiled_from_logits(model: keras.Model) -> bool | None:
    """The compiled loss's `from_logits`, where its configuration tells it; else None."""
    from mlcheck.integrations.keras.trainable import loss_config

    return loss_config(model).from_logits
