"""The learning-rate range test (Smith 2017; Lightning's `lr_find`): the harness behind the
pre-flight verdicts of `lr-too-high` and `lr-too-low` (in `mlcheck/checks/learning_rate.py`),
shared by both through `ctx.memo`.

On a clone, the learning rate grows exponentially from `min_lr` to `max_lr` over `steps` training
steps on the first training batches; the loss is smoothed (exponential moving average with bias
correction, as `lr_find`) and the sweep stops once the smoothed loss exceeds `diverge` times its
best (`lr_find`'s `early_stop_threshold=4`). The suggestion is the rate of steepest descent of
the smoothed loss (`lr_find`'s rule). `progress_at` confirms a verdict with a short run of a
clone at one fixed rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.checks.preflight.harness import inconclusive
from mlcheck.findings import Finding

if TYPE_CHECKING:
    from mlcheck.checks.base import Check
    from mlcheck.preflight_context import Budget, PreflightContext
    from mlcheck.trainable import Trainable

#: Sweep bounds and length: lr_find sweeps 1e-8..1 in 100 steps; 1e-7..10 covers SGD's large
#: rates too, and 80 steps (~1.3x per step) keep the pre-flight within its step budget (fewer
#: when `Budget.steps` is smaller).
MIN_LR, MAX_LR, STEPS = 1e-7, 10.0, 80
#: Smoothing of the loss: lr_find uses 0.98 over 100 steps; 0.9 (~10-step memory) keeps an
#: 80-step curve responsive.
BETA = 0.9
#: Divergence: the smoothed loss above this many times its best (lr_find's early_stop_threshold).
DIVERGE = 4.0
#: lr_find's suggestion skips the first 10 and the last point.
SKIP_BEGIN, SKIP_END = 10, 1
#: Distinct training batches the sweep cycles through.
BATCHES = 8


@dataclass
class RangeTest:
    """The outcome of a sweep.

    Attributes:
        lrs: learning rate of each step taken.
        losses: smoothed loss after each step (same length as lrs).
        raw: raw loss of each step.
        suggestion: steepest-descent learning rate, None when the curve is too short.
        best_lr: learning rate at the lowest smoothed loss.
        diverged_lr: first learning rate at which the loss blew up, None if it never did.
        cut: the wall-clock safety net stopped the sweep.
    """

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    suggestion: float | None = None
    best_lr: float | None = None
    diverged_lr: float | None = None
    cut: bool = False

    def loss_at(self, lr: float) -> float | None:
        """The smoothed loss at the last step whose rate was <= lr (None before the first)."""
        value = None
        for rate, loss in zip(self.lrs, self.losses):
            if rate <= lr * (1 + 1e-9):
                value = loss
        return value


def range_test(
    trainable: Trainable,
    budget: Budget,
    min_lr: float = MIN_LR,
    max_lr: float = MAX_LR,
    steps: int = STEPS,
    beta: float = BETA,
    diverge: float = DIVERGE,
) -> RangeTest:
    """Runs the sweep on `trainable` (pass a clone: it is trained)."""
    batches = trainable.batches("train", BATCHES)
    result = RangeTest()
    if not batches:
        return result
    factor = (max_lr / min_lr) ** (1.0 / max(steps - 1, 1))
    avg, best = 0.0, math.inf
    for i in range(steps):
        if budget.expired(remaining=steps - i):
            result.cut = True
            break
        lr = min_lr * factor**i
        trainable.set_lr(lr)
        loss = trainable.train_step(batches[i % len(batches)])
        budget.took_step()
        result.lrs.append(lr)
        result.raw.append(loss)
        if not math.isfinite(loss):
            result.losses.append(math.inf)
            result.diverged_lr = lr
            break
        avg = beta * avg + (1 - beta) * loss
        smoothed = avg / (1 - beta ** (i + 1))
        result.losses.append(smoothed)
        if i > 0 and smoothed > diverge * best:
            result.diverged_lr = lr
            break
        best = min(best, smoothed)
    finite = [(lr, v) for lr, v in zip(result.lrs, result.losses) if math.isfinite(v)]
    if finite:
        result.best_lr = min(finite, key=lambda p: p[1])[0]
    curve = finite[SKIP_BEGIN:-SKIP_END] if len(finite) > SKIP_BEGIN + SKIP_END + 2 else []
    if curve:
        grad = np.gradient(np.array([v for _, v in curve]))
        result.suggestion = curve[int(np.argmin(grad))][0]
    return result


def shared_range_test(ctx: PreflightContext) -> RangeTest:
    """The sweep for this pre-flight run, computed once for both learning-rate checks."""

    def compute() -> RangeTest:
        t = ctx.trainable
        configured = t.get_lr()
        max_lr = max(MAX_LR, 10 * configured) if configured else MAX_LR
        state = t.rng_state()
        try:
            return range_test(t.clone(), ctx.budget, max_lr=max_lr, steps=min(STEPS, ctx.budget.steps))
        finally:
            t.set_rng_state(state)

    return ctx.memo("lr-range-test", compute)


def progress_at(ctx: PreflightContext, lr: float, steps: int) -> float | None:
    """Relative fall of the loss (on the first two training batches, inference mode) after
    `steps` steps of a clone at the fixed rate `lr`: 0.3 = fell 30%, negative = rose, -inf = became
    non-finite; None when cut short by the time limit. Memoised per rate."""

    def compute() -> float | None:
        t = ctx.trainable
        state = t.rng_state()
        try:
            clone = t.clone()
            clone.set_lr(lr)
            batches = t.batches("train", BATCHES)
            if not batches:
                return None
            probe = batches[:2]
            before = float(np.mean([clone.loss(b) for b in probe]))
            for i in range(steps):
                if ctx.budget.expired(remaining=steps - i):
                    return None
                loss = clone.train_step(batches[i % len(batches)])
                ctx.budget.took_step()
                if not math.isfinite(loss):
                    return -math.inf
            after = float(np.mean([clone.loss(b) for b in probe]))
        finally:
            t.set_rng_state(state)
        if not math.isfinite(after):
            return -math.inf
        return (before - after) / abs(before) if before != 0 else 0.0

    return ctx.memo(f"lr-progress:{lr!r}:{steps}", compute)


def range_test_inconclusive(check: Check, evidence: dict[str, Any], ctx: PreflightContext) -> Finding:
    """The INFO finding of a learning-rate check whose range test the wall-clock safety net cut
    short."""
    return inconclusive(check, "The learning-rate range test", evidence, ctx)
