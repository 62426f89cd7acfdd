"""`batch-dependence`: does one sample's output depend on other samples' inputs?"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.preflight.harness import (
    SMALL_BATCH,
    kept_random_state,
    skipped,
    small_batch,
)
from mlcheck.findings import Finding, Severity

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext


@register
class BatchDependence(Check):
    """One sample's output depends on other samples' inputs.

    What it does:
        In inference mode (so BatchNorm uses its running statistics and is not flagged), takes
        the gradient of sample i's outputs with respect to the whole batch of inputs, for the
        first and the last sample of a small batch. Every row but i's must be exactly zero; it
        fires when another row's gradient exceeds `tol` times sample i's own.

    Why it matters:
        Samples must not mix. A `view`/`reshape` that swaps the batch and feature axes (e.g.
        `x.view(features, batch).t()`), a softmax or normalisation over `dim=0`, or a mean over
        the batch inside forward make each prediction depend on whichever samples share its
        batch: the model trains on garbage and predicts differently at other batch sizes
        (Karpathy's backprop-to-the-input test; TheDeepChecker). The training loss then
        usually sits at chance, with nothing else to say why: the callbacks run this check at
        train start too, on the first batch (two input gradients of 16 samples).

    How to fix:
        Use `permute`/`transpose` rather than `view` to reorder axes, keep the batch axis
        first, and check the `dim=` of softmax, normalisation and reductions.

    Args:
        batch_size: samples in the batch. Default 16.
        tol: relative size of another sample's gradient that counts as mixing. Default 1e-6:
            exact zeros are expected, float32 rounding stays far below this.

    Example:
        # (batch, time, features) -> (time, batch, features) for nn.LSTM
        x = x.view(x.shape[1], x.shape[0], x.shape[2])  # reshapes: samples get mixed
        out, _ = self.lstm(x)

    Use instead:
        x = x.permute(1, 0, 2)  # or x.transpose(0, 1): moves axes, keeps samples apart
        out, _ = self.lstm(x)
    """

    id = "batch-dependence"
    family = "pre-flight"
    severity = Severity.WARNING
    #: two input gradients of 16 samples: the callbacks run it at train start too, where a
    #: reshape that mixes samples otherwise shows only as a loss stuck at chance
    consumes = frozenset({Signal.PREFLIGHT, Signal.TRAIN_START})

    def __init__(self, batch_size: int = SMALL_BATCH, tol: float = 1e-6):
        self.batch_size, self.tol = batch_size, tol
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        with kept_random_state(t):
            batch = small_batch(t, self.batch_size)
            live = ctx.interface == "live"  # a run's own data: nothing to say where the test cannot apply
            if batch is None:
                return [] if live else [skipped(self, "there is no training data")]
            x, _ = t.to_numpy(batch)
            if x is None or len(x) < 2 or x.dtype.kind != "f":
                return [] if live else [skipped(self, "it needs floating-point array inputs of 2+ samples")]
            n = len(x)
            for i in (0, n - 1):
                grad = np.abs(np.asarray(t.input_gradient(batch, i), dtype=np.float64))
                grad = grad.reshape(n, -1)
                own = float(grad[i].max())
                if own == 0 or not math.isfinite(own):
                    continue
                others = np.delete(grad, i, axis=0).max(axis=1)
                leak = float(others.max())
                if leak > self.tol * own:
                    mixing = int(np.sum(others > self.tol * own))
                    return [
                        self.finding(
                            f"The output of sample {i} depends on the inputs of {mixing} other "
                            f"sample(s) in its batch: samples are mixed inside the model.",
                            evidence={
                                "sample": i,
                                "other_samples_involved": mixing,
                                "own_gradient": own,
                                "largest_other_gradient": leak,
                                "batch": n,
                            },
                            hint="Look for a view/reshape that swaps batch and feature axes (use "
                            "permute/transpose), or a softmax/normalisation/mean over dim=0.",
                        )
                    ]
        return []
