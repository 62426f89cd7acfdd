"""Pre-flight checks: can the model learn at all, before a long job starts.

Each check is written once, against the `Trainable` interface (no framework import here), so the
same code serves torch, Lightning, Keras and users' own Trainables. They train only on
`ctx.trainable.clone()`, read the original only through inference-mode calls, and restore the
random state they consume: the user's model, optimizer and random state are unchanged after.

Call one directly (the callbacks do this for overfit-a-batch at train start):

    findings = list(OverfitBatch().preflight(PreflightContext(trainable)))
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from mlcheck.checks.base import Check, register
from mlcheck.findings import Finding, Severity
from mlcheck.task import (
    ABSOLUTE_LOSSES,
    BINARY_LOSSES,
    MULTICLASS_LOSSES,
    REGRESSION_LOSSES,
    SQUARED_LOSSES,
)
from mlcheck.trainable import LossConfig, Trainable

if TYPE_CHECKING:
    from mlcheck.sanity.context import Budget, PreflightContext

#: Samples in the batch the training checks fit (TheDeepChecker overfits 16 samples).
SMALL_BATCH = 16


# -- shared helpers --------------------------------------------------------------------------


@contextlib.contextmanager
def kept_random_state(trainable: Trainable) -> Iterator[None]:
    """Restores everything random a check consumed (dropout masks, shuffling)."""
    state = trainable.rng_state()
    try:
        yield
    finally:
        trainable.set_rng_state(state)


def small_batch(trainable: Trainable, size: int = SMALL_BATCH, index: int = 0) -> Any:
    """The first `size` samples of the `index`-th training batch, in the framework's form; None
    when there is no training data."""
    batches = trainable.batches("train", index + 1)
    if len(batches) <= index:
        return None
    batch = batches[index]
    x, y = trainable.to_numpy(batch)
    if x is None or len(x) <= size:
        return batch
    return trainable.from_numpy(x[:size], None if y is None else y[:size])


def _loss_family(cfg: LossConfig) -> str | None:
    if cfg.loss in MULTICLASS_LOSSES:
        return "multiclass"
    if cfg.loss in BINARY_LOSSES:
        return "binary"
    if cfg.loss in REGRESSION_LOSSES:
        return "regression"
    return None


def _integral(values: np.ndarray) -> bool:
    if values.dtype.kind in "iub":
        return True
    return values.dtype.kind == "f" and bool(np.all(np.isfinite(values))) and bool(
        np.all(values == np.round(values))
    )


def accuracy(outputs: np.ndarray, targets: np.ndarray | None, cfg: LossConfig) -> float | None:
    """Fraction of samples classified right; None when the task is not (known) classification."""
    if targets is None or outputs.ndim == 0 or len(outputs) != len(targets):
        return None
    family = _loss_family(cfg)
    if family == "regression" or cfg.task == "regression":
        return None
    out = outputs.reshape(len(outputs), -1)
    units = out.shape[1]
    if targets.ndim >= 2 and targets.reshape(len(targets), -1).shape[1] == units and units >= 2:
        if family == "binary":  # multi-label
            threshold = 0.5 if cfg.output_activation in ("sigmoid", "softmax") else 0.0
            return float(np.mean((out > threshold) == (targets.reshape(out.shape) > 0.5)))
        return float(np.mean(out.argmax(1) == targets.reshape(out.shape).argmax(1)))
    y = targets.reshape(len(targets), -1)
    if y.shape[1] != 1 or not _integral(y):
        return None
    y = y[:, 0].astype(np.int64)
    if units >= 2 and (family == "multiclass" or (family is None and 0 <= y.min() and y.max() < units)):
        return float(np.mean(out.argmax(1) == y))
    if units == 1 and (family == "binary" or (family is None and set(np.unique(y)) <= {0, 1})):
        threshold = 0.5 if cfg.output_activation in ("sigmoid", "softmax") else 0.0
        return float(np.mean((out[:, 0] > threshold).astype(np.int64) == y))
    return None


def _inconclusive(check: Check, what: str, evidence: dict[str, Any]) -> Finding:
    return check.finding(
        f"{what} was cut short by its time limit, so the result is inconclusive.",
        evidence=evidence,
        hint="Give the check more time (Budget(seconds=...)) or a smaller model/batch; the "
        "step budget, not the clock, decides the verdict.",
        severity=Severity.INFO,
        key="inconclusive",
    )


def _skipped(check: Check, reason: str) -> Finding:
    return check.finding(
        f"Skipped: {reason}.", severity=Severity.INFO, key="skipped",
        hint="Nothing to fix; this check needs what is named above.",
    )


@dataclass
class FitRun:
    """Training a clone on one fixed batch: eval-mode loss at checkpoints.

    Attributes:
        lr: the learning rate trained at (None: the configured one, unknown).
        steps: optimizer steps taken.
        initial: eval-mode loss before training.
        losses: (step, eval-mode loss) at each checkpoint, initial one included.
        accuracy: training accuracy on the batch at the last checkpoint (None: not classification).
        achieved: the loss reached its target (see `OverfitBatch`).
        cut: the wall-clock safety net stopped it.
        nonfinite: the loss became NaN or infinite.
    """

    lr: float | None = None
    steps: int = 0
    initial: float = math.nan
    losses: list[tuple[int, float]] = field(default_factory=list)
    accuracy: float | None = None
    achieved: bool = False
    cut: bool = False
    nonfinite: bool = False

    @property
    def final(self) -> float:
        return self.losses[-1][1] if self.losses else math.nan

    @property
    def best(self) -> float:
        finite = [v for _, v in self.losses if math.isfinite(v)]
        return min(finite) if finite else math.nan


def fit_batch(
    trainable: Trainable,
    batch: Any,
    steps: int,
    budget: Budget,
    every: int = 10,
    goal: Callable[[float, float | None], bool] | None = None,
) -> FitRun:
    """Trains `trainable` (a clone!) on `batch` for up to `steps` steps, taking the eval-mode
    loss every `every` steps; stops early when `goal(loss, accuracy)` is true."""
    cfg = trainable.loss_config()
    _, targets = trainable.to_numpy(batch)
    run = FitRun(lr=trainable.get_lr())
    run.initial = trainable.loss(batch)
    run.losses.append((0, run.initial))
    run.accuracy = accuracy(trainable.forward(batch), targets, cfg)
    for step in range(1, steps + 1):
        if budget.expired():
            run.cut = True
            break
        trainable.train_step(batch)
        run.steps = step
        if step % every == 0 or step == steps:
            loss = trainable.loss(batch)
            run.losses.append((step, loss))
            if not math.isfinite(loss):
                run.nonfinite = True
                break
            run.accuracy = accuracy(trainable.forward(batch), targets, cfg)
            if goal is not None and goal(loss, run.accuracy):
                run.achieved = True
                break
    return run


# -- overfit-batch ---------------------------------------------------------------------------


@register
class OverfitBatch(Check):
    """The model cannot drive the loss near zero on one small batch.

    What it does:
        Trains a copy of the model, with its own optimizer and learning rate, on the first
        `batch_size` samples of the training data for up to `steps` steps (stopping as soon as
        it succeeds). It succeeds when the loss falls below `rel_tol` of its starting value (or
        below `abs_tol`), or, for classification, when every sample of the batch is classified
        right and the loss has at least halved. A learning rate is not a wiring bug, so when
        the configured rate has not succeeded after a third of the steps, a fresh copy tries
        again at 10x that rate for the full `steps` (at 1/10 when the loss blew up, rose or
        jumped). It fires when both tries stall short of success; when the loss is still
        falling at the end the result is only "inconclusive" (INFO).

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
        steps: most optimizer steps of the second try (the first gets a third of them).
            Default None: the pre-flight budget's steps (`Budget.steps`, 100 unless
            `--budget-steps` says otherwise). Adam at 1e-2 or SGD+momentum at 0.1 memorise 16
            digits with a small MLP in under 60 steps (see the tests).
        rel_tol: success when the loss is below this fraction of the initial loss. Default 0.05:
            "near zero" relative to the start, which a memorised batch reaches easily.
        abs_tol: success when the loss is below this. Default 1e-3.
        every: steps between evaluations of the loss. Default 10.
    """

    id = "overfit-batch"
    family = "pre-flight"
    severity = Severity.ERROR

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

    def goal(self, initial: float) -> Callable[[float, float | None], bool]:
        def reached(loss: float, acc: float | None) -> bool:
            if loss <= self.abs_tol or (initial > 0 and loss <= self.rel_tol * initial):
                return True
            return acc is not None and acc >= 1.0 and initial > 0 and loss <= 0.5 * initial

        return reached

    def runs(self, ctx: PreflightContext) -> list[FitRun]:
        """The tries (one or two) at fitting one batch; shared through `ctx.memo` with
        `input-independence`. Empty when there is no training data."""
        steps = self.steps or ctx.budget.steps
        key = f"overfit-batch:{self.batch_size}:{steps}:{self.rel_tol}:{self.abs_tol}:{self.every}"

        def attempt(batch: Any, lr: float | None, steps: int) -> FitRun:
            clone = ctx.trainable.clone()
            if lr is not None:
                clone.set_lr(lr)
            initial = clone.loss(batch)
            return fit_batch(clone, batch, steps, ctx.budget, self.every, self.goal(initial))

        def slow(run: FitRun) -> bool:
            """Fell steadily (never up by >1% between checkpoints) or barely moved: a larger
            rate may do. A run that blew up, rose or jumped around gets a smaller rate."""
            values = [v for _, v in run.losses]
            steady = all(b <= a + 0.01 * abs(a) for a, b in zip(values, values[1:]))
            return not run.nonfinite and (steady or run.best > 0.95 * run.initial)

        def compute() -> list[FitRun]:
            batch = small_batch(ctx.trainable, self.batch_size)
            if batch is None:
                return []
            known_lr = ctx.trainable.get_lr()
            first_steps = steps if not known_lr else max(steps // 3, min(self.every, steps))
            first = attempt(batch, None, first_steps)
            if first.achieved or first.cut or not known_lr or known_lr <= 0:
                return [first]
            lr = known_lr * 10 if slow(first) else known_lr / 10
            return [first, attempt(batch, lr, steps)]

        with kept_random_state(ctx.trainable):
            return ctx.memo(key, compute)

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        runs = self.runs(ctx)
        if not runs:
            return [_skipped(self, "there is no training data")]
        run = runs[-1]
        evidence: dict[str, Any] = {
            "samples": self.batch_size,
            "steps": run.steps,
            "initial_loss": run.initial,
            "final_loss": run.final,
            "best_loss": run.best,
        }
        if run.accuracy is not None:
            evidence["train_accuracy"] = run.accuracy
        if len(runs) > 1:
            evidence["lrs_tried"] = [r.lr for r in runs]
            evidence["final_loss_per_lr"] = [r.final for r in runs]
        if any(r.achieved for r in runs):
            return []
        if all(r.nonfinite for r in runs):
            return [self.finding(
                f"Training on one batch of {self.batch_size} samples made the loss non-finite "
                f"after {run.steps} steps.",
                evidence=evidence,
                hint="The learning rate is likely far too high or the loss is numerically "
                "unstable (log of 0, softmax then log); lower the learning rate and use "
                "from-logits losses.",
                key="nonfinite",
            )]
        if run.cut:
            return [_inconclusive(self, "Overfitting one batch", evidence)]
        if any(self._still_falling(r) for r in runs):
            return [self.finding(
                f"The loss on one batch of {self.batch_size} samples was still falling after "
                f"{run.steps} steps, so whether the model can fit it is inconclusive.",
                evidence=evidence,
                hint=f"Nothing may be wrong: the learning rate may just be small. Give it more "
                f"steps (--budget-steps {run.steps * 4}) or raise the learning rate to be sure.",
                severity=Severity.INFO,
                key="inconclusive",
            )]
        tried = ""
        if len(runs) > 1:
            tried = " (learning rates tried: " + ", ".join(f"{r.lr:.3g}" for r in runs) + ")"
        return [self.finding(
            f"The model cannot fit a single batch of {self.batch_size} samples: after "
            f"{run.steps} steps the loss only went from {run.initial:.4g} to {run.final:.4g}"
            f"{tried}.",
            evidence=evidence,
            hint="A model that cannot memorise 16 samples has a wiring bug: check for detached "
            "or frozen layers, parameters missing from the optimizer, outputs that ignore the "
            "input, a squashing activation before the loss, or a learning rate far off.",
        )]

    @staticmethod
    def _still_falling(run: FitRun) -> bool:
        """True when the last quarter of the run still improved the best loss by >= 10%."""
        if run.steps < 4 or len(run.losses) < 3:
            return False
        cut = run.steps * 3 // 4
        before = [v for s, v in run.losses if s <= cut and math.isfinite(v)]
        after = [v for s, v in run.losses if s > cut and math.isfinite(v)]
        if not before or not after:
            return False
        return min(after) < 0.9 * min(before)


# -- loss-at-init ----------------------------------------------------------------------------


@register
class LossAtInit(Check):
    """The loss before training is far above what an untrained model should give.

    What it does:
        Computes the loss (inference mode) on the first `batches` training batches and compares
        its mean with the loss of an uninformed prediction: -log(1/C) = log(C) for softmax
        cross-entropy over C classes, log(2) for binary cross-entropy, the mean squared target
        for mean squared error, the mean absolute target for mean absolute error. It fires when
        the mean is more than `ratio` times that, beyond `sigmas` standard errors of the
        batch-to-batch noise. Other losses are not judged.

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
    """

    id = "loss-at-init"
    family = "pre-flight"
    severity = Severity.WARNING

    def __init__(self, ratio: float = 3.0, sigmas: float = 3.0, batches: int = 4):
        self.ratio, self.sigmas, self.batches = ratio, sigmas, batches
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        with kept_random_state(t):
            batches = t.batches("train", self.batches)
            if not batches:
                return [_skipped(self, "there is no training data")]
            cfg = t.loss_config()
            expected, why = self._expected(t, cfg, batches)
            if expected is None or expected <= 0:
                return []
            losses = np.array([t.loss(b) for b in batches], dtype=np.float64)
        if not np.all(np.isfinite(losses)):
            return [self.finding(
                "The loss of the untrained model is already NaN or infinite.",
                evidence={"losses": losses.tolist(), "expected": expected},
                hint="Look for log(0) (probabilities fed to a log), division by zero or "
                "non-finite inputs.",
                severity=Severity.ERROR,
                key="nonfinite",
            )]
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
        hint = (
            "Use a mean-reduced loss, remove loss multipliers, normalise inputs and initialise "
            "the last layer small (its bias at the class prior or target mean)."
        )
        if batch and batch > 1 and abs(mean / expected / batch - 1) < 0.25:
            hint = (
                f"The loss is about batch size ({batch}) times the expected value: the loss is "
                "likely summed over the batch (reduction='sum'); use reduction='mean'."
            )
        return [self.finding(
            f"The loss before training is {mean:.4g}, {mean / expected:.1f}x the {expected:.4g} "
            f"an untrained model should give ({why}).",
            evidence=evidence,
            hint=hint,
        )]

    @staticmethod
    def _expected(t: Trainable, cfg: LossConfig, batches: list[Any]) -> tuple[float | None, str]:
        family = _loss_family(cfg)
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


# -- input-independence ----------------------------------------------------------------------


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
        loss. Batches whose targets are all equal are not judged.

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
    """

    id = "input-independence"
    family = "pre-flight"
    severity = Severity.WARNING

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

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        with kept_random_state(t):
            batch = small_batch(t, self.batch_size)
            if batch is None:
                return [_skipped(self, "there is no training data")]
            x, y = t.to_numpy(batch)
            if x is None or len(x) < 2:
                return [_skipped(self, "the inputs are not arrays of two or more samples")]
            if y is not None and np.all(y == y[:1]):
                return []  # constant targets need no input; unshuffled-data speaks to that
            flat = x.reshape(len(x), -1)
            if np.all(flat == flat[:1]):
                return []
            out = np.asarray(t.forward(batch), dtype=np.float64).reshape(len(x), -1)
            spread = float(np.max(np.abs(out - out[:1])))
            scale = float(np.max(np.abs(out))) if out.size else 0.0
            if np.all(np.isfinite(out)) and spread <= self.identical_tol * max(scale, 1e-12):
                return [self.finding(
                    f"The model gives all {len(x)} samples of a batch the same output, though "
                    "their inputs differ: the output does not depend on the input.",
                    evidence={"samples": len(x), "output_spread": spread, "output_scale": scale},
                    hint="Follow the input through forward: it may be overwritten, detached, "
                    "multiplied by zero, or the output may be built from parameters alone.",
                    key="identical",
                )]
            runs = OverfitBatch(self.batch_size, self.steps).runs(ctx)
            # compare with the best real run at its own rate: overfit-batch's later tries run
            # at 10x or 1/10 the configured rate and may fail for that reason alone
            usable = [r for r in runs if r.steps and not r.nonfinite and math.isfinite(r.final)]
            real = min(usable, key=lambda r: r.final) if usable else (runs[-1] if runs else None)
            if real is not None and real.achieved:
                return []  # fitting distinct targets needs the inputs: zeros cannot match it
            if real is None or real.cut or real.nonfinite or real.steps == 0:
                return [_inconclusive(self, "Training on real inputs", {})] if real and real.cut else []
            zeros = t.from_numpy(np.zeros_like(x), y)
            clone = t.clone()
            if real.lr is not None:
                clone.set_lr(real.lr)
            zero = fit_batch(clone, zeros, real.steps, ctx.budget, every=real_every(real))
        if zero.cut:
            return [_inconclusive(self, "Training on zeroed inputs", {})]
        real_loss, zero_loss = real.final, zero.final
        learned = zero.initial > 0 and zero.initial - zero_loss >= self.min_progress * zero.initial
        if not (math.isfinite(real_loss) and math.isfinite(zero_loss)) or not learned:
            return []
        if real_loss < (1 - self.margin) * zero_loss:
            return []
        # A slow rate keeps both runs close while they still fall: judge settled runs only.
        if OverfitBatch._still_falling(real) or OverfitBatch._still_falling(zero):
            return []
        return [self.finding(
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
        )]


