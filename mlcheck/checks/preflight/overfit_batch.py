"""`overfit-batch`: can the model memorise one small batch? Its runs on real inputs also serve
`input-independence` (`OverfitBatch.runs`, shared through `ctx.memo`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.preflight.harness import (
    SMALL_BATCH,
    FitRun,
    fit_batch,
    health_at_init,
    inconclusive,
    kept_random_state,
    loss_family,
    skipped,
    small_batch,
)
from mlcheck.findings import Finding, Severity
from mlcheck.task import soft_target_entropy
from mlcheck.trainable import LossConfig

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext

#: a try whose loss stays within this fraction of its start either way barely moved
BARELY_MOVED = 0.05
#: a loss more than this fraction above an earlier checkpoint went up: the eval-mode loss of
#: one fixed batch has no sampling noise, and a rate that is merely small only lowers it
WENT_UP = 0.01
#: how much lower each retry of a rate that sent the loss up goes: 1/10, then 1/100 of it
RETRY_FACTOR = 10.0
#: the fewest steps a retry is given where the train-start checks' time net (`StepTimeNet`)
#: would cut a full one: four evaluations at the default `every`, so `still_falling` compares its
#: last quarter with the rest; where fewer fit, the net cuts the retry (INFO "inconclusive")
RETRY_LEAST_STEPS = 40
#: weight decay above this is tried away when no rate fits the batch: 0.01 is AdamW's default
#: and the top of the usual L2 range for SGD and Adam (1e-5 to 5e-4); a healthy model fits 16
#: samples at any of these, so only a failing run pays for the extra try
WEIGHT_DECAY_TRIED = 0.01
#: label_smoothing above this is a slip (0.9 typed for 0.1): more than half of every target is
#: then the uniform distribution. Usual values are 0.05-0.2 (Szegedy et al. 2016 used 0.1;
#: Mueller et al. 2019, "When does label smoothing help?", 0.05-0.1)
MAX_LABEL_SMOOTHING = 0.5


@dataclass(frozen=True)
class Smoothing:
    """The targets of a loss with `label_smoothing` s over C classes (C = 2 per unit for a
    binary loss): the true class gets 1 - s + s/C, each other class s/C, and the least loss any
    prediction can reach is their entropy, `floor`."""

    value: float
    classes: int
    true_share: float
    other_share: float
    floor: float


def smoothing(cfg: LossConfig) -> Smoothing | None:
    """The smoothed targets of the loss `cfg` describes; None without label smoothing, or where
    the number of classes is unknown."""
    s = cfg.label_smoothing
    if not s or not 0 < s <= 1:
        return None
    family = loss_family(cfg)
    if family == "multiclass" and cfg.output_units is not None and cfg.output_units >= 2:
        c = cfg.output_units
    elif family == "binary":
        c = 2
    else:
        return None
    p, q = 1 - s + s / c, s / c
    floor = -(p * math.log(p) + (c - 1) * q * math.log(q))
    return Smoothing(value=s, classes=c, true_share=p, other_share=q, floor=floor)


def _rows(n: int) -> str:
    return f"{n} sample" if n == 1 else f"{n} samples"


def _rose(run: FitRun) -> bool:
    """The loss went above its start (by more than `WENT_UP`) at some checkpoint, or to NaN: a
    rate too high does that, one too low does not (SGD at 15 on digits in Lightning: 2.30 ->
    2.39 -> 2.35)."""
    return run.nonfinite or any(v > run.initial + WENT_UP * abs(run.initial) for _, v in run.losses)


@register
class OverfitBatch(Check):
    """The model cannot drive the loss near zero on one small batch.

    What it does:
        Trains a copy of the model, with its own optimizer and learning rate, on the first
        `batch_size` samples of the training data for up to `steps` steps (stopping as soon as it
        succeeds). It succeeds when the loss falls below `rel_tol` of its starting value (or below
        `abs_tol`), or, for classification, when every sample of the batch is classified right and
        the loss has at least halved. A learning rate is not a wiring bug, so when the configured
        rate has not succeeded after a third of the steps, a fresh copy tries again at 10x that rate
        for the full `steps` (when 10x stalls short of success too, the configured rate tries again
        for the full `steps`, where the time left allows; at 1/10 when the loss blew up, rose or
        jumped; and when 1/10 stalls short of success too, a third copy at 1/100 for the full
        `steps`). It fires when every try stalls short of success; when the loss is still falling at
        the end the result is only "inconclusive" (INFO), and so it is when the batch's loss at the
        starting weights differed between two evaluations (key "random-loss": a training step that
        draws augmented views, pairs or noise of its own, as contrastive learning does, has no
        near-zero loss on one batch to reach). When the configured rate sent the loss up (or to NaN)
        and 1/10 or 1/100 of it fits the batch, it warns that the rate is too high (key
        "lr-too-high"); when none fits but the configured rate sent the loss up, the hint names a
        rate far too high before a wiring bug. When none fits and the optimizer's weight decay is
        above 0.01, one more copy tries the configured rate without weight decay; when that one
        fits, the finding names the weight decay (key "weight-decay"). A model with no trainable
        weight at all is said at once, without training (key "nothing-trainable": a Keras
        `model.trainable = False` meant for the backbone). Where it cannot fit and weight matrices
        are frozen (torch `requires_grad=False`) while other parameters train, the hint names them
        first (evidence `frozen_weights`: a filter such as `if "weight" in name` freezes every
        layer's weights, not one layer's). With label smoothing (`label_smoothing=` of a Keras
        cross-entropy or of a torch `nn.CrossEntropyLoss` the model holds), success is judged above
        the least loss the smoothed targets allow (their entropy); a `label_smoothing` above
        `MAX_LABEL_SMOOTHING` (0.5; usual values are 0.05-0.2) is a WARNING of its own (key
        "label-smoothing"): its floor sits next to the chance level ln(C). A loss that matches none
        of the common losses of the outputs and labels may have a floor of its own far above 0 (a
        cross-entropy on a teacher's softened outputs sits at their entropy; a penalty added in the
        step stays): for such a loss, where the outputs classify the batch's integer labels, the try
        also succeeds when the labels' cross-entropy under the outputs meets the same goal (the
        model fits the labels, whatever the loss's floor). A binary cross-entropy on targets between
        0 and 1 (pixel values, soft labels) is judged above the batch's own target entropy, its
        least value, as label smoothing is (the message names it); so is an autoencoder's fed its
        inputs alone (`x` or `(x,)`), whose targets are the inputs. On such a batch a loss that is
        none of the common ones of the outputs against the inputs (a VAE's KL term, a likelihood)
        has an unknown least value: a try that stalls is an INFO (key "unknown-floor"), not ERROR.

    Why it matters:
        Any network with enough capacity can memorise 16 samples. If it cannot, something is
        wired wrong (a detached layer, a loss on the wrong tensors, inputs that never reach the
        output, a frozen model) and a full training run will waste its compute (Karpathy, "A
        Recipe for Training Neural Networks": overfit one batch; TheDeepChecker).

    How to fix:
        Look for `.detach()`/`torch.no_grad()` in forward, outputs and targets mixed up in the
        loss, parameters left out of the optimizer, or an activation that squashes the output
        (softmax before a loss that applies it again). Then try a larger learning rate.

    Args:
        batch_size: samples to overfit. Default 16 (TheDeepChecker).
        steps: most optimizer steps of the second and third tries (the first gets a third of
            them; each stops as soon as it succeeds).
            Default None: the pre-flight budget's steps (`Budget.steps`, 100 unless
            `--budget-steps`, `Budget(steps=...)` or a callback's `overfit_steps` says
            otherwise). Adam at 1e-2 or SGD+momentum at 0.1 memorise 16 digits with a small MLP
            in under 60 steps (see the tests). In the callbacks, unless `overfit_steps` is given,
            the train-start checks together take at most the time of 100 of their own training
            steps (never less than 5 s): a retry is shortened to the time left, never below 40
            steps (`RETRY_LEAST_STEPS`); where fewer fit, the retry is cut and the result is an
            INFO "inconclusive".
        rel_tol: success when the loss is below this fraction of the initial loss. Default 0.05:
            "near zero" relative to the start, which a memorised batch reaches easily.
        abs_tol: success when the loss is below this. Default 1e-3.
        every: steps between evaluations of the loss. Default 10.

    Example:
        # prices run into the thousands, but a sigmoid output stops at 1
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
        loss = nn.MSELoss()(model(x), price)

    Use instead:
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
        loss = nn.MSELoss()(model(x), price / price_scale)  # or no scaling: any range fits
    """

    id = "overfit-batch"
    family = "pre-flight"
    severity = Severity.ERROR
    #: the callbacks also run it at train start, on a copy of the model and the first batch
    consumes = frozenset({Signal.TRAIN_START})
    #: root causes that, when found first, explain this check's findings (they then say so)
    explained_by = frozenset(
        {"nonfinite-input", "output-loss-mismatch", "unused-parameters", "unnormalized-input", "loss-at-init:summed"}
    )

    def __init__(
        self,
        batch_size: int = SMALL_BATCH,
        steps: int | None = None,
        rel_tol: float = 0.05,
        abs_tol: float = 1e-3,
        every: int = 10,
    ):
        self.batch_size, self.steps, self.rel_tol = batch_size, steps, rel_tol
        self.abs_tol, self.every = abs_tol, every
        super().__init__()

    def goal(self, initial: float, floor: float = 0.0) -> Callable[[float, float | None], bool]:
        """Success for a try starting at `initial`, judged above the least loss the targets allow
        (`floor`: 0, or the entropy of label-smoothed targets)."""

        def reached(loss: float, acc: float | None) -> bool:
            excess, start = loss - floor, initial - floor
            if excess <= self.abs_tol or (start > 0 and excess <= self.rel_tol * start):
                return True
            return acc is not None and acc >= 1.0 and start > 0 and excess <= 0.5 * start

        return reached

    @staticmethod
    def _floor(ctx: PreflightContext, batch: Any = None) -> float:
        """The least loss the batch's targets allow: the entropy of label-smoothed targets, or,
        for a binary cross-entropy on targets between 0 and 1 (an autoencoder on pixel values,
        soft labels), the targets' own entropy (`soft_target_entropy`), the inputs' own where the
        loss reconstructs its inputs (`LossConfig.target_is_input`: a batch of inputs alone); else 0."""
        cfg = ctx.trainable.loss_config()
        smoothed = smoothing(cfg)
        if smoothed is not None:
            return smoothed.floor
        if batch is not None and loss_family(cfg) == "binary" and not cfg.summed_over:
            inputs, targets = ctx.trainable.to_numpy(batch)
            entropy = soft_target_entropy(inputs if cfg.target_is_input and targets is None else targets)
            if entropy is not None:
                return entropy
        return 0.0

    def runs(self, ctx: PreflightContext) -> list[FitRun]:
        """The tries (one or two) at fitting one batch; shared through `ctx.memo` with
        `input-independence`. Empty when there is no training data."""
        steps = self.steps or ctx.budget.steps
        key = f"overfit-batch:{self.batch_size}:{steps}:{self.rel_tol}:{self.abs_tol}:{self.every}"

        def attempt(batch: Any, lr: float | None, steps: int, planned: int = 0) -> FitRun:
            clone = ctx.trainable.clone()
            # lr None: the configured rate, the one `get_lr` reports (torch: a scheduler's
            # `initial_lr`; Keras: a schedule's rate from the current step on), not the first rate
            # of a warm-up the optimizer holds at step 0 (a LambdaLR warm-up over 50 steps starts
            # at 1/50 of it: the try would be labelled with one rate and train at another)
            if lr is None:
                lr = ctx.trainable.get_lr()
            if lr is not None and lr > 0:
                clone.set_lr(lr)
            initial = clone.loss(batch)
            floor = self._floor(ctx, batch)
            run = fit_batch(
                clone,
                batch,
                steps,
                ctx.budget,
                self.every,
                self.goal(initial, floor),
                label_goal=self.goal,
                planned=planned,
            )
            run.repeated = initial  # the same weights and batch as `run.initial`'s evaluation
            run.floor = floor
            return run

        def slow(run: FitRun) -> bool:
            """Fell steadily (never up by more than `WENT_UP` between checkpoints) or barely
            moved: a larger rate may do. A run that blew up, rose or jumped around gets a
            smaller rate: one that went above where it began rose, though its best (the start)
            is above 95% of the start as a run that barely moved is (SGD at 30 on digits: 2.4
            -> 6-11)."""
            values = [v for _, v in run.losses]
            steady = all(b <= a + WENT_UP * abs(a) for a, b in zip(values, values[1:]))
            return not _rose(run) and (steady or run.best > (1 - BARELY_MOVED) * run.initial)

        def compute() -> list[FitRun]:
            batch = small_batch(ctx.trainable, self.batch_size)
            if batch is None:
                return []
            known_lr = ctx.trainable.get_lr()
            first_steps = steps if not known_lr else max(steps // 3, min(self.every, steps))
            first = attempt(batch, None, first_steps)
            if first.achieved or first.cut or not known_lr or known_lr <= 0:
                return [first]
            lr = known_lr * RETRY_FACTOR if slow(first) else known_lr / RETRY_FACTOR
            second = attempt(batch, lr, ctx.budget.fitted_steps(steps, RETRY_LEAST_STEPS), steps)
            stalled = not (second.achieved or second.cut or second.still_falling())
            settled = stalled and not first.still_falling()  # a try still falling already says "inconclusive"
            if lr > known_lr and first.steps < steps and settled and ctx.budget.room_for(RETRY_LEAST_STEPS):
                # 10x the rate stalled too (an adaptive optimizer at 10x can kill ReLU units: a
                # ReLU autoencoder under Adam stalls at 3e-2 and still falls at its own 3e-3 after
                # the full steps): the configured rate gets the full steps before the batch is
                # called unfittable, where the time left allows a try (the train-start phase's
                # time cap keeps the two tries' verdict)
                full = attempt(batch, None, ctx.budget.fitted_steps(steps, RETRY_LEAST_STEPS), steps)
                return [full, second]
            if lr > known_lr or not _rose(first) or second.achieved or second.cut or second.still_falling():
                return [first, second]
            # the configured rate sent the loss up and a tenth of it stalled: still too high
            # for a model that lost its units to the first steps (SGD at 30 and Adam at 10 on
            # digits stall at 1/10 and fit at 1/100 within 10-70 steps)
            retry = ctx.budget.fitted_steps(steps, RETRY_LEAST_STEPS)
            return [first, second, attempt(batch, lr / RETRY_FACTOR, retry, steps)]

        with kept_random_state(ctx.trainable):
            return ctx.memo(key, compute)

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        before = self._before_training(ctx)
        if before is not None:
            return [before]
        runs = self.runs(ctx)
        if not runs:
            return [skipped(self, "there is no training data")]
        run = runs[-1]
        # the numbers shown are the try that came closest (the 10x rate may have done worse);
        # on a tie, the last (longest) try
        shown = min((r for r in reversed(runs) if not r.nonfinite), key=lambda r: r.best, default=run)
        # the rows trained on: fewer than `batch_size` when the training batches are smaller
        n = shown.samples or self.batch_size
        first = ctx.trainable.batches("train", 1)
        evidence = _evidence(shown, runs, n, ctx.trainable.batch_keys(first[0]) if first else None)
        smoothed = smoothing(ctx.trainable.loss_config())
        if smoothed is not None and smoothed.value > MAX_LABEL_SMOOTHING:
            # the targets, not the wiring or the rate, hold the loss up: the one cause to name
            return [self._smoothing_finding(smoothed, runs, evidence)]
        if any(r.achieved for r in runs):
            return self._fits_only_slower(runs, evidence)
        if all(r.nonfinite for r in runs):
            return [
                self.finding(
                    f"Training on one batch of {_rows(n)} made the loss non-finite after {run.steps} steps.",
                    evidence=evidence,
                    hint="The learning rate is likely far too high or the loss is numerically "
                    "unstable (log of 0, softmax then log); lower the learning rate and use "
                    "from-logits losses.",
                    key="nonfinite",
                )
            ]
        if run.cut:
            return [inconclusive(self, "Overfitting one batch", evidence, ctx)]
        varies = next((r for r in runs if r.loss_varies), None)
        if varies is not None:
            return [self._random_loss(varies, evidence, n)]
        decayed = self._weight_decay_finding(ctx, runs, evidence, n)
        if decayed is not None:
            return [decayed]
        if any(r.still_falling() for r in runs):
            return [
                self.finding(
                    f"The loss on one batch of {_rows(n)} was still falling after "
                    f"{run.steps} steps, so whether the model can fit it is inconclusive.",
                    evidence=evidence,
                    hint=self._still_falling_hint(runs, ctx.knob("steps", run.steps * 4)),
                    severity=Severity.INFO,
                    key="inconclusive",
                )
            ]
        # "only went from 2.4 to 12" reads as a small fall: say that it rose
        moved = "rose" if shown.final > shown.initial else "only went"
        if self._floor_unknown(ctx):
            return [self._unknown_floor_finding(shown, moved, evidence, n)]
        tried = ""
        if len(runs) > 1:
            rates = ", ".join(f"{r.lr:.3g}" for r in runs)
            better = "better" if len(runs) == 2 else "best"
            tried = f" at the {better} learning rate, {shown.lr:.3g} (learning rates tried: {rates})"
        return [
            self.finding(
                f"The model cannot fit a single batch of {_rows(n)}: after "
                f"{shown.steps} steps the loss {moved} from {shown.initial:.4g} to {shown.final:.4g}"
                f"{tried}{_above_floor(shown.floor)}.",
                evidence=evidence,
                hint=self._frozen_weights_note(ctx, evidence) + self._cannot_fit_hint(runs, n),
            )
        ]

    def _floor_unknown(self, ctx: PreflightContext) -> bool:
        """True where the least loss the batch allows cannot be known: the batch holds no targets
        apart from its inputs (`x` alone, `(x,)`) and its loss is none the adapter can name (not
        a common loss of the outputs against the inputs, `LossConfig.target_is_input`): a VAE's
        reconstruction plus KL, a likelihood or a contrastive loss sits above 0 by its own terms."""
        cfg = ctx.trainable.loss_config()
        if cfg.loss is not None or cfg.target_is_input:
            return False
        batch = small_batch(ctx.trainable, self.batch_size)
        return batch is not None and ctx.trainable.to_numpy(batch)[1] is None

    def _unknown_floor_finding(self, shown: FitRun, moved: str, evidence: dict[str, Any], n: int) -> Finding:
        """INFO, not the ERROR: a loss whose floor is unknown may stop far above 0 on a model that
        fits the batch."""
        return self.finding(
            f"The loss on one batch of {_rows(n)} {moved} from {shown.initial:.4g} to {shown.final:.4g} in "
            f"{shown.steps} steps, but the batch holds no targets apart from its inputs and the loss is none "
            "mlcheck can name (not a binary cross-entropy or an error of the outputs against the inputs), so "
            "the least loss it can reach is unknown and whether the model can fit the batch is inconclusive.",
            evidence={**evidence, "targets": "none apart from the inputs", "loss_floor": "unknown"},
            hint="Nothing to fix if the loss has terms of its own (a VAE's KL, a likelihood, a contrastive loss). "
            "To check the wiring, run `mlcheck sanity` with an `mlcheck_target()` whose loss is the "
            "reconstruction alone (docs/sanity.md).",
            severity=Severity.INFO,
            key="unknown-floor",
        )

    @staticmethod
    def _frozen_weights_note(ctx: PreflightContext, evidence: dict[str, Any]) -> str:
        """Where weight matrices (2 or more dimensions) are frozen (`requires_grad=False`) while other parameters of the
        model train, the first suspect: a name filter such as `if "weight" in name` meant for one
        layer freezes every layer's weights, and the biases left to train cannot fit a batch.
        Only said; the finding is the same."""
        frozen = ctx.trainable.frozen_parameters() or {}
        matrices = [name for name, shape in frozen.items() if len(shape) >= 2]  # not a norm's scale
        trainable = ctx.trainable.parameters()
        if not matrices or not trainable:
            return ""
        evidence["frozen_weights"] = matrices[:20]
        shown = ", ".join(matrices[:4]) + (f" and {len(matrices) - 4} more" if len(matrices) > 4 else "")
        some = "matrix is" if len(matrices) == 1 else "matrices are"
        return (
            f"{len(matrices)} weight {some} frozen (requires_grad=False) while {len(trainable)} other parameter "
            f"tensors train: {shown}. Unless they are pre-trained and fixed on purpose, unfreeze them (a filter such "
            "as `if 'weight' in name` freezes every layer's weights, not one layer's). Otherwise: "
        )

    def _random_loss(self, run: FitRun, evidence: dict[str, Any], n: int) -> Finding:
        """INFO: the batch's loss at fixed weights is a random variable (augmented views or pairs
        drawn inside the training step, as contrastive and metric learning do), so a loss that
        does not reach near zero on one batch proves no wiring bug."""
        return self.finding(
            f"The loss of one batch of {_rows(n)} changed between two evaluations at the same weights "
            f"({run.repeated:.4g}, then {run.initial:.4g}): the training step draws random numbers "
            "(augmentation, sampled pairs or noise inside it), so whether the model can fit a batch is inconclusive.",
            evidence={**evidence, "loss_repeated": run.repeated, "loss_again": run.initial},
            hint="Nothing to fix if the step draws on purpose. To check the wiring, run `mlcheck sanity` "
            "with the randomness of the step switched off (a fixed view of each sample).",
            severity=Severity.INFO,
            key="random-loss",
        )

    def _smoothing_finding(self, smoothed: Smoothing, runs: list[FitRun], evidence: dict[str, Any]) -> Finding:
        """A `label_smoothing` far above its usual values: the loss's floor sits near the chance
        level, so the loss curves cannot show learning (the accuracy still can)."""
        c, fitted = smoothed.classes, any(r.achieved for r in runs)
        chance = math.log(c)
        fit = "the model still fits one batch down to that floor" if fitted else "no try got near that floor"
        return self.finding(
            f"The loss uses label_smoothing={smoothed.value:g}: each target gives the true class "
            f"{smoothed.true_share:.3g} and every other class {smoothed.other_share:.3g}, so the loss cannot go "
            f"below {smoothed.floor:.4g}, next to the {chance:.4g} (ln({c})) of a uniform guess ({fit}): the model "
            "is trained to stay barely more confident than a guess, and the loss curves cannot show learning.",
            evidence={
                **evidence,
                "label_smoothing": smoothed.value,
                "loss_floor": smoothed.floor,
                "true_class_target": smoothed.true_share,
                "chance_loss": chance,
            },
            hint=f"Use a small label_smoothing (0.1 is usual, 0.05-0.2); {smoothed.value:g} is likely a slip for "
            f"{1 - smoothed.value:.2g}. Values near 1 replace the labels with the uniform distribution.",
            severity=Severity.WARNING,
            key="label-smoothing",
        )

    def _before_training(self, ctx: PreflightContext) -> Finding | None:
        """What is said without training a copy: why the check cannot judge (non-finite numbers at
        init: no learning rate fixes them), or a model with no trainable weight at all (no step can
        change it, whatever the rate: a Keras `model.trainable = False` meant for its backbone)."""
        reason = health_at_init(ctx).reason()
        if reason:
            return skipped(self, reason)
        if ctx.trainable.parameters():
            return None
        return self.finding(
            "The model has no trainable weights: every parameter is frozen, so no training step can change "
            "it and the loss stays where it starts.",
            evidence={"trainable_parameters": 0},
            hint="Freeze only the part meant to stay fixed and keep the head trainable: Keras "
            "`backbone.trainable = False` (not `model.trainable = False`), then compile() again; torch "
            "`model.backbone.requires_grad_(False)`, not the whole module. To fine-tune, freeze nothing.",
            key="nothing-trainable",
        )

    def _weight_decay_finding(
        self, ctx: PreflightContext, runs: list[FitRun], evidence: dict[str, Any], n: int
    ) -> Finding | None:
        """No try fitted the batch and the optimizer decays the weights strongly: one more try at
        the configured rate with no weight decay. When that one fits, the decay is the cause
        (weight_decay=1.0 for 1e-4: the weights shrink faster than the gradient can build them)."""
        decay = ctx.trainable.get_weight_decay()
        if decay is None or not decay > WEIGHT_DECAY_TRIED or any(r.achieved for r in runs):
            return None
        steps = self.steps or ctx.budget.steps

        def without_decay() -> FitRun:
            clone = ctx.trainable.clone()
            clone.set_weight_decay(0.0)
            batch = small_batch(clone, self.batch_size)
            initial = clone.loss(batch)
            fitted = ctx.budget.fitted_steps(steps, RETRY_LEAST_STEPS)
            floor = self._floor(ctx, batch)
            goal = self.goal(initial, floor)
            run = fit_batch(clone, batch, fitted, ctx.budget, self.every, goal, label_goal=self.goal, planned=steps)
            run.floor = floor
            return run

        with kept_random_state(ctx.trainable):
            free = ctx.memo(f"overfit-batch:no-weight-decay:{self.batch_size}:{steps}", without_decay)
        if not free.achieved:
            return None
        first = runs[0]
        return self.finding(
            f"The model cannot fit a single batch of {_rows(n)} with the optimizer's weight_decay={decay:g} "
            f"(after {first.steps} steps the loss went from {first.initial:.4g} to {first.final:.4g}), but "
            f"fits it at the same learning rate without weight decay (loss {free.final:.4g} after "
            f"{free.steps} steps): the weight decay is far too strong.",
            evidence={
                **evidence,
                "weight_decay": decay,
                "final_loss_without_weight_decay": free.final,
                "steps_without_weight_decay": free.steps,
            },
            hint=f"Lower weight_decay from {decay:g}: L2 weight decay in SGD or Adam is usually 1e-5 to 5e-4, "
            "AdamW's decoupled weight_decay 0.01 to 0.1 (a value meant for AdamW is far too strong as L2 in "
            "SGD or Adam).",
            key="weight-decay",
        )

    @staticmethod
    def _went_lower(runs: list[FitRun]) -> bool:
        """The configured rate sent the loss up and every retry was at a lower rate."""
        first, later = runs[0], runs[1:]
        return bool(later) and _rose(first) and all(r.lr and first.lr and r.lr < first.lr for r in later)

    def _still_falling_hint(self, runs: list[FitRun], more_steps: str) -> str:
        """An inconclusive result's hint: after a rising loss, the rate is the suspect, not its
        smallness."""
        if self._went_lower(runs):
            return (
                f"The configured learning rate ({runs[0].lr:.3g}) sent the loss up, so it is likely too "
                f"high; at {runs[-1].lr:.3g} the loss was still falling. Give it more steps ({more_steps}) "
                "to be sure."
            )
        return (
            f"Nothing may be wrong: the learning rate may just be small. Give it more steps ({more_steps}) "
            "or raise the learning rate to be sure."
        )

    def _cannot_fit_hint(self, runs: list[FitRun], n: int) -> str:
        """A wiring bug, unless the configured rate sent the loss up, only lower ones were
        tried and the lowest raised it less: then a rate far too high is the likelier cause,
        named first. A loss that rose as far at 1/100 of the rate is not the rate's doing."""
        wiring = (
            "check for detached or frozen layers, parameters missing from the optimizer, outputs "
            "that ignore the input, "
        )
        first, last = runs[0], runs[-1]
        went_lower = self._went_lower(runs)
        if went_lower and last.final - last.initial >= first.final - first.initial:
            return (
                f"The loss rose as far at learning rate {last.lr:.3g} as at the configured {first.lr:.3g}, "
                f"so the rate is not the cause. A model that cannot memorise {_rows(n)} has a wiring bug: "
                f"{wiring}a squashing activation before the loss, or layers that behave differently in "
                "training and evaluation (BatchNorm fed batches of one sample, Dropout)."
            )
        if not went_lower:  # the loss never rose: a rate far too low is still possible
            return (
                f"A model that cannot memorise {_rows(n)} has a wiring bug: {wiring}"
                "a squashing activation before the loss, weights all initialised to one value (zeros: "
                "every unit of a layer stays the same), dropout so heavy that little signal survives "
                "training (rates above 0.5), or a learning rate far off."
            )
        risen = [f"{r.lr:.3g}" for r in runs if _rose(r)]
        where = f"{', '.join(risen[:-1])} and {risen[-1]}" if len(risen) > 1 else f"the configured {risen[0]}"
        lowest = min(r.lr for r in runs)
        return (
            f"The loss rose at learning rate {where}: a rate far too high is the likelier cause. Try "
            f"{lowest / RETRY_FACTOR:.3g} or lower (`mlcheck sanity` runs a learning-rate range test). "
            f"If a far lower rate cannot fit the batch either, look for a wiring bug: {wiring}"
            "or a squashing activation before the loss."
        )

    def _fits_only_slower(self, runs: list[FitRun], evidence: dict[str, Any]) -> list[Finding]:
        """A WARNING when the configured rate sent the loss up or to non-finite values and a
        retry at 1/10 or 1/100 of it fitted the batch: the wiring is fine, the rate is not.
        Nothing when the configured rate fitted, or only a larger one did."""
        first, last = runs[0], runs[-1]
        if len(runs) < 2 or first.achieved or not last.achieved or not _rose(first) or not (last.lr and first.lr):
            return []
        if not last.lr < first.lr:
            return []
        if first.nonfinite:
            went = "to non-finite values"
        else:
            peak = max(v for _, v in first.losses)
            went = f"up from {first.initial:.4g} to {peak:.4g}" + (
                f" (then {first.final:.4g})" if peak != first.final else ""
            )
        part = "a tenth" if len(runs) == 2 else "a hundredth"
        return [
            self.finding(
                f"One batch of {_rows(last.samples or self.batch_size)} is fitted at {part} of the learning rate "
                f"({last.lr:.3g}) but not at the configured {first.lr:.3g}, where its loss went {went} "
                f"in {first.steps} steps: the learning rate is likely too high.",
                evidence=evidence,
                hint=f"Lower the learning rate (try {last.lr:.3g}), add a warm-up, or let "
                "`mlcheck sanity` run its learning-rate range test to find one.",
                severity=Severity.WARNING,
                key="lr-too-high",
            )
        ]


def _evidence(shown: FitRun, runs: list[FitRun], n: int, batch_keys: str | None = None) -> dict[str, Any]:
    """The numbers of the try shown (the closest), each try's rate and final loss, and, for a dict
    batch, which of its keys were the inputs and the targets (`Trainable.batch_keys`)."""
    evidence: dict[str, Any] = {
        "samples": n,
        "steps": shown.steps,
        "initial_loss": shown.initial,
        "final_loss": shown.final,
        "best_loss": shown.best,
    }
    if shown.accuracy is not None:
        evidence["train_accuracy"] = shown.accuracy
    if len(runs) > 1:
        evidence["lrs_tried"] = [r.lr for r in runs]
        evidence["final_loss_per_lr"] = [r.final for r in runs]
    if batch_keys:
        evidence["batch_keys"] = batch_keys
    return evidence


def _above_floor(floor: float) -> str:
    """Where the batch's targets allow no loss below `floor` (soft targets' entropy), the message
    says that the fall was judged above it."""
    if not floor > 0:
        return ""
    return f", judged above {floor:.4g}, the least loss its targets allow (their entropy)"
