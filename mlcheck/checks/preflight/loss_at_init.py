"""`loss-at-init`: is the loss before training near what an untrained model should give?"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.curve import times
from mlcheck.checks.preflight.harness import (
    ABSOLUTE_LOSSES,
    INIT_BATCHES,
    SQUARED_LOSSES,
    InitHealth,
    health_at_init,
    kept_random_state,
    loss_family,
    skipped,
)
from mlcheck.findings import Finding, Severity
from mlcheck.trainable import LossConfig, Trainable

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext


#: How near the loss at init must come to batch size x the expected one for the summed-loss
#: reading (25%: an untrained model's loss is within a few percent of ln C, see `ratio`).
SUMMED_TOLERANCE = 0.25


@register
class LossAtInit(Check):
    """The loss before training is far above what an untrained model should give.

    What it does:
        Computes the loss (inference mode) on the first `batches` training batches and compares
        its mean with the loss of an uninformed prediction: -log(1/C) = log(C) for softmax
        cross-entropy over C classes, log(2) for binary cross-entropy, the mean squared target
        for mean squared error, the mean absolute target for mean absolute error. It fires when
        the mean is more than `ratio` times that, beyond `sigmas` standard errors of the
        batch-to-batch noise. Other losses are not judged. The callbacks run it at train start
        too, where it reports only a loss summed over the batch (key `summed`): about batch-size
        times that value (or, for several outputs per sample, rows x outputs times it: an
        `MSELoss(reduction="sum")` over 64 rows of 3 targets adds 192 values), and the loss of
        the batch equal to the sum of its two halves' losses, not their mean. A loss function of
        your own has no expected value; where its batch's loss is the sum of its halves' losses
        to float rounding (a custom Keras loss ending in
        `keras.ops.sum`), the `summed` finding is given on that proof alone. That is INFO, live
        and in `mlcheck sanity` alike: a sum is harmless with a learning rate chosen for it
        (SGD's divided by the batch size, or Adam, whose steps do not depend on the loss's
        scale; a VAE's summed reconstruction loss). A learning rate tuned for a mean throws the
        weights away, and the checks that see that harm warn and name the sum as the likely
        cause: live `lr-too-high`, `loss-divergence`, `dead-units` and
        `loss-plateau` (their chance levels count the summed rows, `RunInfo.loss_summed_over`,
        so a well-trained summed loss is not read as stuck far above chance), before training
        `lr-too-high`'s range test. A loss far above the expected value that is not proven a
        sum stays a WARNING before training.

    Why it matters:
        An untrained network should be uncertain. A much higher starting loss means the
        network starts confidently wrong (bad initialisation, unnormalised inputs, a final
        layer scaled up) or the loss is not what you think (summed instead of averaged,
        multiplied by a constant), which distorts the learning rate and wastes the first part
        of training (Karpathy, "verify loss @ init"; TheDeepChecker).

    How to fix:
        Use a mean-reduced loss (`reduction="mean"`), remove stray loss multipliers, normalise
        the inputs, and initialise the last layer small (and its bias to the class prior or
        the target mean).

    Args:
        ratio: fire when the loss is more than this many times the expected value. Default 3:
            far above it (a default-initialised MLP on digits starts at 2.38 against 2.30).
        sigmas: standard errors of the batch-to-batch noise the excess must clear. Default 3.
        batches: training batches to average. Default 4.

    Example:
        criterion = nn.CrossEntropyLoss(reduction="sum")  # grows with the batch size
        loss = criterion(model(x), y)

    Use instead:
        criterion = nn.CrossEntropyLoss()  # the mean: log(10) = 2.3 at init for 10 classes
        loss = criterion(model(x), y)
    """

    id = "loss-at-init"
    family = "pre-flight"
    severity = Severity.WARNING
    #: root causes that, when found first, explain this check's findings (they then say so)
    explained_by = frozenset({"nonfinite-input", "output-loss-mismatch", "unnormalized-input"})
    #: at train start too, for the summed loss alone: that one is a fact the halves' losses prove,
    #: where a high loss at init alone can have reasons a live run need not hear about
    consumes = frozenset({Signal.PREFLIGHT, Signal.TRAIN_START})

    def __init__(self, ratio: float = 3.0, sigmas: float = 3.0, batches: int = 4):
        self.ratio, self.sigmas, self.batches = ratio, sigmas, batches
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        live = ctx.interface == "live"
        with kept_random_state(t):
            batches = t.batches("train", self.batches)
            if not batches:
                return [] if live else [skipped(self, "there is no training data")]
            health = health_at_init(ctx)
            if health.reason():  # wrong for any loss, known family or not
                return [] if live else [self._nonfinite(health)]  # live: nonfinite-loss says it
            if self.batches == INIT_BATCHES:  # the same batches: reuse them
                losses = np.array(health.losses, dtype=np.float64)
            else:
                losses = np.array([t.loss(b) for b in batches], dtype=np.float64)
            cfg = t.loss_config()
            expected, why = self._expected(t, cfg, batches)
            if expected is None or expected <= 0:
                return self._summed_unknown(t, cfg, batches[0], float(np.mean(health.losses)))
        mean = float(losses.mean())
        stderr = float(losses.std(ddof=1) / math.sqrt(len(losses))) if len(losses) > 1 else 0.0
        if mean - self.sigmas * stderr <= self.ratio * expected:
            return []
        x, _ = t.to_numpy(batches[0])
        batch = len(x) if x is not None else None
        evidence = {
            "initial_loss": mean,
            "expected": expected,
            "ratio": mean / expected,
            "expected_from": why,
            "batches": len(losses),
        }
        keys = t.batch_keys(batches[0])
        if keys:  # a dict batch: which of its keys were the inputs and the targets
            evidence["batch_keys"] = keys
        hint = (
            "Use a mean-reduced loss, remove loss multipliers, normalise inputs and initialise "
            "the last layer small (its bias at the class prior or target mean)."
        )
        # the values a sum adds up: the batch's rows, or every element of a multi-output batch
        # (`MSELoss(reduction="sum")` on N x K outputs), which the adapter counted
        counts = {batch} | ({cfg.summed_over} if cfg.summed_over else set()) if batch else set()
        count = next((c for c in sorted(counts) if c > 1 and abs(mean / expected / c - 1) < SUMMED_TOLERANCE), None)
        summed = _summed(t, batches[0]) if count is not None else False
        values = (
            f"the batch size ({batch})"
            if count == batch
            else f"the {count} values the batch holds ({batch} rows x {(count or 0) // max(batch or 1, 1)} outputs)"
        )
        if summed is not False:
            hint = (
                f"The loss is about {values} times the expected value: the loss is "
                "likely summed over the batch (reduction='sum'); use reduction='mean'."
            )
        if live and summed is not True:
            return []  # live, only the summed loss the halves prove is said
        if summed is True:
            evidence["batch"] = batch
            if count != batch:
                evidence["summed_values"] = count
            message = (
                f"The loss before training is {mean:.4g}, {times(mean / expected)}x the {expected:.4g} an untrained "
                f"model should give ({why}), about {values} times it, and a batch's loss is the sum "
                "of its halves' losses: the loss is summed over the batch, so the step size grows with the batch."
            )
            # a sum is harmless with a learning rate chosen for it (SGD's divided by the batch size, or an
            # optimizer such as Adam whose steps ignore the loss's scale): the checks that see the harm
            # (live lr-too-high, loss-divergence, loss-plateau; before training lr-too-high's range test)
            # warn and name this INFO as the cause
            return [self._summed_finding(message, evidence, count or batch)]
        message = (
            f"The loss before training is {mean:.4g}, {times(mean / expected)}x the {expected:.4g} "
            f"an untrained model should give ({why})."
        )
        return [self.finding(message, evidence=evidence, hint=hint)]

    def _summed_finding(self, message: str, evidence: dict[str, Any], batch: int) -> Finding:
        """The INFO (key `summed`) for a loss proven summed over the batch's `batch` rows (or
        values, for a multi-output batch)."""
        return self.finding(
            message + " That is harmless where the learning rate was chosen for the sum; if it was "
            "tuned for a mean, the first steps are too large and the checks that see it will say so.",
            evidence=evidence,
            hint=f"Use reduction='mean' (in a loss function of your own: keras.ops.mean / .mean(), not sum), or, "
            f"where the sum is deliberate, a learning rate chosen for it: SGD's divided by the {batch} values summed; "
            "Adam-type optimizers do not depend on the loss's scale.",
            severity=Severity.INFO,
            key="summed",
        )

    def _summed_unknown(self, t: Trainable, cfg: LossConfig, batch: Any, initial: float) -> list[Finding]:
        """A loss with no expected value at init (a function of the user's own) that the adapter
        found to add its rows up (`LossConfig.summed_over`): the halves' losses prove the sum
        without the expected value, so the INFO of key `summed` is said all the same."""
        rows = cfg.summed_over
        if rows is None or rows < 2 or _summed(t, batch) is not True:
            return []
        named = f" ({cfg.loss})" if cfg.loss else ""
        message = (
            f"The loss{named} before training is {initial:.4g}, and a batch's loss is the sum of its halves' "
            f"losses, not their mean: the loss is summed over the batch's {rows} rows, so the step size grows "
            "with the batch."
        )
        evidence = {"initial_loss": initial, "batch": rows, "loss": cfg.loss}
        return [self._summed_finding(message, evidence, rows)]

    def _nonfinite(self, health: InitHealth) -> Finding:
        """The one finding that names why the untrained model gives non-finite numbers (the
        training checks defer to it rather than blame the learning rate); when the inputs are
        the cause, `nonfinite-input` names it."""
        evidence: dict[str, Any] = {"losses": list(health.losses), "outputs_finite": health.outputs_finite}
        if not health.inputs_finite:
            return skipped(self, "the training inputs or targets hold NaN or Inf (see nonfinite-input)")
        if not health.outputs_finite:
            return self.finding(
                "The untrained model's outputs are already NaN or infinite, before any training "
                "step, so no learning rate can train it.",
                evidence=evidence,
                hint="Look in forward for log or sqrt of values <= 0, division by zero, exp overflow, "
                "or weights never initialised (torch.empty).",
                severity=Severity.ERROR,
                key="nonfinite",
            )
        return self.finding(
            "The loss of the untrained model is already NaN or infinite, before any training step.",
            evidence=evidence,
            hint="Look for log(0) (probabilities fed to a log), division by zero or non-finite inputs.",
            severity=Severity.ERROR,
            key="nonfinite",
        )

    @staticmethod
    def _expected(t: Trainable, cfg: LossConfig, batches: list[Any]) -> tuple[float | None, str]:
        family = loss_family(cfg)
        if family == "multiclass":
            units = cfg.output_units
            if units is None or units < 2:
                return None, ""
            return math.log(units), f"log({units}) for {units} classes"
        if family == "binary":
            return math.log(2.0), "log(2) for binary outputs"
        if cfg.loss in SQUARED_LOSSES | ABSOLUTE_LOSSES:
            ys = [t.to_numpy(b)[1] for b in batches]
            if any(y is None for y in ys):
                return None, ""
            y = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in ys])
            if cfg.loss in SQUARED_LOSSES:
                return float(np.mean(y**2)), "the mean squared target (predicting 0)"
            return float(np.mean(np.abs(y))), "the mean absolute target (predicting 0)"
        return None, ""


def _summed(t: Any, batch: Any) -> bool | None:
    """Whether the loss of a batch is the sum of its halves' losses rather than their mean: a
    loss near batch-size times the expected one may be a coincidence (unscaled inputs, a
    random initialisation). None when it cannot be told (a batch too small or not rebuilt)."""
    x, y = t.to_numpy(batch)
    if x is None or len(x) < 2:
        return None
    half = len(x) // 2

    def loss(rows: slice) -> float:
        return float(t.loss(t.from_numpy(x[rows], None if y is None else y[rows])))

    try:
        with kept_random_state(t):
            whole, first, second = loss(slice(0, 2 * half)), loss(slice(0, half)), loss(slice(half, 2 * half))
    except Exception:  # a batch layout from_numpy cannot rebuild: the size coincidence alone
        return None
    return abs(whole - (first + second)) < abs(whole - (first + second) / 2)
