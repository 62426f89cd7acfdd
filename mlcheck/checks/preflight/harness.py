"""The pre-flight harness: what every pre-flight check shares, and no check of its own.

Pre-flight checks are written once, against the `Trainable` interface (no framework import
here), so the same code serves torch, Lightning, Keras and users' own Trainables. They train only
on `ctx.trainable.clone()`, read the original only through inference-mode calls, and restore the
random state they consume (`kept_random_state`): the user's model, optimizer and random state are
unchanged after.

Here: the loss families as adapters name them, the small batch the training checks use,
classification accuracy, training a clone on one batch (`fit_batch`, `FitRun`), and the INFO
findings a check gives when it is skipped or cut short.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.findings import Finding, Severity
from mlcheck.task import (  # noqa: F401  (the loss families, re-exported for the checks)
    ABSOLUTE_LOSSES,
    BINARY_LOSSES,
    MULTICLASS_LOSSES,
    REGRESSION_LOSSES,
    SQUARED_LOSSES,
)
from mlcheck.trainable import LossConfig, Trainable

if TYPE_CHECKING:
    from mlcheck.checks.base import Check
    from mlcheck.preflight_context import Budget, PreflightContext


#: Samples in the batch the training checks fit (TheDeepChecker overfits 16 samples).
SMALL_BATCH = 16


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
    return trainable.head(batches[index], size)


def loss_family(cfg: LossConfig) -> str | None:
    """ "multiclass", "binary" or "regression" for a loss the adapters name; None when unknown."""
    if cfg.loss in MULTICLASS_LOSSES:
        return "multiclass"
    if cfg.loss in BINARY_LOSSES:
        return "binary"
    if cfg.loss in REGRESSION_LOSSES:
        return "regression"
    return None


def integral(values: np.ndarray) -> bool:
    """True when the values are whole numbers (integer dtype, or finite floats with no fraction)."""
    if values.dtype.kind in "iub":
        return True
    return values.dtype.kind == "f" and bool(np.all(np.isfinite(values))) and bool(np.all(values == np.round(values)))


def accuracy(outputs: np.ndarray, targets: np.ndarray | None, cfg: LossConfig) -> float | None:
    """Fraction of samples classified right; None when the task is not (known) classification."""
    if targets is None or outputs.ndim == 0 or len(outputs) != len(targets):
        return None
    family = loss_family(cfg)
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
    if y.shape[1] != 1 or not integral(y):
        return None
    y = y[:, 0].astype(np.int64)
    if units >= 2 and (family == "multiclass" or (family is None and 0 <= y.min() and y.max() < units)):
        return float(np.mean(out.argmax(1) == y))
    if units == 1 and (family == "binary" or (family is None and set(np.unique(y)) <= {0, 1})):
        threshold = 0.5 if cfg.output_activation in ("sigmoid", "softmax") else 0.0
        return float(np.mean((out[:, 0] > threshold).astype(np.int64) == y))
    return None


def label_loss(outputs: np.ndarray, targets: np.ndarray | None, cfg: LossConfig) -> float | None:
    """The cross-entropy of the batch's class labels under the outputs, for a loss of no known
    name (`loss_family` None) whose outputs classify: C >= 2 outputs and integer labels 0..C-1
    (softmax over logits, or the probabilities or log-probabilities the model gives), or one
    output and labels in {0, 1} (sigmoid over a logit, or the probability). None otherwise.

    Such a loss can have a floor far above 0 that fitting cannot pass (cross-entropy on a
    teacher's softened outputs sits at their entropy; a penalty added to it stays), so whether a
    model fits one batch is read from the labels themselves."""
    if loss_family(cfg) is not None or targets is None or outputs.ndim == 0 or len(outputs) != len(targets):
        return None
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    y = targets.reshape(len(targets), -1)
    if y.shape[1] != 1 or not integral(y) or not np.all(np.isfinite(out)):
        return None
    y = y[:, 0].astype(np.int64)
    rows = np.arange(len(y))
    units, activation = out.shape[1], cfg.output_activation
    if units >= 2 and 0 <= y.min() and y.max() < units:
        if activation == "log_softmax":
            log_p = out
        elif activation == "softmax":
            log_p = np.log(np.clip(out, 1e-12, None))
        else:
            shifted = out - out.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_p[rows, y].mean())
    if units == 1 and set(np.unique(y)) <= {0, 1}:
        with np.errstate(over="ignore"):
            p = out[:, 0] if activation in ("sigmoid", "softmax") else 1 / (1 + np.exp(-out[:, 0]))
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return None


#: Training batches `health_at_init` looks at (loss-at-init's default, so they share the work).
INIT_BATCHES = 4


@dataclass(frozen=True)
class InitHealth:
    """Whether the untrained model gives finite numbers on the first training batches.

    A model whose outputs or loss are non-finite before any step cannot train at any learning
    rate, so the checks that train (overfit-batch, the learning-rate range test) would only
    blame the symptom on the learning rate: they defer to `reason()`, and `loss-at-init` (or
    `nonfinite-input`, when the inputs are the cause) reports it once.

    Attributes:
        inputs_finite: the inputs and targets hold no NaN or Inf.
        outputs_finite: the model's outputs hold no NaN or Inf.
        losses: the inference-mode loss of each batch.
    """

    inputs_finite: bool = True
    outputs_finite: bool = True
    losses: tuple[float, ...] = ()

    @property
    def loss_finite(self) -> bool:
        return all(math.isfinite(v) for v in self.losses)

    def reason(self) -> str | None:
        """Why training cannot be judged, or None when the numbers are finite."""
        if not self.inputs_finite:
            return "the training inputs or targets hold NaN or Inf (see nonfinite-input)"
        if not self.outputs_finite:
            return "the model's outputs are NaN or infinite before any training step (see loss-at-init)"
        if not self.loss_finite:
            return "the loss is NaN or infinite before any training step (see loss-at-init)"
        return None


def health_at_init(ctx: PreflightContext) -> InitHealth:
    """`InitHealth` of `ctx.trainable`, computed once per pre-flight run (inference mode)."""

    def compute() -> InitHealth:
        t = ctx.trainable
        inputs_ok, outputs_ok, losses = True, True, []
        with kept_random_state(t):
            for batch in t.batches("train", INIT_BATCHES):
                x, y = t.to_numpy(batch)
                inputs_ok = inputs_ok and _finite(x) and _finite(y)
                outputs_ok = outputs_ok and _finite(t.forward(batch))
                losses.append(float(t.loss(batch)))
        return InitHealth(inputs_ok, outputs_ok, tuple(losses))

    return ctx.memo("health-at-init", compute)


def _finite(values: Any) -> bool:
    if values is None:
        return True
    values = np.asarray(values)
    return values.dtype.kind not in "fc" or bool(np.all(np.isfinite(values)))


def inconclusive(check: Check, what: str, evidence: dict[str, Any], ctx: PreflightContext) -> Finding:
    """The INFO finding of a check whose `what` the wall-clock safety net cut short: with the
    numbers of the cut (`Budget.cut_detail`) and the setting that lets it finish, in the words
    of the interface the user is in (`PreflightContext.interface`)."""
    budget = ctx.budget
    detail = budget.cut_detail() if budget.cut_short else ""
    if budget.cut_short:
        evidence = {**evidence, **budget.cut_evidence()}
        if budget.steps_taken:
            detail += f", {budget.steps_taken} of its {budget.steps}-step budget done"
        detail += budget.busy_detail()
    rerun = "Rerun when the machine is less busy, or give" if budget.busy else "Give"
    return check.finding(
        f"{what} was cut short by its time limit{detail}, so the result is inconclusive.",
        evidence=evidence,
        hint=f"{rerun} the check more time ({budget.more_time(ctx.interface)}) or a smaller model/batch; "
        "the step budget, not the clock, decides the verdict.",
        severity=Severity.INFO,
        key="inconclusive",
    )


def skipped(check: Check, reason: str, hint: str = "Nothing to fix; this check needs what is named above.") -> Finding:
    """The INFO finding of a check that could not run, with the `reason` (and how to run it)."""
    return check.finding(f"Skipped: {reason}.", severity=Severity.INFO, key="skipped", hint=hint)


def inputs_unfit(x: np.ndarray | None, samples: int, *, floating: bool = True) -> str | None:
    """Why a batch's inputs `x` (`Trainable.to_numpy`) cannot feed a check that perturbs one input
    array of `samples` rows or more (floating-point where `floating`), in words that name what
    the user's inputs are; None where they can. A model of several inputs (a dict of named
    inputs, a list of two arrays) has no one array: "it needs floating-point array inputs"
    read as a fault in inputs that are floating-point arrays."""
    if x is None:
        return (
            "the model's inputs are not one array (several inputs, such as a dict of named inputs, or inputs "
            "of another kind), and this check perturbs one input array"
        )
    if len(x) < samples:
        return f"it needs a batch of {samples}+ samples, and the training batch holds {len(x)}"
    if floating and x.dtype.kind != "f":
        return f"it perturbs floating-point inputs, and the inputs are {x.dtype} (ids or counts)"
    return None


#: Relative difference between two evaluations of one batch's loss at fixed weights beyond
#: which the loss is random: float32 rounding of a batch mean stays far below (~1e-7).
_REPEAT_TOL = 1e-4


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
        samples: rows of the batch trained on (None: unknown). Fewer than asked for when the
            training batches are smaller (a Keras fit with batch_size=1 hands over one row).
        repeated: the eval-mode loss of the same batch at the same weights taken a second time
            before training (NaN: not taken). It differs from `initial` where the training step
            draws random numbers of its own (augmented views, sampled pairs or noise).
        label_losses: (step, cross-entropy of the batch's labels under the outputs) at each
            checkpoint, for a loss of no known name whose outputs classify (`label_loss`); empty
            otherwise.
        planned: the steps the try was meant to take before the time budget fitted it to fewer
            (`Budget.fitted_steps`); 0: as many as it was given.
    """

    lr: float | None = None
    steps: int = 0
    initial: float = math.nan
    losses: list[tuple[int, float]] = field(default_factory=list)
    accuracy: float | None = None
    achieved: bool = False
    cut: bool = False
    nonfinite: bool = False
    samples: int | None = None
    planned: int = 0
    repeated: float = math.nan
    label_losses: list[tuple[int, float]] = field(default_factory=list)
    floor: float = 0.0  # the least loss the batch's targets allow (`OverfitBatch._floor`)
    #: reached its target only once the BatchNorm layers' moving statistics were set to the
    #: batch's own (`Trainable.refresh_batch_norm`): the eval-mode loss had lagged behind them
    refreshed_batch_norm: bool = False

    @property
    def loss_varies(self) -> bool:
        """The batch's loss at fixed weights changed between two evaluations (beyond float
        rounding, `_REPEAT_TOL`): the step's loss is a random variable, whose value on one batch
        need not reach near zero however well the model fits it."""
        both = math.isfinite(self.initial) and math.isfinite(self.repeated)
        return both and not math.isclose(self.initial, self.repeated, rel_tol=_REPEAT_TOL, abs_tol=1e-6)

    @property
    def final(self) -> float:
        return self.losses[-1][1] if self.losses else math.nan

    @property
    def best(self) -> float:
        finite = [v for _, v in self.losses if math.isfinite(v)]
        return min(finite) if finite else math.nan

    @property
    def checkpoint_every(self) -> int:
        """Steps between checkpoints (so a comparison run is evaluated at the same steps)."""
        steps = [s for s, _ in self.losses]
        return max(steps[1] - steps[0], 1) if len(steps) > 1 else max(self.steps, 1)

    def still_falling(self) -> bool:
        """True when the last quarter of the run still improved the best loss by >= 10%: the
        run had not settled, so neither success nor failure can be told from it. A try the time
        budget fitted to fewer steps than planned is judged over its last quarter of the planned
        steps: the same window a full try ends with, so a slower machine (fewer steps in the
        same time) cannot turn "still falling" into "cannot fit"."""
        if self.steps < 4 or len(self.losses) < 3:
            return False
        cut = self.steps * 3 // 4 if self.planned <= self.steps else max(0, self.steps - self.planned // 4)
        before = [v for s, v in self.losses if s <= cut and math.isfinite(v)]
        after = [v for s, v in self.losses if s > cut and math.isfinite(v)]
        if not before or not after:
            return False
        # 10%: mlcheck's own choice (no external anchor), meant as a clear gain, not noise;
        # measured above the loss's floor (0, or soft targets' entropy), as the goal is
        return min(after) - self.floor < 0.9 * (min(before) - self.floor)


