"""Learning-rate checks: too high, too low, and a schedule that does not do what it should."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.class_prior import (
    TRAINED_START_FRACTION,
    FirstPassLabels,
    fall_above_floor,
    label_entropy,
    starts_off_chance,
    starts_trained,
)
from mlcheck.checks.curve import (
    UNSTABLE_STEP_CAUSES,
    Curve,
    Throttle,
    TrainCurveCheck,
    epoch_judgement_due,
    median,
    noise,
    rising,
    rolling_median,
    sig,
    times,
    trend_drop,
)
from mlcheck.checks.preflight.harness import health_at_init, skipped
from mlcheck.checks.preflight.range_test import (
    progress_at,
    range_test_inconclusive,
    shared_range_test,
)
from mlcheck.findings import Finding, Severity
from mlcheck.metrics import higher_is_better, reversed_mode

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext
    from mlcheck.run import BatchObservation, RunState


def _loss_window(run: RunState, x0: float, x1: float) -> tuple[float, float, float]:
    """(drop, stderr, level) of the step-level training loss between x0 and x1."""
    c = Curve.of(run.train_loss, final=True)
    if c is None:
        return math.nan, math.nan, math.nan
    inside = (c.x >= x0) & (c.x <= x1)
    if inside.sum() < 3:
        return math.nan, math.nan, math.nan
    drop, se = trend_drop(c.x[inside], c.mean[inside])
    return drop, se, median(c.mean[inside])


def _from_log10(value: float) -> float:
    """10 ** `value`, inf past the largest float (an update ratio of 1e308 is logged as 308.25)."""
    return 10.0**value if value < 308 else math.inf


#: a median log10 update ratio at or above this is the usual rate (the 1e-3 rule of thumb,
#: TheDeepChecker's band [-4, -1]): a slow fall then has another cause than the rate
_USUAL_LOG_RATIO = -3.0
#: ... and at or above this, large: a 10x raise (the top of `lr-too-low`'s "3-10x") from here takes
#: them past 10^-1, the top of TheDeepChecker's healthy band [-4, -1], so a slow fall there is no
#: small rate (an INFO; healthy-programs batch 13, l1b: a causal Transformer LM at the best rate of a
#: sweep, updates 10^-1.85, the loss 17% down at 59% of a run too short for it)
_LARGE_LOG_RATIO = -2.0


def _recent_ratio(run: RunState, fraction: float, min_points: int) -> tuple[float, float, float, int] | None:
    """(median log10 update ratio, first x, last x, measurements) over the recent part of the
    run, or None when fewer than `min_points` measurements were taken."""
    c = Curve.of(run.update_ratio, final=True)
    if c is None or c.values < min_points:
        return None
    k = max(c.window(min_points), math.ceil(fraction * len(c)))
    return median(c.mean[-k:]), float(c.x[-k]), float(c.x[-1]), int(c.n[-k:].sum())


def _chance_loss(run: RunState) -> float | None:
    """ln(C), the cross-entropy of a uniform guess, when the run is a classification with C
    known classes (times the rows of a loss summed over the batch: `RunInfo.chance_level`);
    else None."""
    level = run.info.chance_level()
    return None if level is None else level[0]


def _chance_words(run: RunState) -> str:
    """How the chance level was got, for a message: "ln(10) = 2.303"."""
    level = run.info.chance_level()
    return "" if level is None else level[1]


#: Elements of each Adam state tensor `adam_step_shares` reads at most (an even stride through
#: it): the median of a few thousand is as good as the whole, and the cost stays that of a few
#: small copies per tensor (the torch and Keras adapters' `adam_step_share`).
ADAM_STATE_SAMPLE = 4096


def adam_state_stride(size: int) -> int:
    """The stride through an Adam state tensor of `size` elements that reads at most
    `ADAM_STATE_SAMPLE` of them."""
    return max(1, size // ADAM_STATE_SAMPLE)


def adam_step_shares(v: np.ndarray, eps: float, correction: float = 1.0) -> np.ndarray:
    """sqrt(v / correction) / (sqrt(v / correction) + eps) for the entries of Adam's running mean
    of squared gradients `v` that are not 0 (weights with no gradient yet left out): the share
    of Adam's normalised step each weight takes (Kingma & Ba, 2015: lr x m_hat / (sqrt(v_hat) +
    eps)); `correction` is the bias correction 1 - beta2^t where the framework adds eps to the
    corrected sqrt(v_hat), 1 where it adds it to the uncorrected sqrt(v). `lr-too-low` key `eps`
    reads their median."""
    rms = np.sqrt(np.maximum(np.asarray(v, np.float64), 0.0) / correction)
    rms = rms[rms > 0]
    return rms / (rms + eps)


#: The fewest validation points `_memorising` judges (the later half of those logged).
MEMORISING_POINTS = 3
#: ...and the share of the training loss's fall the validation loss must match there.
MEMORISING_SHARE = 0.25


def _memorising(run: RunState, train_drop: float) -> bool:
    """True when the validation loss, over the later half of its points (at least
    `MEMORISING_POINTS`), falls by less than one standard error of its trend or less than
    `MEMORISING_SHARE` of `train_drop`, the training loss's fall over the later half of the
    run: the model memorises its training labels (shuffled or misaligned labels, a data set
    too small), which no learning rate cures. A rate too low lowers both losses alike."""
    c = Curve.of(run.val_loss, final=True)
    if c is None or len(c) < 2 * MEMORISING_POINTS - 1:
        return False
    later = len(c) // 2
    drop, se = trend_drop(c.x[later:], c.mean[later:])
    return math.isfinite(drop) and drop < max(se, MEMORISING_SHARE * train_drop)


#: A loss that fell by at least this share of its initial value is making real progress (the
#: default of `LRTooLow.max_drop`; `mlcheck analyze`'s hindsight reads it at the log's end).
MAX_DROP = 0.2


def _accelerating(
    c: Curve, half: int, halves: tuple[tuple[float, float], tuple[float, float]], steady: float, z: float
) -> bool:
    """True when the loss's second half falls per point more than 1 / `steady` x as fast as its
    first half (the check's "steady" factor read the other way: 2x at its default), beyond `z`
    standard errors of the two slopes' difference; `halves` are the two halves' `trend_drop`
    (fall, standard error), as the caller fitted them. A rate too small for its task moves the
    weights so little that the gradient, and with it the pace of the fall, stays the same
    (Karpathy, CS231n "Babysitting the learning process": at a low rate "the improvements will
    be linear"); a fall that speeds up that much has moved the weights into steeper ground: the
    loss is leaving a plateau at chance or a saddle, at a rate that does move them."""
    span1, span2 = float(c.x[half] - c.x[0]), float(c.x[-1] - c.x[half])
    if span1 <= 0 or span2 <= 0:
        return False
    (d1, se1), (d2, se2) = halves
    s1, s2 = d1 / span1, d2 / span2
    spread = math.hypot(se1 / span1, se2 / span2)
    return steady * s2 > s1 and s2 - s1 > z * spread


def _configured_lr(run: RunState) -> float | None:
    """The learning rate the adapter logged last, or None when it logs none."""
    return float(run.lr.last_value) if run.lr.finite_count and run.lr.last_value > 0 else None


def _lower(lr: float | None) -> str:
    """The hint's range for a rate 10-100x lower, or "" when the rate is not known."""
    return f" (to {lr / 100:.2g}-{lr / 10:.2g})" if lr else ""


def _peak_log_ratio(run: RunState) -> float | None:
    """The largest bucket mean of the log10 update ratio seen in the run, or None."""
    b = run.update_ratio.buckets(include_open=True)
    return float(np.max(b["mean"])) if len(b["mean"]) else None


# Pre-flight verdicts of lr-too-high / lr-too-low, over the range test of
# `mlcheck/checks/preflight/range_test.py` (the defaults of the checks' arguments).
#: Steps of the confirming runs at fixed rates: 20 steps are enough for a usable rate to lower
#: the loss by several percent (Adam 1e-3 on digits: ~4%; SGD+momentum 0.1: ~30%).
CONFIRM_STEPS = 20
#: lr-too-low's pre-flight fires only when the configured rate is this many times below the suggestion
#: (steepest-descent suggestions run ~10-100x above healthy Adam rates: 1e-3 vs ~0.1 on digits).
LOW_RATIO = 1000.0
#: A gradient clipping threshold below this caps nearly every step of a usual model (gradient
#: norms of ~0.1-10; the clipping values Lightning's and Keras' docs show are 0.5-1.0), so
#: negligible updates are named as the clipping's doing rather than the learning rate's.
TINY_CLIP = 1e-2
#: Adam's `eps` at or above this is set far from its defaults (torch 1e-8, Keras 1e-7: 1,000x
#: Keras'), as TensorFlow's Inception recipe sets 1.0 or 0.1 with a rate raised to match; below
#: it, a small step share means vanishing gradients, not the eps
ADAM_EPS_LARGE = 1e-4
#: ... and the median weight taking under this share of Adam's normalised step (eps over 9x the
#: gradient's running RMS: steps 10x+ smaller than Adam's, ~lr x g / eps)
ADAM_STEP_SHARE = 0.1
#: update-ratio measurements that confirm the steps are small (the share, read at the first
#: epoch's end, is the evidence; two are there by then at the default every 25 steps)
ADAM_MEASUREMENTS = 2
#: Adam's convergence analysis (Kingma & Ba 2015, Theorem 4.1) assumes beta_1^2 / sqrt(beta_2)
#: below this; the common settings sit well under it: (0.5, 0.999) 0.25, (0.9, 0.999) 0.81,
#: (0.9, 0.95) 0.83, (0.95, 0.999) 0.90, (0.99, 0.999) 0.98
ADAM_BETA_RATIO_MAX = 1.0
#: ... and a beta_1 above beta_2 is told as swapped only from this momentum up (an average over
#: ~100+ steps of gradients): (0, 0.99), (0.9, 0.9) and (0.99, 0.99) are deliberate settings
ADAM_SWAPPED_BETA_1 = 0.99
#: A fall of the loss below this fraction in CONFIRM_STEPS counts as no progress...
NEGLIGIBLE_FALL = 0.01
#: ...and a comparison rate must lower it by at least this fraction to count as progress.
MIN_FALL = 0.02
#: A rate past the range test's best that "hurts without diverging": a tenth of it lowers the loss
#: at least this many times as much in CONFIRM_STEPS... (Keras Adam at 0.1 on digits: 27% vs 82%;
#: below the range test's best a smaller rate never learns faster, so healthy rates are not judged)
HURT_FACTOR = 2.0
#: ...and by at least this much more (a share of the initial loss), so noise on tiny falls does not count.
HURT_MARGIN = 0.2


# Live verdict (5) of lr-too-high: thrown off at the start.
#: An explosion: the training loss this many times its value at initialisation. One order of
#: magnitude, `loss-divergence`'s explosion factor: warm-up bumps reach 2-3x; Adam at lr=1.0 or
#: SGD at 100 on a digits MLP reaches 100-10,000x within 5 steps.
THROWN_FACTOR = 10.0
#: ...after which the loss sits, not improving, above this share of the chance level ln(C). A run
#: that recovers from an explosion learns on, far below it; a few units that survive leave a real
#: run (1x32 MLP) at 0.77-0.93 ln(C).
THROWN_FLOOR = 0.5


@register
class LRTooHigh(TrainCurveCheck):
    """The learning rate looks too high: updates are large against the weights, the loss
    spikes without making progress, or it exploded at the start and sits at chance since.

    What it does:
        Six signals. (1) The update ratio |dW|/|W| that the adapters measure every few steps
        (log10): its median over the recent quarter of the run above `extreme_log_ratio`
        fires on its own; above `max_log_ratio` it fires when the training loss made no
        significant progress over the same steps and has fallen by less than
        `ratio_max_progress` of its initial value. (2) Loss spikes: steps where the loss
        jumps above `spike_factor` x its local median and `spike_z` x its noise, at least
        `min_spikes` separate times in the last half of the run, while the loss neither
        improves nor has fallen by `max_progress` from its initial value. A noisy run that still
        improves does not fire. (3) Pre-flight (`mlcheck sanity`): a learning-rate range test on
        a copy of the model (Lightning lr_find's rule: sweep 1e-7..10, stop at 4x the best
        loss) fires when the configured rate is past the divergence point and 20 steps at it
        raise the loss while a tenth of it lowers the loss, or when it is past the best rate
        and a tenth of it lowers the loss far more (`hurt_factor`, `hurt_margin`). (4) For classification with a
        known number of classes C: the training loss has stayed above `chance_factor` x ln(C),
        the loss of a uniform guess, without improving over the recent quarter of the run:
        the model is confidently wrong, the usual signature of a rate so high that the first
        steps threw the weights far away (not judged where the loss at the first step, before any
        update, was already that far above ln(C): no rate put it there, the loss is another
        objective, such as distillation's T^2-scaled KL). (5) Thrown off, for classification with a known C:
        the step-level training loss rose above `thrown_factor` x its value at initialisation
        (the first logged step, before any update) and, after that peak, has sat above
        `thrown_floor` x the chance level ln(C) without coming down, over the recent quarter of
        at least `min_chance_values` steps: the first updates threw the
        weights so far that the model forgot everything and predicts no better than a constant
        (ReLU units dead, accuracy at chance). The finding names the configured rate when the
        adapter logs it, and the largest update/weight ratio measured. (6) Adam's betas, read at
        train start from torch's Adam, AdamW, NAdam and RAdam groups and Keras' Adam, AdamW and
        Nadam (key `betas`, told at the first judgement, within 32 steps): a beta_1 of 0.99 or more
        above beta_2 (the pair typed the wrong way round, `Adam(beta_1=0.999, beta_2=0.9)`),
        beta_1^2 / sqrt(beta_2) of 1 or more (the assumption of Adam's convergence analysis,
        Kingma & Ba 2015, Theorem 4.1), or a beta outside [0, 1). The usual settings, (0.9,
        0.999), (0.9, 0.95), (0.9, 0.98), (0.5, 0.999), (0.95, 0.999), (0.99, 0.999), (0.99, 0.99)
        and (0, 0.99), stay silent.

    Why it matters:
        Updates that are a sizeable share of the weights each step throw the model around
        instead of descending: the loss oscillates, spikes, or settles high, and the run is
        one step from diverging.

    How to fix:
        Lower the learning rate 3-10x (10-100x when the loss exploded at the start; a
        learning-rate range test, `mlcheck sanity model.py`, finds a good one), add warmup,
        gradient clipping, or normalisation layers.

    Example:
        model = Net()
        # an SGD-sized rate given to Adam
        optimizer = torch.optim.Adam(model.parameters(), lr=1.0)
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

    Use instead:
        model = Net()
        # Adam's usual range is 1e-4 to 3e-3; a range test finds the best one
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()

    Args:
        max_log_ratio: log10 update ratio above which updates are large. Default -0.5: half
            a decade above the upper end of TheDeepChecker's healthy range [-4, -1] (Karpathy:
            about -3), because Adam at a working learning rate touches -1 early on.
        extreme_log_ratio: log10 update ratio that is too high on its own. Default 0.0: each
            update as large as the weights. Adam's ratio is about lr / |w|, so lr=3e-3 on
            small weights already reaches -1; hence the loss must also stall below this.
        recent_fraction: share of the measurements that form the recent window. Default 0.25.
        min_measurements: least update-ratio measurements to judge. Default 5.
        spike_factor / spike_z / min_spikes: what counts as a loss spike and how many are
            needed. Defaults 2.0 (the loss doubles), 6.0 (six robust sigma), 4.
        max_progress: spikes count only while the loss has fallen by less than this fraction
            of its initial value. Default 0.3: heavy-tailed batch noise also spikes, so the
            loss must also be stuck near its start.
        min_steps: least steps before spikes are judged. Default 400.
        min_ratio_steps: least steps before the update ratio is judged. Default 200: early
            updates are large against freshly initialised weights.
        confirm_steps: steps of the pre-flight's confirming runs at the configured rate and at
            a tenth of it. Default 20: enough for a usable rate to lower the loss by several
            percent (Adam 1e-3 on digits: ~4%; SGD+momentum 0.1: ~30%).
        min_fall: in pre-flight, a tenth of the rate must lower the loss by at least this
            fraction for the configured rate's rise to count against it. Default 0.02.
        hurt_factor / hurt_margin: in pre-flight, a rate past the range test's best also fires
            when a tenth of it lowers the loss `hurt_factor` times as much and by `hurt_margin`
            more in `confirm_steps` steps: too high, though not diverging. Defaults 2.0 and 0.2
            (Keras' Adam at 0.1 on digits: 27% against 82% at 0.01).
        ratio_max_progress: large updates count only while the loss has fallen by less than
            this fraction of its initial value. Default 0.5: a loss that halved is working, and
            when it is flat it has converged.
        chance_factor: the loss level, in multiples of ln(C), that no working classifier
            stays above. Default 2.0: Karpathy's "loss at init should be -log(1/C)"; a trained
            model only goes below it, so twice it after training has started is far off.
        min_chance_values: least training-loss values before (4) and (5) are judged. Default 50.
        thrown_factor: (5) needs the training loss to have risen above this many times its
            value at initialisation. Default 10.0: an order of magnitude, `loss-divergence`'s
            explosion factor (warm-up bumps reach 2-3x; Adam at lr=1.0 on a digits MLP: ~1,000x
            at step 1).
        thrown_floor: ...and to sit since, not improving, above this share of ln(C). Default
            0.5: a run that recovers from the explosion learns on far below it (no healthy run
            goes 10x above its initial loss in the first place). Without a known C there is no
            such level: one batch's loss at initialisation is too noisy a yardstick (heavy-tailed
            synthetic runs start at 5% of their level), so (5) is not judged.
    """

    id = "lr-too-high"
    family = "learning rate"
    severity = Severity.WARNING
    #: root causes that, when found first, explain this check's findings (they then say so)
    explained_by = UNSTABLE_STEP_CAUSES

    def __init__(
        self,
        max_log_ratio: float = -0.5,
        extreme_log_ratio: float = 0.0,
        recent_fraction: float = 0.25,
        min_measurements: int = 5,
        spike_factor: float = 2.0,
        spike_z: float = 6.0,
        min_spikes: int = 4,
        max_progress: float = 0.3,
        min_steps: int = 400,
        min_ratio_steps: int = 200,
        ratio_max_progress: float = 0.5,
        chance_factor: float = 2.0,
        min_chance_values: int = 50,
        thrown_factor: float = THROWN_FACTOR,
        thrown_floor: float = THROWN_FLOOR,
        confirm_steps: int = CONFIRM_STEPS,
        min_fall: float = MIN_FALL,
        hurt_factor: float = HURT_FACTOR,
        hurt_margin: float = HURT_MARGIN,
    ) -> None:
        self.confirm_steps, self.min_fall = confirm_steps, min_fall
        self.hurt_factor, self.hurt_margin = hurt_factor, hurt_margin
        self.chance_factor = chance_factor
        self.thrown_factor, self.thrown_floor = thrown_factor, thrown_floor
        self.min_chance_values = min_chance_values
        self.ratio_max_progress = ratio_max_progress
        self.min_steps = min_steps
        self.min_ratio_steps = min_ratio_steps
        self.max_log_ratio = max_log_ratio
        self.extreme_log_ratio = extreme_log_ratio
        self.recent_fraction = recent_fraction
        self.min_measurements = min_measurements
        self.spike_factor = spike_factor
        self.spike_z = spike_z
        self.min_spikes = min_spikes
        self.max_progress = max_progress
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self._betas_judged = False

    def on_step(self, run: RunState) -> Iterable[Finding]:
        betas = [] if self._betas_judged else self._adam_betas(run)
        if self._fired:
            return betas
        if run.train_loss.finite_count:
            self._train.initial_level(run.train_loss, "step")
        if not self._throttle.due(run.train_loss.finite_count + run.update_ratio.finite_count):
            return betas
        return betas + self._judge(run)

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        return [] if self._betas_judged else self._adam_betas(run)

    def on_end(self, run: RunState) -> Iterable[Finding]:
        betas = [] if self._betas_judged else self._adam_betas(run)
        return betas if self._fired else betas + self._judge(run)

    def _adam_betas(self, run: RunState) -> list[Finding]:
        """(6) Adam's betas, read by the adapters at train start (`RunInfo.adam_betas`), judged
        once: a pair outside [0, 1), a beta_1 of `ADAM_SWAPPED_BETA_1` or more above its beta_2
        (typed the wrong way round), or beta_1^2 / sqrt(beta_2) at or above
        `ADAM_BETA_RATIO_MAX` (Kingma & Ba 2015, Theorem 4.1's assumption; AMSGrad's, Reddi et
        al. 2018, is the looser beta_1 / sqrt(beta_2) < 1). The worst pair is named."""
        pairs = run.info.adam_betas
        if not pairs:
            return []  # not an Adam, or not read (a log read back)
        self._betas_judged = True
        told = []  # (severity order, beta_1, beta_2, ratio, why)
        for b1, b2 in pairs:
            ratio = b1 * b1 / math.sqrt(b2) if b2 > 0 else math.inf
            if not (0 <= b1 < 1 and 0 <= b2 < 1):
                told.append((math.inf, b1, b2, ratio, "outside [0, 1), where Adam's running averages do not average"))
            elif b1 > b2 and b1 >= ADAM_SWAPPED_BETA_1 or ratio >= ADAM_BETA_RATIO_MAX:
                why = f"beta_1^2/sqrt(beta_2) = {ratio:.3g}" + (
                    ", at or above the 1 Adam's convergence analysis assumes below"
                    if ratio >= ADAM_BETA_RATIO_MAX
                    else ", and beta_1 is above beta_2"
                )
                told.append((ratio, b1, b2, ratio, why))
        if not told:
            return []
        _, b1, b2, ratio, why = max(told, key=lambda t: t[0])
        return [
            self.finding(
                f"Adam's betas look swapped or out of range: beta_1={b1:.4g}, beta_2={b2:.4g}, {why}"
                + (
                    "."
                    if "outside" in why
                    else ", so the momentum averages the gradients over more steps than the scale it divides by."
                ),
                evidence={"beta_1": sig(b1), "beta_2": sig(b2), "beta1_sq_over_sqrt_beta2": sig(ratio)},
                hint="beta_1 is the momentum (~0.9), beta_2 the squared-gradient average (~0.999): swapped? "
                "torch.optim.Adam(betas=(0.9, 0.999)), keras.optimizers.Adam(beta_1=0.9, beta_2=0.999).",
                step=run.step,
                epoch=run.epoch,
                key="betas",
            )
        ]

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        """Before training: the configured rate is past the range test's divergence point (or
        its best loss), and `confirm_steps` steps at it make the loss blow up, or rise while a
        10x smaller rate lowers it by `min_fall`."""
        lr = ctx.trainable.get_lr()
        if lr is None or lr <= 0:
            return []  # nothing configured to judge
        reason = health_at_init(ctx).reason()
        if reason:  # non-finite before any step: not the learning rate's fault
            return [skipped(self, reason)]
        sweep = shared_range_test(ctx)
        evidence: dict[str, Any] = {
            "lr": lr,
            "diverged_lr": sweep.diverged_lr,
            "best_lr": sweep.best_lr,
            "suggested_lr": sweep.suggestion,
        }
        past_divergence = sweep.diverged_lr is not None and lr >= sweep.diverged_lr
        past_best = sweep.best_lr is not None and lr > sweep.best_lr
        if not (past_divergence or past_best):
            return [range_test_inconclusive(self, evidence, ctx)] if sweep.cut else []
        at_lr = progress_at(ctx, lr, self.confirm_steps)
        at_lower = progress_at(ctx, lr / 10, self.confirm_steps)
        if at_lr is None or at_lower is None:
            return [range_test_inconclusive(self, evidence, ctx)]
        evidence["loss_fall_at_lr"], evidence["loss_fall_at_lr_div_10"] = at_lr, at_lower
        blew_up = at_lr == -math.inf
        rose = at_lr <= 0 and at_lower >= self.min_fall
        hurt = at_lower >= self.hurt_factor * at_lr and at_lower - at_lr >= self.hurt_margin
        if not (blew_up or rose or hurt):
            return []
        what = "makes the loss non-finite" if blew_up else "raises the loss while 1/10 of it lowers it"
        if not (blew_up or rose):
            what = f"lower the loss {at_lr:.0%} where 1/10 of it lowers it {at_lower:.0%}"
        better = sweep.suggestion if sweep.suggestion and sweep.suggestion < lr else lr / 10
        return [
            self.finding(
                f"The learning rate {lr:.3g} is too high: {self.confirm_steps} steps at it {what}.",
                evidence=evidence,
                hint=f"Lower the learning rate to around {better:.2g} (a range test's steepest "
                "descent), or add warmup / gradient clipping.",
                key="range-test",
            )
        ]

    def _judge(self, run: RunState) -> list[Finding]:
        found = self._thrown(run) or self._ratio(run) or self._spikes(run) or self._above_chance(run)
        if found:
            self._fired = True
        return found

    def _thrown(self, run: RunState) -> list[Finding]:
        """(5) The loss exploded above its value at initialisation and sits at chance since."""
        series = run.train_loss
        start = series.first_value
        chance = _chance_loss(run)
        if chance is None or start is None or not start > 0 or series.finite_count < self.min_chance_values:
            return []  # no chance level, no step-level loss from the start (epoch logs), or too few steps
        b = series.buckets(include_open=True)
        i_peak = int(np.argmax(b["max"]))
        peak = float(b["max"][i_peak])
        if not peak > self.thrown_factor * start:
            return []  # never an order of magnitude above where it started (the usual case, cheap)
        c = Curve.of(series, final=True)
        if c is None:
            return []
        after = c.x > b["x1"][i_peak]
        w = max(3, len(c) // 4)
        if int(after.sum()) < w:
            return []  # too soon after the explosion to say where the loss settles
        level = median(c.mean[-w:])
        if level < self.thrown_floor * chance:
            return []  # it learnt far below chance: recovered from the explosion
        drop, se = trend_drop(c.x[-w:], c.mean[-w:])
        if math.isfinite(drop) and drop > 3.0 * se and drop > 0.02 * abs(level):
            return []  # still coming down: give it time
        lr = _configured_lr(run)
        peak_ratio = _peak_log_ratio(run)
        rate = f"The learning rate {lr:.3g} is far too high" if lr else "The learning rate is likely far too high"
        where = f"{level / chance:.2f}x the chance level {_chance_words(run)}"
        updates = (
            f"; the updates measured reached {_from_log10(peak_ratio):.2g}x the weights"
            if peak_ratio is not None and peak_ratio > self.max_log_ratio
            else ""
        )
        return [
            self.finding(
                f"{rate}: the training loss jumped from {start:.4g} at initialisation to {peak:.4g} "
                f"({peak / start:.3g}x) by step {int(b['x1'][i_peak])} and has sat at {level:.4g} since "
                f"({where}), not improving{updates}: the first updates threw the weights away.",
                evidence={
                    "lr": lr,
                    "initial_loss": sig(start),
                    "peak_loss": sig(peak),
                    "peak_step": int(b["x1"][i_peak]),
                    "loss": sig(level),
                    "chance_loss": sig(chance),
                    "peak_log10_update_ratio": sig(peak_ratio) if peak_ratio is not None else None,
                    "loss_drop": sig(drop),
                    "loss_drop_stderr": sig(se),
                },
                hint=f"Lower the learning rate 10-100x{_lower(lr)}, add a warm-up, or find a good rate with "
                "a range test (`mlcheck sanity model.py`).",
                step=run.step,
                epoch=run.epoch,
                key="lr",
            )
        ]

    def _above_chance(self, run: RunState) -> list[Finding]:
        chance = _chance_loss(run)
        series, unit = self._train.pick(run)
        c = Curve.of(series, final=True)
        if chance is None or c is None:
            return []
        if c.values < (self.min_chance_values if unit == "step" else 3) or len(c) < 4:
            return []
        w = max(3, len(c) // 4)
        level = median(c.mean[-w:])
        if level <= self.chance_factor * chance:
            return []
        if starts_off_chance(run, self.chance_factor) is not None:
            return []  # as far above ln(C) before any update: no rate put it there (another objective)
        drop, se = trend_drop(c.x[-w:], c.mean[-w:])
        if math.isfinite(drop) and drop > 3.0 * se and drop > 0.02 * abs(level):
            return []  # coming down: give it time
        lr = _configured_lr(run)
        rate = f"the learning rate {lr:.3g} is likely far too high" if lr else "as after a learning rate far too high"
        return [
            self.finding(
                f"The training loss stays at {level:.4g}, {times(level / chance)}x the {_chance_words(run)} that "
                f"a uniform guess over {run.info.num_classes} classes scores: the model is confidently "
                f"wrong, {rate}.",
                evidence={
                    "lr": lr,
                    "loss": sig(level),
                    "chance_loss": sig(chance),
                    "num_classes": run.info.num_classes,
                    "loss_drop": sig(drop),
                    "loss_drop_stderr": sig(se),
                },
                hint=f"Lower the learning rate 10-100x{_lower(lr)} (a range test finds a good one: "
                "`mlcheck sanity model.py`); if the rate is right, check that the loss gets logits and "
                "class-index targets.",
                step=run.step if unit == "step" else None,
                epoch=run.epoch,
                key="lr",
            )
        ]

    def _ratio(self, run: RunState) -> list[Finding]:
        recent = _recent_ratio(run, self.recent_fraction, self.min_measurements)
        if recent is None:
            return []
        ratio, x0, x1, count = recent
        if ratio <= self.max_log_ratio or x1 < self.min_ratio_steps:
            return []  # Adam's first steps are large against small initial weights
        drop, se, level = _loss_window(run, x0, x1)
        progressing = math.isfinite(drop) and drop > 3.0 * se and drop > 0.02 * abs(level)
        initial = self._train.initial_level(run.train_loss, "step")
        if math.isfinite(level) and initial > 0 and initial - level >= self.ratio_max_progress * initial:
            progressing = True  # a loss that has come down a long way is working; flat = converged
        if ratio <= self.extreme_log_ratio and progressing:
            return []
        if ratio <= self.extreme_log_ratio and not math.isfinite(drop):
            return []  # large but not extreme, and no loss to judge progress by
        return [
            self.finding(
                f"Weight updates are {_from_log10(ratio):.2g} of the weights per step (log10 {ratio:.2f}, "
                f"healthy is about -3) over the last {count} measurements"
                + ("" if progressing else ", and the loss is not improving")
                + ".",
                evidence={
                    "log10_update_ratio": sig(ratio),
                    "max_log_ratio": self.max_log_ratio,
                    "measurements": count,
                    "loss_drop": sig(drop),
                    "loss_drop_stderr": sig(se),
                },
                hint="Lower the learning rate 3-10x, or add warmup and gradient clipping.",
                step=run.step,
                epoch=run.epoch,
                key="lr",
            )
        ]

    def _spikes(self, run: RunState) -> list[Finding]:
        c = Curve.of(run.train_loss, final=True)
        if c is None or len(c) < 24 or c.values < self.min_steps:
            return []
        k = 9
        local = rolling_median(c.mean, k)
        centre = slice(k // 2, k // 2 + len(local))
        peak = c.max[centre]
        sigma = noise(c.mean) if c.width == 1 else median(c.std)
        if not (math.isfinite(sigma) and sigma > 0):
            return []
        spike = (peak > self.spike_factor * local) & (local > 0) & (peak > local + self.spike_z * sigma)
        half = len(spike) // 2
        recent = spike[half:]
        events = int(recent[0]) + int(np.sum(recent[1:] & ~recent[:-1])) if len(recent) else 0
        if events < self.min_spikes:
            return []
        x0 = float(c.x[k // 2 + half])
        drop, se, level = _loss_window(run, x0, float(c.x[-1]))
        if not math.isfinite(drop) or (drop > 3.0 * se and drop > 0.02 * abs(level)):
            return []
        initial = self._train.initial_level(run.train_loss, "step", c)
        if initial > 0 and (initial - level) >= self.max_progress * initial:
            return []
        return [
            self.finding(
                f"The training loss spiked {events} times in the last {int(c.x[-1] - x0)} steps "
                f"without improving (level {level:.4g}): the learning rate is likely too high.",
                evidence={
                    "spikes": events,
                    "loss": sig(level),
                    "initial_loss": sig(initial),
                    "noise": sig(sigma),
                    "loss_drop": sig(drop),
                    "loss_drop_stderr": sig(se),
                },
                hint="Lower the learning rate 3-10x, or add warmup and gradient clipping.",
                step=run.step,
                epoch=run.epoch,
                key="lr",
            )
        ]


@register
class LRTooLow(TrainCurveCheck):
    """The learning rate looks too low: updates are negligible against the weights, or the
    loss falls steadily but far too slowly.

    What it does:
        Two signals. (1) The median log10 update ratio |dW|/|W| over the recent quarter of
        the run is below `min_log_ratio` while the loss has fallen by less than `max_drop`
        of its initial value (a converged run may have tiny updates); where the framework clips
        the gradients to under `TINY_CLIP` (1e-2: Lightning's `gradient_clip_val`, Keras'
        `clipnorm`/`global_clipnorm`/`clipvalue`), the finding names the clipping as the cause
        and its hint the threshold, not the rate. (2) The training loss
        falls significantly (`z` standard errors) and steadily (its last half falls at least
        `steady` x as much as its first half: no sign of saturating; and, read from the curve
        alone with no update ratio measured, as in `mlcheck analyze`, not 1 / `steady` x faster
        per point beyond `z` standard errors either: a fall that speeds up is a loss leaving a
        plateau or a saddle, where a small rate's pace stays the same, CS231n's "linear"
        improvements) yet has fallen by less than `max_drop` in total, while a logged
        validation loss falls too (over the later half of its points, by at least a standard
        error and a quarter of the training loss's
        fall): a training loss that falls alone is memorising its labels (shuffled or
        misaligned ones), which no rate cures. Where the recent median update ratio is at least
        10^-3 (a usual rate), the hint names heavy dropout, strong weight decay and noisy
        labels before the rate; at 10^-2 or more (large: 10x more would pass 10^-1, the top of
        the healthy range) the slow fall is an INFO that says the rate is not small (a run too
        short for its model, such as a Transformer language model at a sweep's best rate).
        `mlcheck analyze` says the slow fall at INFO where the log holds epoch points alone (no
        step stream, no update ratio): from such a log a rate too low and a run stopped before
        its model converged look the same (`mlcheck.analyze.replay`; a log with steps and the
        live callbacks keep the WARNING).
        Judged at the end of a run, or during a run of
        known length once `min_progress` of it is done; not during warmup; not for a run from
        trained weights, whose loss starts near its floor and falls slowly however well the
        rate is set: `RunInfo.pretrained` (a Hugging Face `Trainer` log, a YOLO run from `.pt`
        weights, a `from_pretrained` model, a resumed run), or a classification loss that starts below
        `trained_start_fraction` x the smaller of ln(C) and the entropy of the training labels
        (counted over the first pass), whichever are known (weights restored with
        `load_state_dict` leave no other trace), the fact `loss-plateau` uses; or whose first
        10 steps' mean loss sits below that floor by more than 3 standard errors (no prediction
        that ignores the labels scores below their entropy: weights that start there know the
        task, or learned it within 10 steps, at no small rate). (3) Pre-flight
        (`mlcheck sanity`): the same range test as `lr-too-high` fires when the configured rate
        is at least 1000x below the suggested one, 20 steps at it lower the loss by under 1%
        and a tenth of the suggestion lowers it clearly. Live, a binary cross-entropy on targets
        between 0 and 1 (pixel values, soft labels) has its fall measured above the targets' own
        entropy, its least value: (initial - loss) / (initial - floor), as `loss-plateau` does.
        (4) An Adam whose `eps` is far above its defaults (`ADAM_EPS_LARGE`, 1e-4; torch 1e-8,
        Keras 1e-7) and far above the gradients it divides: both callbacks read the optimizer's
        own running mean of squared gradients v at the first training epoch's end, and where the
        median weight takes under `ADAM_STEP_SHARE` (0.1) of Adam's normalised step
        (sqrt(v) / (sqrt(v) + eps)), the measured updates are under 10^-3 of the weights and the
        loss has fallen less than `max_drop`, the finding names the eps (key `eps`): each step is
        ~lr x gradient / eps. An eps of 0.1-1 with a rate raised to match (TensorFlow's Inception
        recipe) moves the weights at a usual rate and is not named.

    Why it matters:
        With too small a learning rate the model crawls: the run ends long before it
        converges and the result looks like a weak model rather than a wrong setting.

    How to fix:
        Raise the learning rate 3-10x (a learning-rate range test finds a good one); check
        that a scheduler or warmup is not holding it near zero, and that gradients are not
        clipped to a tiny norm (`gradient_clip_val=1e-6` for 1.0).

    Example:
        model = keras.Sequential([
            keras.Input(shape=(32, 32, 3)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ])
        # a fine-tuning rate, for a model trained from scratch
        model.compile(keras.optimizers.SGD(learning_rate=1e-5),
                      "sparse_categorical_crossentropy")
        model.fit(x_train, y_train, epochs=20)

    Use instead:
        model = keras.Sequential([
            keras.Input(shape=(32, 32, 3)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile(keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                      "sparse_categorical_crossentropy")
        model.fit(x_train, y_train, epochs=20)

    Args:
        min_log_ratio: log10 update ratio below which updates are negligible. Default -5.0:
            one decade below TheDeepChecker's healthy range [-4, -1], because Adam's ratio is
            about lr / |w| and fine-tuning at lr=1e-6 legitimately sits near -4.5.
        max_drop: a loss that fell by at least this fraction of its initial value is making
            real progress. Default 0.2.
        steady: the last half must fall at least this share of the first half's fall.
            Default 0.5 (an exponential-looking decay that saturates falls far less).
        z: standard errors the decrease must exceed. Default 3.0.
        min_steps / min_epochs: least run length to judge. Defaults 200 / 5.
        min_progress: share of a run of known length done before judging live. Default 0.5.
        suggestion_ratio: the pre-flight fires only when the configured rate is this many
            times below the range test's suggestion. Default 1000: steepest-descent suggestions
            run ~10-100x above healthy Adam rates (1e-3 against ~0.1 on digits).
        confirm_steps: steps of the pre-flight's confirming runs. Default 20, as lr-too-high.
        negligible_fall: in pre-flight, the loss falling by less than this fraction in
            `confirm_steps` steps at the configured rate counts as no progress. Default 0.01.
        min_fall: ...while a tenth of the suggestion must lower it by at least this fraction
            (and 10x what the configured rate did). Default 0.02.
        recent_fraction / min_measurements: the update-ratio window. Defaults 0.25 / 5.
        max_chance_factor: a classification loss above this multiple of ln(C) is worse than a
            uniform guess: something is broken, and a small rate is not the explanation.
            Default 1.5.
        max_peak_log_ratio: a run whose update ratio once exceeded this log10 value did take
            large steps: tiny updates later mean blown-up or saturated weights, not a small
            rate. Default -1.0, the top of TheDeepChecker's healthy range.
        trained_start_fraction: a classification loss whose first 10 steps sit below this
            fraction of ln(C) (or of the training labels' entropy, when smaller) comes from
            trained weights. Default 0.5, as `loss-plateau`: an untrained classifier starts at
            about ln(C) (Karpathy, "A Recipe for Training Neural Networks", 2019: "verify loss
            @ init").
    """

    id = "lr-too-low"
    family = "learning rate"
    severity = Severity.WARNING
    reads_probe = True  # the labels only
    #: the training labels' entropy (a trained start's floor) needs the counts of a whole pass
    consumes = frozenset({Signal.EVERY_BATCH})
    judges_batches = False  # the counts serve a verdict on the training curve: sanity skips it
    #: more distinct labels than this are no class labels (as `class-imbalance`)
    MAX_CLASSES = 1000
    #: root causes that, when found first, explain this check's findings (they then say so)
    explained_by = frozenset(
        {
            "nonfinite-input",
            "output-loss-mismatch",
            "unused-parameters",
            "unshuffled-data",
            "dead-units",
            "vanishing-gradient",
            "unnormalized-input",  # inputs or regression targets far from unit scale
            "frozen-parameters",  # a layer frozen by mistake: the rest trains around it, slowly
            "batch-dependence:batchnorm-small-batch",  # BatchNorm's batch statistics at batches of 2: noise
            "lr-schedule",  # a schedule that decayed the rate to ~0 early: the rate set is not the one used
        }
    )

    def __init__(
        self,
        min_log_ratio: float = -5.0,
        max_drop: float = MAX_DROP,
        steady: float = 0.5,
        z: float = 3.0,
        min_steps: int = 200,
        min_epochs: int = 5,
        min_progress: float = 0.5,
        recent_fraction: float = 0.25,
        min_measurements: int = 5,
        max_chance_factor: float = 1.5,
        max_peak_log_ratio: float = -1.0,
        suggestion_ratio: float = LOW_RATIO,
        confirm_steps: int = CONFIRM_STEPS,
        negligible_fall: float = NEGLIGIBLE_FALL,
        min_fall: float = MIN_FALL,
        trained_start_fraction: float = TRAINED_START_FRACTION,
    ) -> None:
        self.trained_start_fraction = trained_start_fraction
        self.suggestion_ratio, self.confirm_steps = suggestion_ratio, confirm_steps
        self.negligible_fall, self.min_fall = negligible_fall, min_fall
        self.max_chance_factor = max_chance_factor
        self.max_peak_log_ratio = max_peak_log_ratio
        self.min_log_ratio = min_log_ratio
        self.max_drop = max_drop
        self.steady = steady
        self.z = z
        self.min_steps = min_steps
        self.min_epochs = min_epochs
        self.min_progress = min_progress
        self.recent_fraction = recent_fraction
        self.min_measurements = min_measurements
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self._labels = FirstPassLabels(self.MAX_CLASSES)
        self._counted = False  # the first pass over the training data is complete

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        if not self._counted and batch.split == "train":
            self._labels.add(batch, run)
        return ()

    def _train_entropy(self) -> float | None:
        """The entropy of the first pass's training labels, or None before that pass is
        complete, when only a sample of its batches was seen, or with fewer than two classes."""
        train = self._labels.train
        if not (self._counted and train.contiguous) or len(train.counts) < 2:
            return None
        return label_entropy(train.counts.values())

    def on_step(self, run: RunState) -> Iterable[Finding]:
        if self._fired:
            return ()
        series, unit = self._train.pick(run)
        if unit != "step" or not series.finite_count:
            return ()
        self._train.initial_level(series, unit)
        if not self._throttle.due(series.finite_count + run.update_ratio.finite_count):
            return ()
        return self._judge(run, final=False)

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        """Before training: the configured rate is `suggestion_ratio` times below the range
        test's suggestion, and `confirm_steps` steps at it barely move the loss while a tenth of
        the suggestion lowers it clearly."""
        lr = ctx.trainable.get_lr()
        if lr is None or lr <= 0:
            return []  # nothing configured to judge
        reason = health_at_init(ctx).reason()
        if reason:  # non-finite before any step: not the learning rate's fault
            return [skipped(self, reason)]
        sweep = shared_range_test(ctx)
        evidence: dict[str, Any] = {"lr": lr, "suggested_lr": sweep.suggestion}
        if sweep.suggestion is None:
            return [range_test_inconclusive(self, evidence, ctx)] if sweep.cut else []
        if lr * self.suggestion_ratio > sweep.suggestion:
            return []
        alt = sweep.suggestion / 10
        at_lr = progress_at(ctx, lr, self.confirm_steps)
        at_alt = progress_at(ctx, alt, self.confirm_steps)
        if at_lr is None or at_alt is None:
            return [range_test_inconclusive(self, evidence, ctx)]
        evidence["loss_fall_at_lr"], evidence["loss_fall_at_suggestion_div_10"] = at_lr, at_alt
        if not (at_lr < self.negligible_fall and at_alt >= max(self.min_fall, 10 * max(at_lr, 0.0))):
            return []
        return [
            self.finding(
                f"The learning rate {lr:.3g} is {sweep.suggestion / lr:.0f}x below where a range "
                f"test finds the loss falling fastest ({sweep.suggestion:.3g}); {self.confirm_steps} "
                f"steps at it lower the loss by {100 * at_lr:.2g}%, against {100 * at_alt:.2g}% at "
                f"{alt:.2g}.",
                evidence=evidence,
                hint=f"Raise the learning rate toward {alt:.2g}-{sweep.suggestion:.2g} (try a few "
                "values), or run a learning-rate finder.",
                key="range-test",
            )
        ]

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        train = self._labels.train
        if not self._counted and train.epoch is not None and run.epoch is not None and run.epoch >= train.epoch:
            self._counted = True
        series, unit = self._train.pick(run)
        if self._fired or unit != "epoch" or not epoch_judgement_due(series):
            return ()
        return self._judge(run, final=False)

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return () if self._fired else self._judge(run, final=True)

    def _judge(self, run: RunState, final: bool) -> list[Finding]:
        series, unit = self._train.pick(run)
        c = Curve.of(series, final=True)
        if c is None or len(c) < 6:
            return []
        initial = self._train.initial_level(series, unit, c)
        level = median(c.mean[-max(3, len(c) // 10) :])
        # measured above a binary cross-entropy's floor on soft targets (their entropy), else from 0
        rows = run.info.loss_summed_over
        fell = fall_above_floor(initial, level, None if rows is not None and rows > 1 else self._labels.soft_floor())
        if not (math.isfinite(fell) and fell < self.max_drop):
            return []
        chance = _chance_loss(run)
        if chance is not None and level > self.max_chance_factor * chance:
            return []  # worse than a uniform guess: broken, not slow (lr-too-high judges it)
        peak = _peak_log_ratio(run)
        if peak is not None and peak > self.max_peak_log_ratio:
            return []  # updates were once large: weights blown up or saturated, not a small rate
        # from trained weights a slow fall is what fine-tuning looks like
        trained = starts_trained(run, initial, self._train_entropy(), self.trained_start_fraction, self._train.start)
        recent = _recent_ratio(run, self.recent_fraction, self.min_measurements)  # read by both rules
        found = (
            self._adam_eps(run, fell)
            or self._ratio(run, fell, recent)
            or ([] if trained else self._slow(run, c, unit, initial, level, fell, final, recent))
        )
        if found:
            self._fired = True
        return found

    def _adam_eps(self, run: RunState, fell: float) -> list[Finding]:
        """An Adam whose eps (`ADAM_EPS_LARGE` or more) leaves the median weight under
        `ADAM_STEP_SHARE` of its normalised step, while the updates measured (`ADAM_MEASUREMENTS`
        or more) are below the usual 10^-3 of the weights and the loss has barely fallen (the
        caller's `max_drop`)."""
        eps, share = run.info.adam_eps, run.info.adam_step_share
        if eps is None or share is None or eps < ADAM_EPS_LARGE or share >= ADAM_STEP_SHARE:
            return []
        # the step share is the evidence: the update ratio only confirms the steps are small
        recent = _recent_ratio(run, self.recent_fraction, ADAM_MEASUREMENTS)
        if recent is None or recent[0] >= _USUAL_LOG_RATIO:
            return []  # the updates are of a usual size: a rate raised to match the eps
        return [
            self.finding(
                f"Adam's eps is {eps:.3g}, far above the size of the gradients it divides (their running "
                f"RMS): the weights take only {share:.1%} of Adam's step (median), so each step is about "
                f"lr x gradient / {eps:.3g}; the updates are 10^{recent[0]:.1f} of the weights per step and "
                f"the loss has fallen {max(fell, 0):.1%}.",
                evidence={
                    "adam_eps": sig(eps),
                    "adam_step_share": sig(share),
                    "log10_update_ratio": sig(recent[0]),
                    "fraction_fallen": sig(fell),
                },
                hint="Set eps back to its default (torch.optim.Adam eps=1e-8, keras.optimizers.Adam epsilon=1e-7): "
                "it only keeps the division finite. An eps of 0.1-1 is used with a learning rate raised to "
                "match (TensorFlow's Inception recipe), never at Adam's usual 1e-3.",
                step=run.step,
                epoch=run.epoch,
                key="eps",
            )
        ]

    def _ratio(self, run: RunState, fell: float, recent: tuple[float, float, float, int] | None) -> list[Finding]:
        if recent is None or recent[0] >= self.min_log_ratio:
            return []
        ratio, _, _, count = recent
        clip = run.info.grad_clip
        clipped = clip is not None and clip < TINY_CLIP
        because = (
            f"; the gradients are clipped to {clip:.2g} before each step, which caps an SGD step at "
            f"the learning rate x {clip:.2g}, so the clipping threshold, not the rate, is the likely cause"
            if clipped
            else ""
        )
        return [
            self.finding(
                f"Weight updates are only {10**ratio:.2g} of the weights per step (log10 "
                f"{ratio:.2f}, healthy is about -3) and the loss has fallen {max(fell, 0):.1%}{because}.",
                evidence={
                    "log10_update_ratio": sig(ratio),
                    "min_log_ratio": self.min_log_ratio,
                    "measurements": count,
                    "fraction_fallen": sig(fell),
                    **({"grad_clip": clip} if clip is not None else {}),
                },
                hint=(
                    f"Raise the gradient clipping threshold ({clip:.2g}; usual values are 0.5-5: Lightning "
                    "gradient_clip_val=1.0, Keras clipnorm=1.0) or remove it."
                    if clipped
                    else "Raise the learning rate 3-10x; check that the scheduler is not holding it near zero."
                ),
                step=run.step,
                epoch=run.epoch,
                key="lr",
            )
        ]

    def _slow(
        self,
        run: RunState,
        c: Curve,
        unit: str,
        initial: float,
        level: float,
        fell: float,
        final: bool,
        recent: tuple[float, float, float, int] | None,
    ) -> list[Finding]:
        step_unit = unit == "step"
        if c.values < (self.min_steps if step_unit else self.min_epochs):
            return []
        if not final:
            total = run.info.total_steps if step_unit else run.info.max_epochs
            if not total or c.x[-1] < self.min_progress * total:
                return []
        half = len(c) // 2
        if step_unit and rising(run.lr, float(c.x[half]), float(c.x[-1])):
            return []
        d1, se1 = trend_drop(c.x[: half + 1], c.mean[: half + 1])
        d2, se2 = trend_drop(c.x[half:], c.mean[half:])
        if not (math.isfinite(d1) and math.isfinite(d2)):
            return []
        significant = d2 > self.z * se2 and d2 > 0.02 * abs(level) and d1 > self.z * se1
        if not significant or d2 < self.steady * d1:
            return []
        # with no update ratio measured (a log read by `mlcheck analyze`), the curve's shape is the
        # only witness of the steps' size: a fall that speeds up is no small rate's constant pace
        if not run.update_ratio.finite_count and _accelerating(c, half, ((d1, se1), (d2, se2)), self.steady, self.z):
            return []
        if _memorising(run, d2):
            return []
        length = int(c.x[-1] - c.x[0]) + c.width
        evidence = {
            "loss": sig(level),
            "initial_loss": sig(initial),
            "fraction_fallen": sig(fell),
            "drop_first_half": sig(d1),
            "drop_second_half": sig(d2),
            f"{unit}s": length,
        }
        message = (
            f"The training loss falls steadily but slowly: only {fell:.1%} in {length} {unit}s, "
            f"with no sign of levelling off."
        )
        hint = "Raise the learning rate 3-10x; check that warmup or a scheduler is not holding it low."
        severity = None  # the check's own
        if recent is not None and recent[0] >= _LARGE_LOG_RATIO:
            # the updates are large already: the rate is not small, and the hint's raise would take
            # them past the healthy band's top
            evidence["log10_update_ratio"] = sig(recent[0])
            message = (
                f"The training loss falls steadily but slowly: only {fell:.1%} in {length} {unit}s, with no "
                f"sign of levelling off, while the weights move by 10^{recent[0]:.1f} of their size per step, "
                "10x or more the usual 10^-3: the learning rate is not small."
            )
            hint = (
                "The run is likely short for this model (attention models often fall slowly, then "
                "fast): train longer and compare the validation curve. A larger rate would take the updates "
                "past 10^-1 of the weights per step, the top of the healthy range."
            )
            severity = Severity.INFO
        elif recent is not None and recent[0] >= _USUAL_LOG_RATIO:
            evidence["log10_update_ratio"] = sig(recent[0])
            hint = (
                f"The weights move at a usual rate (updates 10^{recent[0]:.1f} of the weights per step), so the "
                "learning rate is not the likeliest cause: look for dropout so heavy that little signal gets "
                "through (nn.Dropout(p) and keras Dropout(rate) take the share dropped, not kept: 0.9 drops "
                "90%), strong weight decay, or noisy labels; if none applies, raise the learning rate 3-10x."
            )
        return [
            self.finding(
                message,
                evidence=evidence,
                hint=hint,
                step=run.step if step_unit else None,
                epoch=run.epoch,
                severity=severity,
                key="lr",
            )
        ]


#: Epochs in a row whose rate is the previous epoch's times one factor below 1 that make a
#: compounding schedule (`lambda epoch, lr: lr * 0.5`): three are already 1/8 for a halving,
#: where a step decay drops once every many epochs
COMPOUNDING_EPOCHS = 3
#: how near each epoch's factor must be to the first's: a rate kept in float32 rounds to ~1e-7
FACTOR_TOL = 1e-3


#: a cycle "touches ~0" below this share of the rate's peak and "returns" above `CYCLE_HIGH` of
#: it: a cosine with eta_min up to a tenth of the peak counts; CyclicLR's default (base_lr 1e-3,
#: max_lr 6e-3: 1/6) does not go that low
CYCLE_LOW = 0.1
CYCLE_HIGH = 0.5
#: cycles an epoch that no schedule is designed with: Smith's cyclical rates (2017) set a
#: half-cycle of 2-10 epochs, SGDR (Loshchilov & Hutter, 2017) restarts after 1 or 10 epochs at
#: the least; a period counted in epochs and stepped every batch gives (batches an epoch) /
#: (period) cycles an epoch
CYCLES_PER_EPOCH = 2.0
#: a schedule whose period is counted in epochs: a cosine's full cycle is 2 x T_max, T_max at
#: most the run's epochs, so stepped per batch its cycle is at most this many x the run's epochs
#: in steps (a single-epoch run with restarts every few thousand steps is not that)
CYCLE_EPOCHS_FACTOR = 2
#: returns to the peak seen before judging: three cycles, so one warm restart is never one
CYCLE_RETURNS = 3
#: the rate's buckets must be this many times finer than an epoch: coarser, one bucket may hold
#: a whole cycle, and its order is lost
CYCLE_RESOLUTION = 8


#: a warm-up is a few percent of training: Goyal et al. (2017) warm up over 5 of 90 epochs (5.6%),
#: BERT (Devlin et al., 2019) over 10,000 of 1,000,000 steps (1%), the Transformer over 4,000 of
#: 100,000 (4%), Hugging Face's examples at most 10%. So at the first epoch's end a rate still
#: rising and under this share of its configured peak is a warm-up of many epochs: judged by
#: whether its pace reaches the peak within the planned steps
WARMUP_LOW = 0.1
#: buckets of the rate's record needed before its pace is read (two halves of two or more)
WARMUP_POINTS = 4


#: the first rate trained at, set by a callback (Keras' LearningRateScheduler), this many times
#: the rate the optimizer was built with is a value on another scale, not a schedule from it: two
#: decades, past the widest rise published schedules make from their first rate (OneCycleLR's
#: div_factor 25; Goyal et al. 2017's warm-up from 0.1 to 3.2, 32x) and past the span of Keras'
#: own default rates (1e-3 Adam, RMSprop, Nadam; 1e-2 SGD). A factor returned as the rate is
#: 1.0 at the first epoch: 1000x Adam's default.
RATE_SET_HIGH = 100.0


def _stepped_per_epoch(run: RunState, per_epoch: int) -> bool:
    """True when the rates logged change at most once an epoch over more than one epoch of
    steps (`per_epoch` optimizer steps each): a scheduler stepped per epoch."""
    if per_epoch < 2:
        return False
    steps, rates = run.lr.finite_values()
    if len(rates) < 3 or steps[-1] - steps[0] <= per_epoch:
        return False
    changes = int(np.count_nonzero(np.diff(rates)))
    return 0 < changes <= (steps[-1] - steps[0]) / per_epoch + 1 and len(rates) > 2 * (changes + 1)


def _unfinished_warmup(run: RunState, c: Curve, final: bool) -> dict[str, Any] | None:
    """The numbers of a warm-up that cannot end within the run: the rate rose through the whole
    record and sits under `WARMUP_LOW` x the configured peak (`RunInfo.base_lr`), judged from the
    first epoch's end on (at the run's end where the steps an epoch are unknown), and at its pace
    (read linearly and geometrically, the sooner taken) it reaches the peak only after the planned
    steps (`RunInfo.total_steps`; a run of unknown length is judged at its end, still rising).
    None otherwise."""
    base, total = run.info.base_lr, run.info.total_steps
    if not (base and math.isfinite(base) and base > 0) or len(c) < WARMUP_POINTS:
        return None
    per_epoch = _steps_per_epoch(run)
    x_end = float(c.x[-1])
    if not final and (per_epoch is None or total is None or x_end + 1 < per_epoch):
        return None  # before the first epoch's end, or live without a planned length
    mean = c.mean
    now = float(mean[-1])
    if not (now < WARMUP_LOW * base and now > mean[0]) or np.any(np.diff(mean) < -1e-9 * base):
        return None  # not a rise through the whole record, or near the peak already
    # the pace of the later half of the record, read two ways, the earlier end taken: a linear
    # warm-up's is its slope; an exponential or cosine-shaped one's (OneCycleLR's first phase)
    # its growth factor. A linear rise read geometrically reaches its end sooner than it does, so
    # the geometric reading alone waits longer (b03 at its third judgement, not its second)
    half = len(c) // 2
    span = max(x_end - float(c.x[half]), 1.0)
    late = (now - mean[half]) / span
    if not late > 0:
        return None  # flat lately: held, not rising
    linear = (base - now) / late
    geometric = math.log(base / now) / (math.log(now / float(mean[half])) / span) if mean[half] > 0 else math.inf
    reach = x_end + min(linear, geometric)
    if total is not None and reach <= total:
        return None
    if total is None and c.values < 100:
        return None  # a short run of unknown length: too little to call a schedule
    return {
        "lr": sig(now),
        "base_lr": sig(base),
        "share_of_base": sig(now / base),
        "reaches_base_at_step": round(reach),
        "total_steps": total,
        "steps_per_epoch": per_epoch,
    }


def _steps_per_epoch(run: RunState) -> int | None:
    """Optimizer steps an epoch: the run's total over its epochs where the adapter knows both,
    else the first epoch's length as recorded; None before either is known."""
    total, epochs = run.info.total_steps, run.info.max_epochs
    if total and epochs:
        return total // epochs or None
    ends = sorted(run.epoch_step.items())
    if len(ends) >= 2 and ends[1][0] == ends[0][0] + 1 and ends[1][1] is not None and ends[0][1] is not None:
        return (ends[1][1] - ends[0][1]) or None
    return None


def _cycles(run: RunState) -> tuple[float, int, int] | None:
    """(median steps between two returns of the rate to its peak, returns seen, steps an epoch)
    where the rate fell below `CYCLE_LOW` x its peak and came back above `CYCLE_HIGH` x it at
    least `CYCLE_RETURNS` times, at least `CYCLES_PER_EPOCH` times an epoch, each cycle no more
    steps than `CYCLE_EPOCHS_FACTOR` x the run's epochs (a period counted in epochs); None
    otherwise, for a run of unknown epochs, or while the rate's buckets are too coarse to tell
    (`CYCLE_RESOLUTION`)."""
    per_epoch, epochs = _steps_per_epoch(run), run.info.max_epochs
    if per_epoch is None or not epochs or run.lr.width * CYCLE_RESOLUTION > per_epoch:
        return None
    b = run.lr.buckets(include_open=True)
    lo, hi = b["min"], b["max"]
    if len(hi) == 0:
        return None
    peak = float(np.max(hi))
    if not (math.isfinite(peak) and peak > 0):
        return None
    low, high = lo < CYCLE_LOW * peak, hi > CYCLE_HIGH * peak
    one = low != high  # a bucket that holds both is ambiguous: left out
    state, x = high[one], b["x1"][one]
    returns = x[1:][state[1:] & ~state[:-1]]  # low -> high
    if len(returns) < CYCLE_RETURNS:
        return None
    gap = float(np.median(np.diff(returns)))
    if not (gap * CYCLES_PER_EPOCH <= per_epoch and gap <= CYCLE_EPOCHS_FACTOR * epochs):
        return None
    return gap, len(returns), per_epoch


def _compounding(run: RunState) -> tuple[float, int, int] | None:
    """(factor, first epoch, last epoch) where the rate is one value through each epoch and each
    epoch's is the previous one's times one factor below 1, from its peak on, over at least
    `COMPOUNDING_EPOCHS` epochs: a schedule that multiplies the rate it is handed. The rate is
    logged on sampled steps, so an epoch without a sample counts by the factor's power. None
    otherwise (a rate that moves within an epoch, a factor that changes)."""
    ends = sorted(run.epoch_step.items())
    b = run.lr.buckets(include_open=True)
    per_epoch: dict[int, float] = {}
    j, previous_end = 0, -math.inf
    for x0, x1, lo, hi in zip(b["x0"], b["x1"], b["min"], b["max"]):
        while j < len(ends) and ends[j][1] < x1:
            previous_end = ends[j][1]
            j += 1
        if j == len(ends) or x0 <= previous_end or not (lo == hi and math.isfinite(lo)):
            continue  # after the last epoch seen, across an epoch's end, or several rates
        if per_epoch.setdefault(ends[j][0], float(lo)) != lo:
            return None  # the rate moved within an epoch
    epochs = sorted(per_epoch)
    if not epochs:
        return None
    top = max(range(len(epochs)), key=lambda i: per_epoch[epochs[i]])
    kept = epochs[top:]
    rates = [per_epoch[e] for e in kept]
    if len(kept) < COMPOUNDING_EPOCHS + 1 or kept[-1] - kept[0] < COMPOUNDING_EPOCHS or not min(rates) > 0:
        return None
    factors = [(r1 / r0) ** (1 / (e1 - e0)) for e0, e1, r0, r1 in zip(kept, kept[1:], rates, rates[1:])]
    factor = factors[0]
    if not factor < 1 - FACTOR_TOL or any(abs(f - factor) > FACTOR_TOL * factor for f in factors):
        return None
    return factor, kept[0], kept[-1]


@register
class LRSchedule(Check):
    """The learning rate is invalid, decays to about zero long before the end, or never
    changes although a scheduler is configured.

    What it does:
        Fires when the learning rate is NaN, Inf or negative; when it has been exactly zero
        for `min_zero_steps` steps in a row before the last `end_fraction` of the run; when
        it fell below `floor` x its maximum with more than `end_fraction` of the run still to
        go and has stayed there for `min_low` of the run (judged live when the run's total
        steps are known, else at the end); and, at the
        end of a run of at least `min_steps` steps with a scheduler configured, when it never
        changed (a ReduceLROnPlateau does not count: it moves the rate only when its metric
        stalls, which a healthy run may never do). Warmup, cosine, step decay, one-cycle and a constant rate without a
        scheduler are all fine. A warm-up that cannot end (key `warmup-unfinished`): from the
        first epoch's end, a rate that has risen through the whole run and is under 0.1 x the
        rate the optimizer is configured with (Lightning: the groups' `initial_lr`; Keras: the
        schedule's target), whose pace (read linearly and geometrically, the sooner taken) reaches
        that rate only after the run's planned steps (a warm-up is conventionally a few percent
        of training: Goyal et al. 2017's 5 of 90 epochs, BERT's 1%); a run of unknown length is
        judged at its end. A rate that falls below `CYCLE_LOW` (0.1) x its peak and comes
        back above half of it again and again, at least 3 times and at least twice an epoch, in
        cycles no longer in steps than twice the run's epochs (a cosine's full cycle is 2 x T_max;
        key `cycles`, judged while the rate's record is at least 8 times finer than an epoch, with
        the run's epochs known), is told once: a cosine or restart schedule whose period is
        counted in epochs, stepped every batch (the shortest published cycles are one epoch:
        SGDR's T_0, Smith's cyclical rates' half-cycle of 2-10 epochs). A rate that fell that
        low within the first epoch (the steps
        per epoch known from the run's total steps and epochs) gets a hint that names the usual
        cause: a schedule whose length is counted in epochs, stepped every batch; one multiplied
        by the same factor at every epoch gets a hint that names a compounding schedule (Keras
        `LearningRateScheduler(lambda epoch, lr: lr * 0.5)`, which multiplies the rate it is
        handed). Where the run's only schedule is a ReduceLROnPlateau (`RunInfo.plateau_scheduler`:
        Lightning's scheduler config, a Keras `ReduceLROnPlateau` callback), a rate it cut to ~0
        early is an INFO: it cuts only after its metric stopped improving, so the run had
        converged by that metric and the steps left only cost time. A ReduceLROnPlateau whose
        given mode reads its metric the wrong way round (`mode="min"` on an accuracy,
        `mode="max"` on a loss: `RunInfo.plateau_monitors`) is a WARNING at the first step (key
        `plateau-mode`): every epoch the metric improves counts as a stall, so the rate is cut
        after each `patience` epochs however well the run goes. A rate a log holds once an epoch
        (`mlcheck analyze` of a Keras `CSVLogger`, a wandb run, an `lr` column) may be the one set
        for the epoch after it (logged after `scheduler.step()`): its fall is counted from one
        epoch later, so a cosine or linear schedule whose last logged rate is 0 is its designed
        end, while one at 0 from half the run is still told. A first rate, set by a scheduler
        callback, 100x or more the plain rate the optimizer was built with (`RunInfo.built_lr`:
        Keras, a `LearningRateScheduler` beside the callback) is a WARNING (key `set-far-above`):
        a value on another scale, as a decay factor (1.0 at the first epoch) returned where the
        scheduler expects the rate itself (100x: past the widest rise published schedules make
        from their first rate, OneCycleLR's 25x and Goyal et al. 2017's 32x warm-up).

    Why it matters:
        Steps taken at a zero learning rate are wasted; a negative one trains the model
        backwards. A scheduler that never changes the rate usually is not being stepped
        (or steps per epoch when it was meant per batch, or the reverse).

    How to fix:
        Check the scheduler's length (total steps or T_max) against the real number of
        steps, that `scheduler.step()` is called (Lightning: `interval` and `frequency` in
        `configure_optimizers`), and the values given to it.

    Example:
        epochs = 30
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = LinearLR(optimizer, start_factor=1.0, end_factor=0.0,
                             total_iters=epochs)  # counted in epochs...
        for epoch in range(epochs):
            for x, y in train_loader:
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                scheduler.step()  # ...but stepped per batch: lr 0 from step 30

    Use instead:
        epochs = 30
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = LinearLR(optimizer, start_factor=1.0, end_factor=0.0,
                             total_iters=epochs * len(train_loader))  # in batches
        for epoch in range(epochs):
            for x, y in train_loader:
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                scheduler.step()

    Args:
        floor: "about zero" is below this fraction of the largest rate seen. Default 1e-3.
        end_fraction: decaying to about zero within this last share of the run is normal.
            Default 0.1 (cosine and linear schedules reach 1e-3 of their peak in the last 2%).
        min_low: the rate must have stayed about zero for this share of the run before it
            counts. Default 0.05: warm restarts touch zero for about 2% of each cycle.
        min_zero_steps: consecutive steps at exactly zero that count. Default 10, so a warmup
            that starts at 0 is fine.
        min_steps: least steps before "never changed" is judged. Default 100.
    """

    id = "lr-schedule"
    family = "learning rate"
    severity = Severity.WARNING

    def __init__(
        self,
        floor: float = 1e-3,
        end_fraction: float = 0.1,
        min_low: float = 0.05,
        min_zero_steps: int = 10,
        min_steps: int = 100,
    ) -> None:
        self.floor = floor
        self.min_low = min_low
        self.end_fraction = end_fraction
        self.min_zero_steps = min_zero_steps
        self.min_steps = min_steps
        super().__init__()

    def reset(self) -> None:
        self._done: set[str] = set()
        self._throttle = Throttle(min_gap=4)

    def on_step(self, run: RunState) -> Iterable[Finding]:
        if "plateau-mode" not in self._done and run.info.plateau_monitors:
            reversed_mode = self._reversed_plateau_mode(run)
            if reversed_mode:
                return reversed_mode
        if "set-far-above" not in self._done and run.info.built_lr:
            set_high = self._set_far_above(run)
            if set_high:
                return set_high
        lr = run.lr
        if not (lr.nonfinite and "invalid" not in self._done) and not self._throttle.due(lr.total):
            return ()
        if not lr.nonfinite and not lr.varied and (lr.first_value or 0.0) > 0:
            # one positive rate throughout (no scheduler, the usual case): going negative, to
            # zero or decaying all need it to move, and "constant" is judged at the end only
            return ()
        return self._judge(run, final=False)

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        # step checks run every few steps; an epoch shorter than that still gets the mode judged
        if "plateau-mode" not in self._done and run.info.plateau_monitors:
            return self._reversed_plateau_mode(run)
        if "set-far-above" not in self._done and run.info.built_lr:
            return self._set_far_above(run)
        return ()

    def on_end(self, run: RunState) -> Iterable[Finding]:
        early = self._set_far_above(run) if "set-far-above" not in self._done and run.info.built_lr else []
        return early + self._judge(run, final=True)

    def _emit(
        self, key: str, message: str, evidence: dict, hint: str, run: RunState, step: int | None = None
    ) -> list[Finding]:
        if key in self._done:
            return []
        self._done.add(key)
        step = run.step if step is None else step
        return [self.finding(message, evidence=evidence, hint=hint, step=step, epoch=run.epoch, key=key)]

    def _set_far_above(self, run: RunState) -> list[Finding]:
        """Once, at the first step: the first rate trained at is `RATE_SET_HIGH` or more times the
        plain rate the optimizer was built with (`RunInfo.built_lr`), set by a scheduler callback:
        a factor returned as the rate (Keras' `LearningRateScheduler` uses its function's value as
        the rate itself)."""
        built, first = run.info.built_lr, run.lr.first_value
        if first is None:
            return []  # no rate recorded yet
        if not (built and built > 0 and math.isfinite(first)) or first < RATE_SET_HIGH * built:
            self._done.add("set-far-above")  # judged on the first rate only: later ones may rise from it
            return []
        return self._emit(
            "set-far-above",
            f"The learning rate was set to {first:.3g} from the first step on, {first / built:,.0f}x the {built:.3g} "
            "the optimizer was built with: the scheduler callback's function returns a value on another scale, "
            "as a decay factor (1.0 at the first epoch) returned where Keras' LearningRateScheduler expects the "
            "rate itself.",
            {"lr": sig(first), "built_lr": sig(built), "ratio": sig(first / built), "bound": RATE_SET_HIGH},
            "Return the rate from the scheduler's function, not a factor of it: `LearningRateScheduler(lambda "
            "epoch: 1e-3 * 0.8 ** epoch)`, or `lambda epoch, lr: lr * 0.8` to scale the rate it is handed (that "
            "compounds every epoch).",
            run,
        )

    def _reversed_plateau_mode(self, run: RunState) -> list[Finding]:
        """Once: a ReduceLROnPlateau whose given mode counts the wrong direction of its metric as
        improvement (`mode="min"` on an accuracy, `mode="max"` on a loss; the metric's direction
        read from its name, as `mlcheck.register_metric` or `higher_is_better=` set it). Every
        epoch the metric improves then counts as a stall, so the rate is cut after each
        `patience` epochs however well the run goes. Exact: no noise to allow for."""
        self._done.add("plateau-mode")
        for metric, mode in run.info.plateau_monitors or ():
            if not reversed_mode(metric, mode, run.info.higher_is_better):
                continue
            higher = higher_is_better(metric, run.info.higher_is_better)
            better, wanted = ("higher", "max") if higher else ("lower", "min")
            counted = "fall" if mode == "min" else "rise"
            return [
                self.finding(
                    f"The ReduceLROnPlateau watching {metric!r} has mode={mode!r}, so it counts a {counted} as "
                    f"improvement, but {metric} is better {better}: each epoch the run improves counts as a stall, "
                    "and the learning rate is cut after every `patience` epochs however well the run goes.",
                    evidence={"monitor": metric, "mode": mode, "higher_is_better": higher},
                    hint=f"Pass mode={wanted!r} for {metric} (or leave mode to the framework: Keras' 'auto' reads "
                    "the metric's direction), or watch the validation loss with mode='min'.",
                    step=run.step,
                    epoch=run.epoch,
                    key="plateau-mode",
                )
            ]
        return []

    def _emit_plateau_decay(self, message: str, evidence: dict, run: RunState) -> list[Finding]:
        """INFO: a ReduceLROnPlateau (the run's only schedule) cut the rate to ~0: it does so only
        after its metric stopped improving again and again, so the rate is no mistake of the
        schedule's length; the steps left barely train."""
        if "decayed" in self._done:
            return []
        self._done.add("decayed")
        return [
            self.finding(
                f"{message}, cut there by a ReduceLROnPlateau each time its metric stopped improving: "
                "the steps left barely move the weights.",
                evidence={**evidence, "plateau_scheduler": True},
                hint="Nothing to fix if the metric had converged. To save the time, stop there (EarlyStopping "
                "on the same metric) or keep a usable rate (ReduceLROnPlateau's min_lr); a patience of only "
                "a few epochs can also cut the rate while the metric is still improving through its noise.",
                severity=Severity.INFO,
                step=run.step,
                epoch=run.epoch,
                key="decayed",
            )
        ]

    def _cycles_finding(self, run: RunState) -> list[Finding]:
        """Once: the rate swings between ~0 and its peak several times an epoch (`_cycles`); not
        after the rate was told invalid, negative or stuck at 0."""
        if self._done & {"cycles", "zero", "negative", "invalid"}:
            return []
        cycles = _cycles(run)
        if cycles is None:
            return []
        gap, returns, per_epoch = cycles
        return self._emit(
            "cycles",
            f"The learning rate fell to ~0 and came back to its peak {returns} times by step {run.step}, a full "
            f"cycle every ~{gap:.0f} steps: {per_epoch / gap:.1f} cycles an epoch of {per_epoch} optimizer steps, "
            "where schedules with restarts or cycles are designed for one cycle per epoch or longer.",
            {"cycle_steps": sig(gap), "returns": returns, "steps_per_epoch": per_epoch},
            "A schedule whose period is counted in epochs (CosineAnnealingLR's T_max, CosineAnnealingWarmRestarts' "
            "T_0, CyclicLR's step_size_up) restarts every few batches when it is stepped every batch "
            '(Lightning\'s "interval": "step", scheduler.step() in the batch loop; Keras\' CosineDecayRestarts counts '
            f"optimizer steps). Step it once per epoch, or give its period in optimizer steps (epochs x {per_epoch}).",
            run,
        )

    def _warmup_finding(self, run: RunState, c: Curve, final: bool) -> list[Finding]:
        """Once: a warm-up whose pace cannot reach the configured rate within the run
        (`_unfinished_warmup`); not after the rate was told invalid, negative or stuck at 0."""
        if self._done & {"warmup-unfinished", "zero", "negative", "invalid"}:
            return []
        found = _unfinished_warmup(run, c, final)
        if found is None:
            return []
        total, per_epoch = found["total_steps"], found["steps_per_epoch"]
        plan = (
            f"reaches it around step {found['reaches_base_at_step']:,} of a {total:,}-step run"
            if total
            else "had not reached it when the run ended"
        )
        epoch = f" ({per_epoch} steps an epoch)" if per_epoch else ""
        hint = (
            "A warm-up is a few percent of training (Goyal et al. 2017: 5 of 90 epochs; BERT: 1%; Hugging Face's "
            "examples up to 10%): size it from this run's steps (warmup_steps = 0.05 x "
            "trainer.estimated_stepping_batches, or epochs x len(train_loader) x 0.05; Keras: CosineDecay's "
            "warmup_steps against steps_per_epoch x epochs). A warm-up written for a larger data set, batch count "
            "or run is the usual cause."
        )
        if _stepped_per_epoch(run, per_epoch):
            hint = (
                "The rate is still climbing and changes only once an epoch: a warm-up counted in optimizer steps "
                "but stepped once per epoch takes that many epochs. In Lightning return `{'scheduler': s, "
                "'interval': 'step'}` as `lr_scheduler` (the default interval is 'epoch'); in a loop of your own, "
                "call scheduler.step() after every optimizer step. " + hint
            )
        return self._emit(
            "warmup-unfinished",
            f"The learning rate has risen through the whole run to step {run.step}{epoch} and is {found['lr']:.3g}, "
            f"{found['share_of_base']:.1%} of the {found['base_lr']:.3g} the optimizer is configured with: a warm-up "
            f"that at its pace {plan}, so the run trains at a fraction of its rate throughout.",
            found,
            hint,
            run,
        )

    @staticmethod
    def _decayed_hint(run: RunState, low_from_step: float) -> str:
        """How to fix a rate that decayed to ~0 early; within the first epoch, the usual cause:
        a schedule whose length is counted in epochs, stepped every batch."""
        total, epochs = run.info.total_steps, run.info.max_epochs
        per_epoch = total // epochs if total and epochs else 0
        if per_epoch > 1 and low_from_step < per_epoch:
            return (
                f"The rate fell that low within the first epoch ({per_epoch} optimizer steps): a schedule "
                "whose length is counted in epochs (StepLR's step_size, T_max) runs out that many times too "
                'early when it is stepped every batch (Lightning\'s "interval": "step", scheduler.step() '
                "in the batch loop; Keras' decay_steps count optimizer steps). Step it once per epoch, or "
                f"give its length in optimizer steps (epochs x {per_epoch})."
            )
        compounding = _compounding(run)
        if compounding is not None:
            factor, first, last = compounding
            return (
                f"The rate was multiplied by {factor:.3g} every epoch (epochs {first} to {last}): a per-epoch "
                "factor compounds. A Keras `LearningRateScheduler(lambda epoch, lr: lr * 0.5)` multiplies the "
                "rate it is handed, so it halves every epoch, not once; torch's StepLR(step_size=1) and "
                "ExponentialLR multiply by gamma every epoch. Compute the rate from the epoch (`lambda epoch: "
                "1e-3 * 0.5 ** (epoch // 10)`), or use a factor nearer 1."
            )
        return (
            "Make the schedule span the whole run (T_max / num_training_steps = the real number of "
            "optimizer steps), or raise its minimum."
        )

    def _judge(self, run: RunState, final: bool) -> list[Finding]:
        lr = run.lr
        out: list[Finding] = []
        if lr.nonfinite and "invalid" not in self._done:
            out += self._emit(
                "invalid",
                f"The learning rate became NaN or Inf at step {lr.first_nonfinite_x:g}.",
                {"first_step": lr.first_nonfinite_x, "nonfinite_values": lr.nonfinite},
                "Check the scheduler's formula and its inputs (a division by a zero length?).",
                run,
            )
        c = Curve.of(lr, final=final)
        if c is None:
            return out
        b = lr.buckets(include_open=final)
        negative = np.flatnonzero(b["min"] < 0)
        if len(negative) and "negative" not in self._done:
            # named where it began (the first bucket holding a negative value), not at this
            # judgement, which may come up to a judging interval later
            i = int(negative[0])
            first, by = int(b["x0"][i]), int(b["x1"][i])
            where = f"at step {first}" if first == by else f"at step {first} (by step {by})"
            b_min = float(np.min(b["min"]))
            out += self._emit(
                "negative",
                f"The learning rate went negative ({b_min:.3g}) {where}: the model trains backwards.",
                {"min_lr": b_min, "first_step": first, "by_step": by},
                "Check the scheduler: a linear decay that runs past its end goes below zero.",
                run,
                step=first,
            )
        total = run.info.total_steps
        x_end = float(c.x[-1])
        remaining_known = total is not None and x_end < (1.0 - self.end_fraction) * total
        # a rate a log holds once an epoch may be the one set for the epoch after it (logged after
        # `scheduler.step()`): its fall is counted from one such interval later, so the last
        # logged rate of a schedule that ends at 0 with the run is its designed end
        lag = run.info.lr_logged_every or 0
        # exactly zero for a while
        zero = c.max == 0
        if zero[-1]:
            run_len = int(np.argmin(zero[::-1])) if not zero.all() else len(zero)
            zero_steps = int(c.n[len(zero) - run_len :].sum()) - lag
            if zero_steps >= self.min_zero_steps and (total is None or remaining_known):
                out += self._emit(
                    "zero",
                    f"The learning rate has been exactly 0 for the last {zero_steps} steps.",
                    {"zero_steps": zero_steps, "max_lr": sig(float(c.max.max())), "total_steps": total},
                    "Check the scheduler's total steps against the real run length and the "
                    "learning rate you pass to the optimizer.",
                    run,
                )
        # decayed to about zero long before the end
        peak = float(c.max.max())
        # a rate that went below zero is that finding, not one of decay
        if peak > 0 and not self._done & {"decayed", "zero", "negative"}:
            i_peak = int(np.argmax(c.max))
            low = c.max[i_peak:] < self.floor * peak
            if low[-1]:
                first = i_peak + len(low) - (int(np.argmin(low[::-1])) if not low.all() else len(low))
                x_low = float(c.x[first]) - c.width + 1 + lag
                start = float(c.x[0]) - c.width + 1
                end = float(total) if total else x_end + 1
                wasted = (end - x_low) / max(end - start, 1.0)
                low_for = (x_end + 1 - x_low) / max(end - start, 1.0)
                # live only with a known end; and low for a while: warm restarts come back up
                judged = final or (total is not None and remaining_known)
                if judged and wasted > self.end_fraction and low_for >= self.min_low:
                    evidence = {
                        "lr": sig(float(c.mean[-1])),
                        "peak_lr": sig(peak),
                        "low_from_step": x_low - lag,
                        "share_of_run_left": sig(wasted),
                        "total_steps": total,
                        # the share left counted from one logging interval later
                        **({"lr_logged_every": lag} if lag else {}),
                    }
                    message = (
                        f"The learning rate decayed to {c.mean[-1]:.3g}, under {self.floor:g}x its "
                        f"peak of {peak:.3g}, at step {x_low - lag:g} with {wasted:.0%} of the run still to go"
                    )
                    if run.info.plateau_scheduler:
                        # cut by a ReduceLROnPlateau each time its metric stalled: the run converged
                        # by that metric, and the steps left only cost time
                        out += self._emit_plateau_decay(message, evidence, run)
                    else:
                        out += self._emit("decayed", message + ".", evidence, self._decayed_hint(run, x_low - lag), run)
        out += self._cycles_finding(run)
        out += self._warmup_finding(run, c, final)
        # a scheduler that never moves
        # (not where another parameter group's rate moved: the curve is the highest group's)
        if final and run.info.has_scheduler and not run.info.group_rates_moved and c.values >= self.min_steps:
            b = lr.buckets(include_open=True)
            lo, hi = float(np.min(b["min"])), float(np.max(b["max"]))
            if hi > 0 and hi - lo <= 1e-9 * hi:
                out += self._emit(
                    "constant",
                    f"A learning-rate scheduler is configured but the rate stayed at {hi:.3g} for "
                    f"all {c.values} steps.",
                    {"lr": sig(hi), "steps": c.values},
                    "Check that scheduler.step() is called (Lightning: `interval`/`frequency` in "
                    "configure_optimizers). A ReduceLROnPlateau that never triggered, or milestones "
                    "beyond this run, are fine: suppress lr-schedule then.",
                    run,
                )
        return out
