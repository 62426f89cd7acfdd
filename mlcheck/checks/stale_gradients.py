"""Stale gradients: gradients never zeroed between optimizer steps, so they add up."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.checks.base import Check, register
from mlcheck.findings import Finding, Severity

if TYPE_CHECKING:
    from mlcheck.run import RunState


_HINT = (
    "Call optimizer.zero_grad() before each backward() (Lightning manual optimization: "
    "opt.zero_grad() before self.manual_backward(loss); an optimizer_zero_grad override must "
    "call optimizer.zero_grad()); to accumulate on purpose, zero the gradients after each "
    "optimizer.step() or use accumulate_grad_batches. Lowering the learning rate only delays it."
)


@register
class StaleGradients(Check):
    """Gradients are never zeroed: each optimizer step uses the sum of every earlier gradient.

    What it does:
        First, the exact signal: after a few sampled optimizer steps (the first, the third, the
        ninth and every `every_n_steps`-th of each optimizer), the callbacks and
        `Monitor(optimizer=...)` look at the `.grad` of a few of that optimizer's parameters
        each time a backward reaches them, until the optimizer's next step. Where every look
        finds the gradient the step used still there (non-zero) in `windows` such windows in a
        row, nothing zeroed it: it fires, with the leftover's norm beside the fresh
        gradient's. Gradient accumulation (several backward()s between steps, zeroed after
        each step) and two optimizers stepping in turn (a GAN) stay silent: a zeroing anywhere
        between an optimizer's steps shows as `.grad` None or zero.

        Where that was not measured (where it was, and found the gradients zeroed, the
        statistical reading below stands down), it reads the gradient measurements the callbacks take at
        the step after each scan (every
        `every_n_steps` steps; in a plain loop, `Monitor(optimizer=...)` takes them itself, or
        they are passed as `Monitor.log_step(grad_norm=..., grad_cosine=...)`): the norm of
        the step's gradient and its cosine with the previous step's. It
        fires when `scans` measurements in a row show the two steps' gradients pointing the
        same way (cosine above `min_cosine`) while the norm keeps growing, to at least
        `min_growth` times the smallest norm measured. Gradients that are added up behave
        exactly so: the sum of all earlier gradients changes little from one step to the next
        and grows with the step count. When the training loss has gone wrong too, `scans + 1`
        measurements whose mean cosine is above `early_cosine` suffice. Fresh minibatch
        gradients of consecutive steps are far less aligned; full-batch gradients are aligned
        but shrink as the loss falls. ERROR
        when the training loss also rose to over twice its best (or became non-finite).
        Where the framework zeroes the gradients itself (`RunInfo.zeroes_gradients`), it
        stays silent and the callbacks do not measure: Lightning's automatic optimization
        (unless the module overrides `optimizer_zero_grad`), Keras and the Hugging Face
        `Trainer`. There, gradients that point the same way and grow are a run diverging
        steadily in one direction, which `loss-divergence` and `lr-too-high` judge.

    Why it matters:
        PyTorch adds each `backward()` into `.grad`. Without `optimizer.zero_grad()` every step
        applies the sum of all gradients so far: an update that grows with the step count,
        like an ever larger learning rate, so the loss soon climbs or oscillates. Lowering the
        learning rate only delays it.

    How to fix:
        Call `optimizer.zero_grad()` once per optimizer step, before `backward()` (Lightning
        manual optimization: `opt.zero_grad()` before `self.manual_backward(loss)`; an
        `optimizer_zero_grad` override must call `optimizer.zero_grad()`). To accumulate
        gradients on purpose, zero them right after each `optimizer.step()`, or use
        Lightning's `accumulate_grad_batches`. In a hand-written loop, `Monitor(optimizer=...)`
        measures the gradients this check reads.

    Example:
        for x, y in loader:
            loss = loss_fn(model(x), y)
            loss.backward()  # adds to the gradients of every earlier step
            optimizer.step()

    Use instead:
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()

    Args:
        windows: sampled windows in a row that must find the gradient left over. Default 2:
            the exact signal needs no statistics, but one window could be an unusual first
            step (the second window closes by the fourth step of the optimizer).
        min_cosine: cosine between consecutive steps' gradients above which they point the same
            way. Default 0.95: consecutive minibatch gradients of the healthy digits MLP of the
            tests stay under 0.8; accumulated ones reach 0.97 after 25 steps and 0.999 after 50.
        min_growth: the latest norm must be at least this multiple of the smallest measured.
            Default 4: accumulated gradients on digits are 40x the first after 25 steps, while
            full-batch gradients, as aligned, grew at most 1.5x before shrinking.
        scans: measurements in a row that must show it, each norm at least 0.98 x the one
            before. Default 3: 50 steps of steady growth at the default `every_n_steps` of 25.
        early_cosine: when the training loss has also gone wrong, `scans + 1` measurements
            whose mean cosine is above this suffice. Default 0.9: the callbacks also measure at steps 3, 5, 9
            and 17, where the fresh gradients of a rising loss are still large beside their
            sum (0.91-0.98 on digits), so the cause is named before the loss checks judge it.
    """

    id = "stale-gradients"
    family = "optimization"
    severity = Severity.WARNING

    def __init__(
        self,
        min_cosine: float = 0.95,
        min_growth: float = 4.0,
        scans: int = 3,
        early_cosine: float = 0.9,
        windows: int = 2,
    ) -> None:
        self.windows = windows
        self.min_cosine = min_cosine
        self.early_cosine = early_cosine
        self.min_growth = min_growth
        self.scans = scans
        super().__init__()

    def on_step(self, run: RunState) -> Iterable[Finding]:
        if run.info.zeroes_gradients:
            return  # the framework zeroes them: aligned, growing gradients are a diverging run
        leftover = self._leftover(run)
        if leftover is not None:
            yield leftover
            return
        if self._measured_zeroed(run):
            return  # the exact signal saw the gradients zeroed: aligned, growing ones are the run's own
        steps, cosines = run.grad_cosine.values()
        _, norms = run.grad_norm.values()
        if len(norms) != len(cosines):
            return
        severity, worse = self._loss_went_wrong(run)
        k, growth = self.scans, self._growth(cosines, norms, self.scans, self.min_cosine, np.min)
        if growth is None and severity is Severity.ERROR:
            # with the loss gone wrong, one more measurement of a looser mean alignment shows
            # it too: early on, the fresh gradients of a rising loss are large beside the sum
            k, growth = self.scans + 1, self._growth(cosines, norms, self.scans + 1, self.early_cosine, np.mean)
        if growth is None:
            return
        recent_cos, recent_norm = cosines[-k:], norms[-k:]
        yield self.finding(
            f"Gradients look never zeroed: consecutive steps' gradients point the same way (cosine "
            f"{float(recent_cos[-1]):.4f}) while their norm grew {growth:.0f}x to {float(recent_norm[-1]):.3g}"
            f"{worse}: each step applies the sum of all earlier gradients.",
            evidence={
                "grad_cosine": [float(c) for c in recent_cos],
                "grad_norm": [float(n) for n in recent_norm],
                "steps": [int(s) for s in steps[-k:]],
                "smallest_grad_norm": float(np.min(norms)),
                "growth": growth,
                "min_cosine": self.min_cosine if k == self.scans else self.early_cosine,
            },
            hint=_HINT,
            step=int(steps[-1]),
            epoch=run.epoch,
            severity=severity,
            key="stale",
        )

    def _leftover(self, run: RunState) -> Finding | None:
        """The exact signal: the last `windows` measurements found the previous step's gradient
        still in `.grad` at the first backward after the step."""
        steps, leftovers = run.leftover_grad_norm.values()
        if len(leftovers) < self.windows or not (leftovers[-self.windows :] > 0).all():
            return None  # not measured, or zeroed
        _, fresh = run.fresh_grad_norm.values()
        step, left, new = int(steps[-1]), float(leftovers[-1]), float(fresh[-1]) if len(fresh) else math.nan
        severity, worse = self._loss_went_wrong(run)
        return self.finding(
            f"Gradients are never zeroed: at the first backward after an optimizer step (step {step}), .grad "
            f"still held the gradient that step applied (norm {left:.3g}, beside a fresh gradient of norm "
            f"{new:.3g}){worse}: each step applies the sum of all earlier gradients.",
            evidence={
                "leftover_grad_norm": left,
                "fresh_grad_norm": new,
                "steps": [int(s) for s in steps[-self.windows :]],
                "windows": self.windows,
            },
            hint=_HINT,
            step=step,
            epoch=run.epoch,
            severity=severity,
            key="stale",
        )

    def _measured_zeroed(self, run: RunState) -> bool:
        """The exact signal was measured and its latest window found the gradients zeroed between
        an optimizer's steps: then no guess from their alignment overrides it (a GAN's
        generator gradients point one way and grow for a while as its discriminator sharpens)."""
        _, leftovers = run.leftover_grad_norm.values()
        return len(leftovers) > 0 and not (leftovers[-self.windows :] > 0).all()

    def _growth(self, cosines: np.ndarray, norms: np.ndarray, k: int, min_cosine: float, pool: Any) -> float | None:
        """How many times the smallest norm the latest is, when the last `k` measurements show
        aligned gradients (`pool` of their cosines above `min_cosine`) whose norm kept growing to
        at least `min_growth` x; else None."""
        if len(cosines) < k or not pool(cosines[-k:]) > min_cosine:
            return None  # consecutive gradients differ as fresh ones do
        recent = norms[-k:]
        if not (recent[1:] >= 0.98 * recent[:-1]).all():
            return None  # the norm fell: not a sum that only grows
        smallest = float(np.min(norms))
        growth = float(recent[-1]) / smallest if smallest > 0 else math.inf
        return growth if growth >= self.min_growth else None  # else: full-batch descent

    @staticmethod
    def _loss_went_wrong(run: RunState) -> tuple[Severity, str]:
        """(ERROR and a clause for the message when the training loss rose over twice its best
        (TheDeepChecker's 2x-the-minimum rule) or became non-finite, else WARNING and "")."""
        loss = run.train_loss
        if loss.nonfinite:
            return Severity.ERROR, " and the loss became non-finite"
        _, means = loss.values()
        if len(means) < 2:
            return Severity.WARNING, ""
        best, last = float(np.min(means)), float(means[-1])
        if best > 0 and last > 2 * best:
            return Severity.ERROR, f" and the loss rose from {best:.3g} to {last:.3g}"
        return Severity.WARNING, ""