def fit_batch(
    trainable: Trainable,
    batch: Any,
    steps: int,
    budget: Budget,
    every: int = 10,
    goal: Callable[[float, float | None], bool] | None = None,
    label_goal: Callable[[float], Callable[[float, float | None], bool]] | None = None,
    planned: int = 0,
) -> FitRun:
    """Trains `trainable` (a clone!) on `batch` for up to `steps` steps, taking the eval-mode
    loss every `every` steps; stops early when `goal(loss, accuracy)` is true, or, for a loss of
    no known name whose outputs classify, when `label_goal(first label loss)(label loss,
    accuracy)` is (`label_loss`: the labels' cross-entropy, where the loss may have a floor of
    its own)."""
    cfg = trainable.loss_config()
    inputs, targets = trainable.to_numpy(batch)
    rows = next((len(a) for a in (inputs, targets) if a is not None and np.ndim(a)), None)
    run = FitRun(lr=trainable.get_lr(), samples=rows, planned=planned)
    run.initial = trainable.loss(batch)
    run.losses.append((0, run.initial))
    outputs = trainable.forward(batch)
    run.accuracy = accuracy(outputs, targets, cfg)
    labels_reached = None
    if label_goal is not None:
        first = label_loss(outputs, targets, cfg)
        if first is not None:
            run.label_losses.append((0, first))
            labels_reached = label_goal(first)
    for step in range(1, steps + 1):
        if budget.expired(remaining=steps - step + 1):
            run.cut = True
            break
        started = time.perf_counter()
        trainable.train_step(batch)
        budget.took_step(time.perf_counter() - started)
        run.steps = step
        if step % every == 0 or step == steps:
            loss = trainable.loss(batch)
            run.losses.append((step, loss))
            if not math.isfinite(loss):
                run.nonfinite = True
                break
            outputs = trainable.forward(batch)
            run.accuracy = accuracy(outputs, targets, cfg)
            if goal is not None and goal(loss, run.accuracy):
                run.achieved = True
                break
            if labels_reached is not None:
                labelled = label_loss(outputs, targets, cfg)
                if labelled is not None:
                    run.label_losses.append((step, labelled))
                    if labels_reached(labelled, run.accuracy):
                        run.achieved = True
                        break
    if not (run.achieved or run.cut or run.nonfinite) and goal is not None and run.steps:
        _judge_refreshed(trainable, batch, run, goal, targets, cfg)
    return run


def _judge_refreshed(
    trainable: Trainable,
    batch: Any,
    run: FitRun,
    goal: Callable[[float, float | None], bool],
    targets: Any,
    cfg: Any,
) -> None:
    """A try that missed its target, judged again with the BatchNorm layers' moving statistics
    set to the batch's own (`Trainable.refresh_batch_norm`; Keras only). The eval-mode loss reads
    those statistics, which a slow moving average (Keras' momentum 0.99: 37% of the initial
    (0, 1) left after 100 steps) has not brought to the batch's: a residual CNN that fits its batch
    to 0.002 in training mode still scored 1.9 in inference mode (batch 35's h05). Where the loss
    then reaches the target, the network fitted the batch; where it does not, the verdict stands."""
    if not trainable.refresh_batch_norm(batch):
        return
    loss = trainable.loss(batch)
    if not math.isfinite(loss):
        return
    accuracy_now = accuracy(trainable.forward(batch), targets, cfg)
    if goal(loss, accuracy_now):
        run.losses.append((run.steps, loss))
        run.accuracy = accuracy_now
        run.achieved = True
        run.refreshed_batch_norm = True
