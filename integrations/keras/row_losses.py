"""Each validation row's loss from a Keras model's own test steps, summed on the device, for
`Signal.VAL_LOSSES` (`train-val-gap`'s guard on small validation sets).

The callback's step wrapper hands over the `y` and `y_pred` each test step gives its
`compute_loss`; each row's -log of the probability of its class comes from them
(`backend.class_row_losses`: on torch a few torch calls, elsewhere `keras.ops`) and stays on the
device (4 bytes a row); at the pass's end their sum and sum of squares come to the host in one
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
        self._held: list[Any] = []
        self._rows = 0

    def start(self) -> None:
        self._held, self._rows = [], 0

    def collect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """The per-row losses of a `compute_loss(x, y, y_pred, ...)` call of a test step."""
        if self.off:
            return
        y = kwargs.get("y", args[1] if len(args) > 1 else None)
        y_pred = kwargs.get("y_pred", args[2] if len(args) > 2 else None)
        losses = self._row_losses(y, y_pred) if y is not None and y_pred is not None else None
        if losses is None:
            self.off, self._held, self._rows = True, [], 0
            return
        self._held.append(losses)
        self._rows += int(losses.shape[0])

    def end(self) -> tuple[int, float, float] | None:
        """(rows, sum, sum of squares) of the pass's per-row losses, in one host transfer."""
        if self.off or not self._rows:
            return None
        total, total_sq = backend.sum_and_square_sum(self._held)
        self._held = []
        return self._rows, total, total_sq

    def _row_losses(self, y: Any, y_pred: Any) -> Any:
        """(rows,) float32 losses on the output's device; None where `y_pred` is no (rows,
        classes) scores or `y` no class labels of them."""
        shape, target_shape = tuple(y_pred.shape), tuple(y.shape)
        if len(shape) == 1:
            y_pred, shape = ops.expand_dims(y_pred, 1), (*shape, 1)
        if len(shape) != 2 or not target_shape or target_shape[0] != shape[0] or not shape[0]:
            return None
        width = shape[1]
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
        return backend.class_row_losses(y, y_pred, self.from_logits, kind)


def compiled_from_logits(model: keras.Model) -> bool | None:
    """The compiled loss's `from_logits`, where its configuration tells it; else None."""
    from mlcheck.integrations.keras.trainable import loss_config

    return loss_config(model).from_logits
