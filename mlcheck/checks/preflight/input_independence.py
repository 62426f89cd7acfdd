"""`input-independence`: does the model learn more from its inputs than from zeros?"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.checks.base import Check, register
from mlcheck.checks.preflight.harness import (
    SMALL_BATCH,
    fit_batch,
    inconclusive,
    inputs_unfit,
    kept_random_state,
    skipped,
    small_batch,
)
from mlcheck.checks.preflight.overfit_batch import OverfitBatch
from mlcheck.findings import Finding, Severity

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext


@register
class InputIndependence(Check):
    """The model's output does not depend on its input.

    What it does:
        First, on one small batch of differing samples, it checks whether the untrained model
        gives every sample the same output. Then, following Karpathy's input-independent
        baseline, it trains two copies for the same steps on the same batch, one with the real
        inputs (overfit-batch's run) and one with all inputs set to zero (same targets), and
        fires when the zeroed copy does as well as the real one (the real loss not `margin`
        below it) once both have settled (neither still falling) and training did lower the
        loss. Batches whose targets are all equal are not judged, nor (skipped, INFO) a batch of
        inputs alone whose loss compares the outputs with the inputs (an autoencoder's): zeroed
        inputs are zeroed targets there.

    Why it matters:
        A model trained on zeros can only learn the average target. If real inputs do no better,
        the network is not using them: inputs overwritten or detached in forward, a broadcast
        that drops the features, a final layer that only sees its bias. The run would only
        ever learn the label prior.

    How to fix:
        Follow the input through forward: look for variables reused by mistake, `.detach()`,
        multiplication by zero, a reshape that drops the features, or outputs built from
        parameters alone.

    Args:
        batch_size: samples in the batch. Default 16 (as overfit-batch, whose run it reuses).
        steps: training steps of each copy. Default None: as overfit-batch (the budget's
            steps), whose run on real inputs is reused; the zeroed copy trains as many steps,
            at the same rate.
        margin: the real loss must be below (1 - margin) x the zeroed loss. Default 0.05.
        min_progress: the zeroed copy must have lowered its loss by this fraction for the
            comparison to count (otherwise nothing was learned either way, e.g. a frozen
            model: overfit-batch speaks to that). Default 0.01.
        identical_tol: outputs count as identical when they differ by less than this, relative
            to their magnitude. Default 1e-6 (float32 rounding).

    Example:
        def forward(self, x):
            h = self.h0.expand(len(x), -1)  # learned initial state
            for t in range(x.shape[1]):
                h = self.cell(x[:, t], h)
            return self.head(self.h0)  # the initial state: the input never reaches the output

    Use instead:
        def forward(self, x):
            h = self.h0.expand(len(x), -1)
            for t in range(x.shape[1]):
                h = self.cell(x[:, t], h)
            return self.head(h)
    """

    id = "input-independence"
    family = "pre-flight"
    severity = Severity.WARNING
    #: root causes that, when found first, explain this check's findings (they then say so)
    explained_by = frozenset({"nonfinite-input", "output-loss-mismatch"})

    def __init__(
        self,
        batch_size: int = SMALL_BATCH,
        steps: int | None = None,
        margin: float = 0.05,
        min_progress: float = 0.01,
        identical_tol: float = 1e-6,
    ):
        self.batch_size, self.steps, self.margin = batch_size, steps, margin
        self.min_progress, self.identical_tol = min_progress, identical_tol
        super().__init__()

    def _identical_outputs(self, t: Any, batch: Any, n: int) -> list[Finding]:
        """The finding when every sample of the batch gets the same output (inputs ignored)."""
        out = np.asarray(t.forward(batch), dtype=np.float64).reshape(n, -1)
        spread = float(np.max(np.abs(out - out[:1])))
        scale = float(np.max(np.abs(out))) if out.size else 0.0
        if not (np.all(np.isfinite(out)) and spread <= self.identical_tol * max(scale, 1e-12)):
            return []
        return [
            self.finding(
                f"The model gives all {n} samples of a batch the same output, though "
                "their inputs differ: the output does not depend on the input.",
                evidence={"samples": n, "output_spread": spread, "output_scale": scale},
                hint="Follow the input through forward: it may be overwritten, detached, "
                "multiplied by zero, or the output may be built from parameters alone.",
                key="identical",
            )
        ]

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        with kept_random_state(t):
            batch = small_batch(t, self.batch_size)
            if batch is None:
                return [skipped(self, "there is no training data")]
            x, y = t.to_numpy(batch)
            unfit = inputs_unfit(x, 2, floating=False)
            if unfit is not None:
                return [skipped(self, unfit)]
            if y is None and t.loss_config().target_is_input:
                # an autoencoder's loss compares the outputs with the inputs: zeroed inputs are
                # zeroed targets too, which any model fits (a false "learns nothing from them")
                return [
                    skipped(
                        self,
                        "the loss compares the outputs with the inputs themselves (a batch of inputs "
                        "alone), so zeroed inputs would zero the targets too",
                    )
                ]
            if y is not None and np.all(y == y[:1]):
                return []  # constant targets need no input; unshuffled-data speaks to that
            flat = x.reshape(len(x), -1)
            if np.all(flat == flat[:1]):
                return []
            identical = self._identical_outputs(t, batch, len(x))
            if identical:
                return identical
            runs = OverfitBatch(self.batch_size, self.steps).runs(ctx)
            real = _best_real_run(runs)
            if real is not None and real.achieved:
                return []  # fitting distinct targets needs the inputs: zeros cannot match it
            if real is None or real.cut or real.nonfinite or real.steps == 0:
                return [inconclusive(self, "Training on real inputs", {}, ctx)] if real and real.cut else []
            zeros = t.with_inputs(batch, np.zeros_like(x))
            clone = t.clone()
            if real.lr is not None:
                clone.set_lr(real.lr)
            zero = fit_batch(clone, zeros, real.steps, ctx.budget, every=real.checkpoint_every)
        return self._verdict(real, zero, ctx)

    def _verdict(self, real: Any, zero: Any, ctx: PreflightContext) -> list[Finding]:
        """Compares the run on real inputs with the run on zeroed ones."""
        if zero.cut:
            return [inconclusive(self, "Training on zeroed inputs", {}, ctx)]
        real_loss, zero_loss = real.final, zero.final
        learned = zero.initial > 0 and zero.initial - zero_loss >= self.min_progress * zero.initial
        if not (math.isfinite(real_loss) and math.isfinite(zero_loss)) or not learned:
            return []
        if real_loss < (1 - self.margin) * zero_loss:
            return []
        # A slow rate keeps both runs close while they still fall: judge settled runs only.
        if real.still_falling() or zero.still_falling():
            return []
        return [
            self.finding(
                f"Training on all-zero inputs reached a loss of {zero_loss:.4g}, as good as the "
                f"{real_loss:.4g} reached on the real inputs: the model learns nothing from them.",
                evidence={
                    "steps": real.steps,
                    "lr": real.lr,
                    "real_input_loss": real_loss,
                    "zero_input_loss": zero_loss,
                    "initial_loss": real.initial,
                },
                hint="Follow the input through forward: it may be overwritten, detached or dropped "
                "by a reshape, so only the biases learn (the label prior).",
                key="zeroed",
            )
        ]


def _best_real_run(runs: list[Any]) -> Any:
    """The best run on the real inputs at its own rate (overfit-batch's later tries run at 10x
    or 1/10 the configured rate and may fail for that reason alone); None without runs."""
    usable = [r for r in runs if r.steps and not r.nonfinite and math.isfinite(r.final)]
    if usable:
        return min(usable, key=lambda r: r.final)
    return runs[-1] if runs else None
