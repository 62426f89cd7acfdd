"""Each validation row's loss from a torch model's own validation forward passes, summed on the
device, for `Signal.VAL_LOSSES` (`train-val-gap`'s guard on small validation sets).

`ValidationLosses` puts `OutputCapture`'s forward hooks on the module for the validation pass
only (on at its start, off at its end: no training step passes through them). Each validation
batch's output and targets give each row's -log of the probability of its class, in one or two
torch calls, kept on the device (4 bytes a row); at the pass's end their sum and sum of squares
come to the host in one transfer, and, for a pass of at most `RowLosses.PAIRED_MAX_ROWS` rows,
each row's loss and class in a second (what pairs the rows of two epochs). Nothing extra runs
through the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional

from mlcheck.integrations.torch_samples import OutputCapture
from mlcheck.run import RowLosses

__all__ = ["ValidationLosses"]

#: Losses whose outputs are probabilities (`RunInfo.loss`); a cross-entropy's, a NLL's (log-
#: probabilities, which a log-softmax leaves as they are) and a BCE-with-logits' are logits.
_PROBABILITY_LOSSES = frozenset({"bce", "binary_crossentropy"})
_LOGIT_LOSSES = frozenset({"cross_entropy", "nll", "bce_with_logits"})
#: Batches of per-row losses held before they are summed into the pass's two running sums.
_FOLD_BATCHES = 256


class ValidationLosses:
    """-log p of each validation row's class, from the module's validation outputs: `start` at
    the pass's start, `arm` before each batch, `collect` after it, `end` at the pass's end
    returns (rows, sum, sum of squares, each row's loss, each row's class; the last two None
    past `RowLosses.PAIRED_MAX_ROWS` rows) or None (no class scores seen for class labels).

    Whether the outputs are logits or probabilities is read from the loss (`loss`, the live
    core's `RunInfo.loss`) where it is known, else once, from the first batch's values (one host
    synchronisation a fit). A wrong reading leaves the rows' mean far from the logged validation
    loss, where the check does not use them.

    Args:
        batch_to_arrays: batch -> (inputs, targets), the adapter's.
    """

    def __init__(self, batch_to_arrays: Any) -> None:
        self.batch_to_arrays = batch_to_arrays
        self.capture: OutputCapture | None = None
        self.off = False  # outputs that are no class scores for these targets: not asked again
        self._probabilities: bool | None = None
        self._root_served = False  # the module's own output served a batch: its children unwatched
        self._held: list[torch.Tensor] = []
        self._sums: torch.Tensor | None = None
        self._rows = 0
        self._kept: list[tuple[torch.Tensor, torch.Tensor]] = []  # each batch's rows, while few

    def start(self, module: torch.nn.Module, loss: str | None) -> None:
        """Hooks `module` for one validation pass; `loss`: `RunInfo.loss`."""
        if self.off:
            return
        if self._probabilities is None and loss is not None:
            self._probabilities = True if loss in _PROBABILITY_LOSSES else False if loss in _LOGIT_LOSSES else None
        self.capture = OutputCapture(module)
        if self._root_served:
            self.capture.watch_children(False)
        self._held, self._sums, self._rows, self._kept = [], None, 0, []

    def arm(self) -> None:
        if self.capture is not None:
            self.capture.arm()

    def collect(self, batch: Any) -> None:
        """The armed batch's per-row losses, kept on the device."""
        capture = self.capture
        if capture is None or not capture.armed:
            return
        targets = self.batch_to_arrays(batch)[1]
        if not isinstance(targets, torch.Tensor) or targets.ndim == 0:
            capture.take(0)
            return self._stop()
        output = capture.take(targets.shape[0])
        if capture.took_root and not self._root_served:
            self._root_served = True
            capture.watch_children(False)
        row = None if output is None else self._row_losses(output, targets)
        if row is None:
            return self._stop()
        losses, labels = row
        self._held.append(losses)
        self._rows += int(losses.shape[0])
        self._kept = self._kept + [(losses, labels)] if self._rows <= RowLosses.PAIRED_MAX_ROWS else []
        if len(self._held) >= _FOLD_BATCHES:
            self._fold()

    def end(self) -> tuple[int, float, float, np.ndarray | None, np.ndarray | None] | None:
        """(rows, sum, sum of squares, each row's loss, each row's class) of the pass, in one host
        transfer, and a second for the rows themselves where they are few; the hooks come off."""
        if self.capture is not None:
            self.capture.remove()
            self.capture = None
        if self.off or not self._rows:
            return None
        self._fold()
        total, total_sq = self._sums.tolist()
        losses = labels = None
        if self._kept:
            losses = torch.cat([k[0] for k in self._kept]).cpu().numpy()
            labels = torch.cat([k[1] for k in self._kept]).cpu().numpy()
        return self._rows, total, total_sq, losses, labels

    def _fold(self) -> None:
        if not self._held:
            return
        with torch.no_grad():
            losses = self._held[0] if len(self._held) == 1 else torch.cat(self._held)
            sums = torch.stack((losses.sum(), losses.dot(losses)))
            self._sums = sums if self._sums is None else self._sums + sums
        self._held = []

    def _stop(self) -> None:
        self.off = True
        if self.capture is not None:
            self.capture.remove()
            self.capture = None
        self._held, self._sums, self._rows, self._kept = [], None, 0, []

    def _row_losses(self, output: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(-log p of each row's class, (rows,) float32, and that class, (rows,) int64), on the
        output's device; None where the output is no (rows, classes) scores or the targets no
        class labels of them."""
        out = output[:, None] if output.ndim == 1 else output
        rows = targets.shape[0]
        if out.ndim != 2 or out.shape[0] != rows or not out.is_floating_point() or not rows:
            return None
        width = out.shape[1]
        y = targets
        if y.ndim == 2 and y.shape[1] == width > 1:
            y = y.argmax(dim=1)  # one-hot rows
        elif y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            return None  # a sequence's or an image's targets: not one class a row
        if y.is_floating_point() and width > 1:
            return None  # a class's probability per row, or a regression's values
        with torch.no_grad():
            out = out.float()
            if self._probabilities is None:  # once a fit: the first batch's values say which
                if width == 1:
                    self._probabilities = bool(((out >= 0) & (out <= 1)).all())
                else:
                    self._probabilities = bool(out.min() >= 0) and bool((out.sum(dim=1) - 1).abs().max() < 1e-3)
            if width == 1:
                target = y.float()
                if self._probabilities:
                    loss = functional.binary_cross_entropy(out[:, 0].clamp(0.0, 1.0), target, reduction="none")
                else:
                    loss = functional.binary_cross_entropy_with_logits(out[:, 0], target, reduction="none")
                return loss, y.long()
            # labels clamped into the classes, as the per-sample reduction does: an index outside
            # them (a pad's -100) must not fault the device; its row's loss then moves the mean
            labels = y.long().clamp(0, width - 1)
            if self._probabilities:
                return functional.nll_loss(out.clamp_min(1e-7).log(), labels, reduction="none"), labels
            return functional.cross_entropy(out, labels, reduction="none"), labels