def real_every(run: FitRun) -> int:
    """The checkpoint spacing of a run (so a comparison run is evaluated at the same steps)."""
    steps = [s for s, _ in run.losses]
    return max(steps[1] - steps[0], 1) if len(steps) > 1 else max(run.steps, 1)


# -- batch-dependence ------------------------------------------------------------------------


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
        (Karpathy's backprop-to-the-input test; TheDeepChecker).

    How to fix:
        Use `permute`/`transpose` rather than `view` to reorder axes, keep the batch axis
        first, and check the `dim=` of softmax, normalisation and reductions.

    Args:
        batch_size: samples in the batch. Default 16.
        tol: relative size of another sample's gradient that counts as mixing. Default 1e-6:
            exact zeros are expected, float32 rounding stays far below this.
    """

    id = "batch-dependence"
    family = "pre-flight"
    severity = Severity.WARNING

    def __init__(self, batch_size: int = SMALL_BATCH, tol: float = 1e-6):
        self.batch_size, self.tol = batch_size, tol
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        with kept_random_state(t):
            batch = small_batch(t, self.batch_size)
            if batch is None:
                return [_skipped(self, "there is no training data")]
            x, _ = t.to_numpy(batch)
            if x is None or len(x) < 2 or x.dtype.kind != "f":
                return [_skipped(self, "it needs floating-point array inputs of 2+ samples")]
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
                    return [self.finding(
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
                    )]
        return []


# -- unused-parameters -----------------------------------------------------------------------


@register
class UnusedParameters(Check):
    """Trainable parameters that get no gradient, or that no optimizer updates.

    What it does:
        Computes the loss gradient on one training batch and lists trainable parameters whose
        gradient is missing (they do not take part in the loss: a layer defined but never
        called, or cut off by `.detach()`/`no_grad`). Separately, lists trainable parameters
        that are in no optimizer parameter group (when the framework tells).

    Why it matters:
        Such parameters keep their initial values for the whole run: a layer that was meant to
        learn stays random, and its compute (or memory, for optimizer-less ones) is wasted.
        Parameters missing from the optimizer are a classic slip after adding a layer or
        building the optimizer from one sub-module.

    How to fix:
        Call the layer in forward (or delete it), remove the stray `.detach()`, and build the
        optimizer from `model.parameters()`; freeze on purpose with `requires_grad_(False)`.

    Args:
        show: parameter names quoted in the message. Default 5.
    """

    id = "unused-parameters"
    family = "pre-flight"
    severity = Severity.WARNING

    def __init__(self, show: int = 5):
        self.show = show
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        with kept_random_state(t):
            batch = small_batch(t)
            if batch is None:
                return [_skipped(self, "there is no training data")]
            grads = t.clone().gradients(batch)
            in_optimizer = t.optimizer_parameters()
        findings = []
        no_grad = [name for name, g in grads.items() if g is None]
        if no_grad:
            findings.append(self.finding(
                f"{len(no_grad)} of {len(grads)} trainable parameter tensors get no gradient "
                f"from the loss, so they never learn: {self._names(no_grad)}.",
                evidence={"parameters": no_grad, "trainable": len(grads)},
                hint="Call these layers in forward or delete them; remove .detach()/no_grad on "
                "their path; freeze deliberately frozen ones with requires_grad_(False).",
                key="no-gradient",
            ))
        if in_optimizer is not None:
            missing = [name for name in grads if name not in in_optimizer]
            if missing:
                findings.append(self.finding(
                    f"{len(missing)} trainable parameter tensors are in no optimizer parameter "
                    f"group, so they are never updated: {self._names(missing)}.",
                    evidence={"parameters": missing, "trainable": len(grads)},
                    hint="Build the optimizer from model.parameters() (or add these to a "
                    "parameter group); if they are meant to stay fixed, set "
                    "requires_grad_(False).",
                    key="not-in-optimizer",
                ))
        return findings

    def _names(self, names: list[str]) -> str:
        shown = ", ".join(names[: self.show])
        return shown + (f" and {len(names) - self.show} more" if len(names) > self.show else "")


# -- output-loss-mismatch --------------------------------------------------------------------


@register
class OutputLossMismatch(Check):
    """The model's output activation or width does not fit its loss and labels.

    What it does:
        Compares the last operation on the outputs, the output width and the labels of the first
        `batches` training batches with the loss. ERROR: a one-unit softmax (always outputs 1),
        integer labels outside [0, output units) for a multi-class loss, negative labels,
        binary-loss (sigmoid) outputs with multi-class labels. WARNING: softmax or sigmoid
        outputs fed to a loss that applies them itself (`CrossEntropyLoss`, `BCEWithLogitsLoss`,
        Keras `from_logits=True`), probabilities or raw scores fed to `NLLLoss` (it expects
        log-probabilities), unbounded outputs fed to a loss that expects probabilities.

    Why it matters:
        These combinations run without an error yet train badly or not at all: a softmax before
        `CrossEntropyLoss` squashes the gradients and stalls learning; a one-unit softmax is a
        constant; out-of-range labels crash on some devices and silently corrupt on others
        (UMLAUT, DeepDiagnosis, AUTOTRAINER all list these).

    How to fix:
        Output raw logits for from-logits losses (drop the final softmax/sigmoid), give the last
        layer as many units as classes, use sigmoid + binary loss for two classes with one unit,
        `LogSoftmax` before `NLLLoss`, and check the label encoding.

    Args:
        batches: training batches whose labels are checked. Default 4.
    """

    id = "output-loss-mismatch"
    family = "pre-flight"
    severity = Severity.ERROR

    def __init__(self, batches: int = 4):
        self.batches = batches
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        with kept_random_state(t):
            batches = t.batches("train", self.batches)
            if not batches:
                return [_skipped(self, "there is no training data")]
            cfg = t.loss_config()
            out = np.asarray(t.forward(batches[0]))
            ys = [t.to_numpy(b)[1] for b in batches]
        units = cfg.output_units or (int(out.shape[-1]) if out.ndim >= 2 else 1)
        act = cfg.output_activation
        family = _loss_family(cfg)
        loss = cfg.loss or "unknown"
        findings: list[Finding] = []
        evidence = {"loss": loss, "output_activation": act, "output_units": units}

        if act == "softmax" and units == 1:
            findings.append(self.finding(
                "The model ends in a softmax over a single unit, which always outputs 1, so "
                "nothing can be learned.",
                evidence=evidence,
                hint="For two classes use one unit with a sigmoid (or raw logits with a "
                "from-logits binary loss), or one unit per class with softmax.",
                key="one-unit-softmax",
            ))
        elif act in ("softmax", "sigmoid") and cfg.from_logits is True:
            findings.append(self.finding(
                f"The model's outputs already pass through a {act}, but the loss ({loss}) applies "
                f"{'softmax' if family == 'multiclass' else 'sigmoid'} itself, so it is applied "
                "twice and gradients shrink.",
                evidence=evidence,
                hint=f"Remove the final {act} from the model (keep it for inference only), or use "
                "a loss that takes probabilities (Keras: from_logits=False).",
                severity=Severity.WARNING,
                key="activation-twice",
            ))
        if cfg.loss == "nll" and out.size and np.all(np.isfinite(out)):
            if act == "softmax" or (out.min() >= 0 and act != "log_softmax"):
                findings.append(self.finding(
                    "NLLLoss expects log-probabilities, but the model outputs "
                    f"{'probabilities' if act == 'softmax' else 'non-negative scores'}.",
                    evidence=evidence,
                    hint="End the model in LogSoftmax (or use CrossEntropyLoss on raw logits).",
                    severity=Severity.WARNING,
                    key="nll-input",
                ))
            elif act != "log_softmax" and out.max() > 1e-6:
                findings.append(self.finding(
                    "NLLLoss expects log-probabilities, but the model outputs raw scores "
                    "(some positive), so the loss is unbounded below.",
                    evidence=evidence,
                    hint="End the model in LogSoftmax, or use CrossEntropyLoss on the raw logits.",
                    severity=Severity.WARNING,
                    key="nll-input",
                ))
        if cfg.from_logits is False and cfg.loss != "nll" and family in ("multiclass", "binary"):
            if out.size and np.all(np.isfinite(out)) and (out.min() < 0 or out.max() > 1):
                findings.append(self.finding(
                    f"The loss ({loss}) expects probabilities, but the model's outputs range "
                    f"over [{out.min():.3g}, {out.max():.3g}].",
                    evidence={**evidence, "output_min": float(out.min()),
                              "output_max": float(out.max())},
                    hint="End the model in softmax/sigmoid, or tell the loss it gets logits "
                    "(Keras from_logits=True; torch CrossEntropyLoss/BCEWithLogitsLoss).",
                    severity=Severity.WARNING,
                    key="probabilities-expected",
                ))
        findings += self._labels(cfg, family, units, act, ys, evidence)
        return findings

    def _labels(
        self,
        cfg: LossConfig,
        family: str | None,
        units: int,
        act: str | None,
        ys: list[np.ndarray | None],
        evidence: dict[str, Any],
    ) -> list[Finding]:
        if family == "regression" or cfg.task == "regression" or any(y is None for y in ys):
            return []
        y = np.concatenate([np.asarray(v).reshape(len(v), -1) for v in ys])
        if y.shape[1] != 1 or not _integral(y):
            return []  # one-hot / soft labels / multi-label targets: nothing to range-check
        y = y[:, 0]
        lo, hi = int(y.min()), int(y.max())
        ev = {**evidence, "label_min": lo, "label_max": hi}
        multiclass = family == "multiclass" or (family is None and units >= 2 and act in (
            "softmax", "log_softmax"))
        binary = family == "binary" or (family is None and units == 1 and act == "sigmoid")
        if multiclass:
            if lo < 0:
                return [self.finding(
                    f"The labels include {lo}, but class labels must lie in [0, {units}).",
                    evidence=ev,
                    hint="Encode classes as 0..C-1 (e.g. with sklearn's LabelEncoder); for "
                    "ignored positions use the loss's ignore_index.",
                    key="labels-range",
                )]
            if hi >= units:
                return [self.finding(
                    f"The labels go up to {hi}, but the model has only {units} output units, "
                    f"so labels {units}..{hi} have no output.",
                    evidence=ev,
                    hint=f"Give the last layer {hi + 1} units (one per class), or re-encode "
                    "the labels as 0..C-1.",
                    key="labels-range",
                )]
        elif binary and (lo < 0 or hi > 1):
            return [self.finding(
                f"The model has {units} sigmoid-style output unit(s) with a binary loss, but the "
                f"labels range over {lo}..{hi}: multi-class labels need one unit per class.",
                evidence=ev,
                hint=f"Use {hi + 1} output units with a multi-class loss (CrossEntropyLoss / "
                "sparse_categorical_crossentropy), or binarise the labels.",
                key="labels-range",
            )]
        return []


__all__ = [
    "BatchDependence",
    "FitRun",
    "InputIndependence",
    "LossAtInit",
    "OutputLossMismatch",
    "OverfitBatch",
    "UnusedParameters",
    "accuracy",
    "fit_batch",
    "kept_random_state",
    "small_batch",
]
