"""Optimization checks: non-finite values, a diverging loss, a loss that stalled."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.base import Check, Signal, init_parameters, register
from mlcheck.checks.class_prior import (
    LOG_LOSSES,
    TRAINED_START_FRACTION,
    ClassPrior,
    FirstPassLabels,
    fall_above_floor,
    is_plain_accuracy,
    label_entropy,
    prior_beaten,
    starts_off_chance,
    starts_trained,
    unnamed_off_scale,
    weighted_prior_loss,
)
from mlcheck.checks.curve import (
    UNSTABLE_STEP_CAUSES,
    Curve,
    LossCurveCheck,
    closing_on,
    epoch_judgement_due,
    epoch_train_levels,
    improving,
    median,
    rising,
    rolling_median,
    sig,
    spread,
    times,
    trend_drop,
)
from mlcheck.checks.regression_prior import ConstantLevels, KeptTargets, TargetMoments, absolute_levels, constant_error
from mlcheck.findings import Finding, Severity
from mlcheck.metrics import higher_is_better
from mlcheck.task import ABSOLUTE_LOSSES, NONNEGATIVE_LOSSES, SQUARED_LOSSES

if TYPE_CHECKING:
    from mlcheck.run import BatchObservation, RunState
    from mlcheck.series import Series

# the least values the window a climb is judged over spans: 10 steps, or 3 epochs (each epoch is
# already a mean over many steps)
_CLIMB_WINDOW = {"step": 10, "epoch": 3}


@register
class NonfiniteLoss(Check):
    """A loss, gradient or weight became NaN or infinite.

    What it does:
        Watches the training loss of every step, the epoch losses, the validation loss, and the
        non-finite gradients and weights the framework adapters report, and names the first
        step (or epoch) where a NaN or Inf appeared and in which quantity. A non-finite
        validation loss while every training loss stayed finite is blamed on the validation
        path, unless the training loss had risen over 100x its first value (the weights were
        blowing up: the message says so and keeps the learning-rate hint). A loss summed over
        the batch (`loss-at-init`, key `summed`) is named as the likely cause.

    Why it matters:
        Once a weight is NaN every later step is wasted compute: the model cannot recover.
        A NaN loss usually means the learning rate is too high, a log or division met zero,
        or the data holds NaN. Mixed-precision steps that the loss scaler skips because of
        infinite gradients are normal and are not reported (the adapters leave them out).

    How to fix:
        Look at the named step: lower the learning rate, add gradient clipping, use a
        numerically stable loss (from-logits cross-entropy instead of log(softmax)), add an
        epsilon to logs and divisions, and check the inputs for NaN (`nonfinite-input`).

    Example:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for x, y in train_loader:
            optimizer.zero_grad()
            p = torch.sigmoid(model(x)).squeeze(1)  # rounds to exactly 0 or 1...
            loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
            loss.backward()  # ...then log(0) = -inf: the loss is inf or NaN
            optimizer.step()

    Use instead:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for x, y in train_loader:
            optimizer.zero_grad()
            logits = model(x).squeeze(1)
            loss = F.binary_cross_entropy_with_logits(logits, y)  # stable
            loss.backward()
            optimizer.step()

    Args:
        max_names: how many parameter names to quote in the message. Default 5: enough to
            point at a layer without flooding the terminal.
    """

    id = "nonfinite-loss"
    family = "optimization"
    severity = Severity.ERROR
    #: root causes that, when found first, explain this check's findings (they then say so)
    #: (a dropout after the softmax output zeroes probabilities: log(0), 0/0)
    #: (a loss summed over the batch: its steps are batch-size times too large for a rate tuned for a mean)
    explained_by = frozenset(
        {"nonfinite-input", "stale-gradients", "output-loss-mismatch:output-dropout", "loss-at-init:summed"}
    )

    def __init__(self, max_names: int = 5) -> None:
        self.max_names = max_names
        super().__init__()

    def reset(self) -> None:
        self._done: set[str] = set()

    def on_step(self, run: RunState) -> Iterable[Finding]:
        # judged at once when a non-finite value arrives: the run's epoch is that step's
        yield from self._series(run.train_loss, "training loss", "train_loss", "step", run.epoch)
        for name, what in (("nonfinite_weights", "weights"), ("nonfinite_grads", "gradients")):
            if name in run.extras and name not in self._done:
                self._done.add(name)
                step, names = run.extras[name]
                names = list(names)
                shown = ", ".join(names[: self.max_names]) + (" ..." if len(names) > self.max_names else "")
                yield self.finding(
                    f"The {what} of {len(names)} parameter(s) became NaN or Inf at step {step}: {shown}.",
                    evidence={"step": step, "parameters": names[: self.max_names], "count": len(names)},
                    hint=self._hint(),
                    step=step,
                    epoch=run.epoch,
                    key=name,
                )

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        yield from self._series(run.epoch_train_loss, "epoch training loss", "train_loss", "epoch")
        yield from self._series(run.val_loss, "validation loss", "val_loss", "epoch", train=run)

    def on_end(self, run: RunState) -> Iterable[Finding]:
        yield from self.on_step(run)
        yield from self.on_epoch(run)

    def _series(
        self, series: Series, what: str, key: str, unit: str, epoch: int | None = None, train: RunState | None = None
    ) -> Iterable[Finding]:
        """`train`: the run, for a validation series: where its training loss and weights stayed
        finite, the NaN comes from the validation path, not from the training."""
        if not series.nonfinite or key in self._done:
            return
        self._done.add(key)
        x = series.first_nonfinite_x
        value = series.last_value
        kind = "NaN" if math.isnan(value) else (("-Inf" if value < 0 else "Inf") if math.isinf(value) else "NaN or Inf")
        where = int(x) if x is not None and float(x).is_integer() else x
        evidence = {f"first_{unit}": where, "nonfinite_values": series.nonfinite, "finite_values": series.finite_count}
        message, hint = f"The {what} became {kind} at {unit} {where}.", self._hint()
        grown = training_blew_up(train) if train is not None else None
        if grown is not None:
            first, peak = grown
            evidence.update(first_train_loss=first, peak_train_loss=peak)
            message = (
                f"The {what} became {kind} at {unit} {where}, after the training loss had grown from "
                f"{first:.4g} to {peak:.4g} ({peak / first:.3g}x its first value): the weights were blowing up."
            )
        elif train is not None and _training_stayed_finite(train):
            steps, last = train.train_loss.total, train.train_loss.last_value
            evidence.update(train_steps_finite=steps, last_train_loss=last)
            message = (
                f"The {what} became {kind} at {unit} {where} while the training loss stayed finite "
                f"({steps} steps, last {last:.4g}): the weights are fine, the {kind} comes from the "
                "validation path."
            )
            hint = self._validation_hint()
        yield self.finding(
            message,
            evidence=evidence,
            hint=hint,
            step=where if unit == "step" else None,
            epoch=where if unit == "epoch" else epoch,
            key=key,
        )

    @staticmethod
    def _hint() -> str:
        return (
            "Lower the learning rate or add gradient clipping, use a numerically stable loss "
            "(from-logits), guard logs and divisions with an epsilon, and check the inputs "
            "for NaN."
        )

    @staticmethod
    def _validation_hint() -> str:
        # the learning rate cannot be the cause: the same weights give a finite training loss
        return (
            "Look at what validation does differently from training: a statistic taken over the "
            "batch (the standard deviation of a batch of one sample is NaN: a validation batch size "
            "of 1 with per-batch standardisation), NaN or Inf in the validation inputs or targets, a "
            "division by a count that is zero for some batch, a log of an output that is exactly 0. "
            "The learning rate is not the cause."
        )


#: How many times its first value the training loss must have reached for a non-finite validation
#: loss to be blamed on the training rather than the validation path: a healthy run's loss falls
#: from its value at initialisation, and a loss 100x over it means weights on their way to overflow
#: (a summed loss under a rate tuned for a mean reached 2e32 from 82 within 6 steps)
BLOWN_UP_FACTOR = 100.0


def training_blew_up(run: RunState) -> tuple[float, float] | None:
    """(first, peak) of a finite training loss that rose over `BLOWN_UP_FACTOR` x its first
    value, or None."""
    series = run.train_loss
    first = series.first_value
    if first is None or not math.isfinite(first) or first <= 0 or series.finite_count < 2:
        return None
    b = series.buckets(include_open=True)
    if not len(b["max"]):
        return None
    with np.errstate(invalid="ignore"):
        finite = b["max"][np.isfinite(b["max"])]
    peak = float(finite.max()) if finite.size else math.nan
    return (first, peak) if math.isfinite(peak) and peak > BLOWN_UP_FACTOR * first else None


def _training_stayed_finite(run: RunState) -> bool:
    """Every training loss so far (and the weights, where measured) finite, with some seen."""
    return (
        run.train_loss.total > 0
        and not run.train_loss.nonfinite
        and not run.epoch_train_loss.nonfinite
        and "nonfinite_weights" not in run.extras
        and "nonfinite_grads" not in run.extras
    )


@register
class LossDivergence(LossCurveCheck):
    """The training loss climbed far above its best and stays there, explodes by orders of
    magnitude again and again, or runs away below zero.

    What it does:
        (1) A climb: compares the median of the most recent buckets of the training loss with its best
        earlier level (the lowest median of as many consecutive buckets; for epoch losses,
        which already average many steps, the lowest epoch). It fires when the loss has risen
        above its best by
        more than all of: (`factor` - 1) x |best|, `range_fraction` of the way back to the
        initial loss, and `z` times the measured noise of the curve, and the rise has lasted
        for `persist_fraction` of the run (at least 10 steps or 3 epochs). A noisy but
        improving loss never qualifies: its recent median is near its best. Works on the
        step-level loss, or on epoch losses when only those were logged.
        (2) Explosions that recover (WARNING): a bucket (an epoch, for epoch losses) whose mean
        is over `spike_factor` x the median of the buckets before it and over
        `spike_initial_factor` x the initial loss, at least `min_spikes` separate times, or
        once at `single_spike_factor` x. Warm-up bumps of 2-3x and cosine restarts stay far
        below. A loss that went below zero and is not known to be non-negative (a Gaussian
        negative log-likelihood, an ELBO), whose ratio to a level near or below zero means
        nothing, is judged by its rise instead: over the same factors x the larger of the level's
        size (|median| of the buckets before) and the loss's own spread over the run (1.4826 x
        the median absolute deviation of its buckets), with no bar on the initial loss (a first
        epoch at 89.6 hid 30-300x explosions of a loss that settled at -2.7).
        (3) A loss known to be non-negative (`RunInfo.loss`: cross-entropy, BCE, NLL,
        MSE, MAE, Huber, hinge, ...) below zero (ERROR, at its first occurrence, training or
        validation): such a loss cannot be negative unless its inputs are outside its domain.
        (4) Without a known loss (WARNING): a loss that started positive and now sits below
        -`runaway_factor` x its initial level.
        (5) A log of epochs too short for (1) (3 to 7 epochs, no per-step values), at the run's
        end (ERROR): the last epoch's loss is above `factor` x its lowest before, that lowest
        after the first epoch, and above the first epoch's, which holds the descent from the
        random start: the run ended having undone all of its training. One epoch high is enough
        here because nothing comes after it; a run that rose and came back down (0.12 -> 0.40 ->
        0.17) or never fell below its first epoch is not judged.

    Why it matters:
        A diverging loss means the optimizer left the region it was making progress in.
        The run rarely recovers on its own and every further step is wasted compute. A loss
        that explodes by orders of magnitude and falls back is one bad step from NaN and
        undoes what was learned each time. A cross-entropy or squared error below zero is
        arithmetic proof of a bug: binary cross-entropy fed labels outside {0, 1} (e.g. {0, 2}
        or {-1, 1}) rewards pushing logits to infinity and runs away to -1e4 .. -1e8.

    How to fix:
        In a hand-written loop, first make sure `optimizer.zero_grad()` runs every step (the
        hint says so when no gradient was measured to rule it out: `stale-gradients`). Then
        lower the learning rate (3-10x), add warmup and gradient clipping, and check for
        corrupt batches near the step named. If the loss jumped back to its initial level,
        the weights may have been reset or a layer collapsed. For a negative loss: check that
        the labels lie in the loss's domain ({0, 1} for binary cross-entropy, 0..C-1 for
        sparse cross-entropy) and that the loss fits the model's output (log-probabilities
        for NLLLoss, probabilities for a loss without from_logits).

    Example:
        class LanguageModel(L.LightningModule):
            ...
            def configure_optimizers(self):
                # the full rate from step 0
                return torch.optim.AdamW(self.parameters(), lr=3e-3)

        trainer = L.Trainer(max_epochs=10)  # and no gradient clipping
        trainer.fit(LanguageModel(), datamodule=dm)

    Use instead:
        class LanguageModel(L.LightningModule):
            ...
            def configure_optimizers(self):
                optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
                warmup = LinearLR(optimizer, start_factor=0.01, total_iters=1000)
                schedule = {"scheduler": warmup, "interval": "step"}
                return {"optimizer": optimizer, "lr_scheduler": schedule}

        trainer = L.Trainer(max_epochs=10, gradient_clip_val=1.0)
        trainer.fit(LanguageModel(), datamodule=dm)

    Args:
        Each argument named `*factor` and `rate_raise` is a multiple of a loss level or rate:
        above 1, or refused with a ValueError naming it.
        factor: how many times its best the loss must reach. Default 2.0: TheDeepChecker's
            "2x the minimum" (Lightning's lr_find uses 4x for its stricter purpose).
        range_fraction: the fraction of the way back to the initial loss the loss must climb.
            Default 0.25, so a loss that is tiny at its best needs a real climb.
        z: the rise must exceed z x the noise of a bucket mean. Default 3.0 (three sigma).
        persist_fraction: the share of the buckets the rise must persist over. Default 0.05:
            a twentieth of the run, so a short burst of bad batches does not count.
        spike_factor: how many times the median of the `spike_context` buckets before it a
            bucket mean of step losses must exceed to count as an explosion. Default 100.0: two
            orders of magnitude; single heavy-tailed batches of a converged loss reach ~50x.
        epoch_spike_factor: the same for epoch losses (means over a whole epoch, where batch
            noise averages out). Default 10.0: an order of magnitude; warm restarts stay
            within ~2x.
        spike_initial_factor: an explosion must also exceed this many times the initial loss.
            Default 10.0: no healthy run's loss goes 10x above where it started (warm-up
            bumps: 2-3x), which keeps a converged loss's relative noise out.
        min_spikes: separate explosions needed. Default 2 ("repeatedly"): a real random-search
            trial spiked 20-40x its level four times in 22 epochs (1.23 -> 35.0 -> 1.30 ...).
        single_spike_factor: one explosion this many times the level before it suffices.
            Default 1000.0: the low end of the real runs' explosions (1,000-30,000x).
        single_spike_initial_factor: one explosion to this many times the initial loss also
            suffices. Default 100.0: two orders of magnitude above where the loss started (a
            real run, SGD at 0.05: 0.55 -> 63.7 -> 0.94, never back to its best).
        spike_context: buckets before a spike whose median is its reference level. Default 5
            (fewer in the first buckets of a run: an explosion at epoch 2 counts too).
        runaway_factor: without a known loss, a loss below -`runaway_factor` x its (positive)
            initial level has run away. Default 100.0: losses that may cross zero (Gaussian
            negative log-likelihood, ELBOs) move by a few times their initial scale; the real
            runaways go from +0.7 to -6e3 .. -1e8.
        negative_tolerance: a known non-negative loss counts as negative below -this x
            max(1, initial loss). Default 1e-4: float32 rounding of a log-sum-exp over logits
            of ~1e3 is ~1e-4 of the loss.
        rate_raise: a climb of the step loss that follows a learning rate raised to this many
            times its value at the loss's best (a warm restart such as
            `CosineAnnealingWarmRestarts`, a warm-up) must last `persist_fraction` of the whole
            configured run (`RunInfo.total_steps`), not of the steps so far. Default 2.0: SGDR
            (Loshchilov & Hutter, 2017) restarts from near zero to the full rate, and a healthy
            run's loss jumps 2-3x there and comes back within an epoch or two (digits, SGD 0.03,
            T_0 of 3 epochs: 0.69 -> 2.2 -> 0.63 in 60 steps); a run that truly diverges stays
            high and is named that much later. Such a climb must also go `1 - range_fraction`
            of the way back to the initial loss (most of the training undone): after a rate
            raised 15x (0.002 -> 0.03 at a second restart) a healthy run's loss jumped 10x from
            its best (0.106 -> 1.01) and stayed up some 50 steps, a third of the way back to its
            initial 2.78; a restart that kills the run sends it back to chance (2.8).
    """

    id = "loss-divergence"
    family = "optimization"
    severity = Severity.ERROR
    #: root causes that, when found first, explain this check's findings (they then say so)
    explained_by = UNSTABLE_STEP_CAUSES

    def __init__(
        self,
        factor: float = 2.0,
        range_fraction: float = 0.25,
        z: float = 3.0,
        persist_fraction: float = 0.05,
        spike_factor: float = 100.0,
        epoch_spike_factor: float = 10.0,
        spike_initial_factor: float = 10.0,
        min_spikes: int = 2,
        single_spike_factor: float = 1000.0,
        single_spike_initial_factor: float = 100.0,
        spike_context: int = 5,
        runaway_factor: float = 100.0,
        negative_tolerance: float = 1e-4,
        rate_raise: float = 2.0,
    ) -> None:
        multiples = {
            "factor": factor,
            "spike_factor": spike_factor,
            "epoch_spike_factor": epoch_spike_factor,
            "spike_initial_factor": spike_initial_factor,
            "single_spike_factor": single_spike_factor,
            "single_spike_initial_factor": single_spike_initial_factor,
            "runaway_factor": runaway_factor,
            "rate_raise": rate_raise,
        }
        for name, value in multiples.items():
            # each is "this many times" a level: at or below 1 any loss at or under its level would
            # qualify (`check_arguments` has refused NaN and values of another kind already)
            if value <= 1:
                default = init_parameters(type(self))[name].default
                raise ValueError(
                    f"{name} must be above 1 (a multiple of a loss level; default {default!r}), got {value!r}"
                )
        self.rate_raise = rate_raise
        self.factor = factor
        self.range_fraction = range_fraction
        self.z = z
        self.persist_fraction = persist_fraction
        self.spike_factor = spike_factor
        self.epoch_spike_factor = epoch_spike_factor
        self.spike_initial_factor = spike_initial_factor
        self.min_spikes = min_spikes
        self.single_spike_factor = single_spike_factor
        self.single_spike_initial_factor = single_spike_initial_factor
        self.spike_context = spike_context
        self.runaway_factor = runaway_factor
        self.negative_tolerance = negative_tolerance
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self._done: set[str] = set()  # the kinds of finding already raised ("negative", "spikes", ...)

    def on_step(self, run: RunState) -> Iterable[Finding]:
        return [*self._below_zero(run), *super().on_step(run)]

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        return [*self._below_zero(run), *super().on_epoch(run)]

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return [*self._below_zero(run), *super().on_end(run)]

    def _judge(self, run: RunState, c: Curve, initial: float, unit: str, final: bool = False) -> list[Finding]:
        found = self._climb(run, c, initial, unit)
        if not found and final:
            found = self._short_climb(run, c, unit)
        if "spikes" not in self._done:
            found += self._spikes(run, c, initial, unit)
        if not self._done & {"negative", "runaway"}:
            found += self._runaway(run, c, initial, unit)
        return found

    def _below_zero(self, run: RunState) -> list[Finding]:
        """A loss known to be non-negative (`RunInfo.loss`) went below zero: at once, ERROR."""
        if "negative" in self._done or run.info.loss not in NONNEGATIVE_LOSSES:
            return []
        initial = self._train.initial if self._train.initial is not None else 1.0
        tol = self.negative_tolerance * max(1.0, abs(initial))
        for series, what, unit in (
            (run.train_loss, "training loss", "step"),
            (run.epoch_train_loss, "epoch training loss", "epoch"),
            (run.val_loss, "validation loss", "epoch"),
        ):
            if not series.finite_count or series.lowest >= -tol:
                continue  # no value below zero (the usual case): no bucket to read
            b = series.buckets(include_open=True)
            below = np.flatnonzero(b["min"] < -tol)
            if not len(below):
                continue
            self._done.add("negative")
            i = int(below[0])
            where = int(b["x1"][i])
            return [
                self.finding(
                    f"The {what} ({run.info.loss}, which cannot be negative) went below zero: "
                    f"{float(b['min'][i]):.4g} by {unit} {where}.",
                    evidence={
                        "loss_name": run.info.loss,
                        "min_loss": sig(float(b["min"][i])),
                        f"first_{unit}": where,
                        "latest_loss": sig(float(series.last_value)),
                    },
                    hint=_negative_hint(run.info.loss),
                    step=where if unit == "step" else None,
                    epoch=where if unit == "epoch" else run.epoch,
                    key="negative",
                )
            ]
        return []

    def _spikes(self, run: RunState, c: Curve, initial: float, unit: str) -> list[Finding]:
        """Explosions by orders of magnitude that fall back (WARNING)."""
        if len(c) < 3:
            return []
        signed = float(np.min(c.mean)) < 0 and run.info.loss not in NONNEGATIVE_LOSSES
        if not signed:
            if not (math.isfinite(initial) and initial > 0):
                return []
            if float(c.mean[1:].max()) <= self.spike_initial_factor * initial:
                return []  # no bucket after the first is high enough to count (the usual case, cheap)
        elif len(c) <= self.spike_context:
            return []  # too few buckets for the loss's spread to mean anything
        level, reference = _spike_references(c, self.spike_context)
        factor = self.spike_factor if unit == "step" else self.epoch_spike_factor
        if signed:
            # a loss below zero (a Gaussian NLL, an ELBO): a ratio to a level near or below zero
            # means nothing, so the rise is judged against the larger of the level's size and the
            # loss's own spread over the run (1.4826 x its MAD: the descent and the noise, robust
            # to the explosions while they are fewer than half the buckets)
            scale = np.maximum(np.abs(reference), spread(c.mean))
            ratio = np.where(scale > 0, (level - reference) / np.where(scale > 0, scale, 1.0), 0.0)
            high, starts = _fallen_back(ratio > factor)
        else:
            ratio = np.where(reference > 0, level / np.where(reference > 0, reference, 1.0), 0.0)
            high, starts = _fallen_back((ratio > factor) & (level > self.spike_initial_factor * initial))
        if not len(starts):
            return []
        if len(starts) < self.min_spikes:
            # one explosion: by three orders of magnitude, or to 100x where the loss started
            top = float(level[high].max())
            far = not signed and top >= self.single_spike_initial_factor * initial
            if ratio[high].max() < self.single_spike_factor and not far:
                return []
        return [self._spiked(run, c, initial, unit, level, ratio, high, starts, signed)]

    def _spiked(
        self,
        run: RunState,
        c: Curve,
        initial: float,
        unit: str,
        level: np.ndarray,
        ratio: np.ndarray,
        high: np.ndarray,
        starts: np.ndarray,
        signed: bool,
    ) -> Finding:
        """The finding for the explosions `_spikes` found (`level[j]` is bucket j + 1)."""
        peak = float(ratio[high].max())
        self._done.add("spikes")
        first = int(c.x[1 + starts[0]])
        size = "the larger of its level's size and its spread" if signed else "its level"
        return self.finding(
            f"Training loss exploded by up to {peak:.3g}x {size} {len(starts)} time(s), first at "
            f"{unit} {first}, and fell back: the optimisation is unstable.",
            evidence={
                "explosions": len(starts),
                f"first_{unit}": first,
                "largest_ratio": sig(peak),
                "largest_loss": sig(float(level[high].max())),
                "initial_loss": sig(initial),
                **({"judged_on": "rise over max(|level|, spread): the loss goes below zero"} if signed else {}),
            },
            hint="Lower the learning rate (3-10x) and add gradient clipping; look for bad batches "
            f"(outliers, NaN-free but huge values) near {unit} {first}.",
            step=run.step if unit == "step" else None,
            epoch=run.epoch,
            severity=Severity.WARNING,
            key="spikes",
        )

    def _runaway(self, run: RunState, c: Curve, initial: float, unit: str) -> list[Finding]:
        """A loss of unknown kind that started positive and fell far below zero (WARNING)."""
        p = max(3, c.window(10 if unit == "step" else 1))
        if len(c) < p or not (math.isfinite(initial) and initial > 0):
            return []
        recent = median(c.mean[-p:])
        if recent >= -self.runaway_factor * initial:
            return []
        self._done.add("runaway")
        return [
            self.finding(
                f"Training loss ran away below zero: from {initial:.4g} at the start to {recent:.4g}, "
                f"{-recent / initial:.3g}x its initial size on the wrong side of zero.",
                evidence={"loss": sig(recent), "initial_loss": sig(initial), "loss_name": run.info.loss},
                hint=_negative_hint(None),
                step=run.step if unit == "step" else None,
                epoch=run.epoch,
                severity=Severity.WARNING,
                key="runaway",
            )
        ]

    def _persist(self, buckets: int, window: int) -> int:
        """Buckets the rise must persist over: the recent window the climb is judged on."""
        return max(3, math.ceil(self.persist_fraction * buckets), window)

    def min_points(self, unit: str) -> int:
        # the climb needs two recent windows and two more buckets (`_climb`); while the curve is
        # short each point is a bucket, so the window is min(points, _CLIMB_WINDOW[unit])
        span = _CLIMB_WINDOW[unit]
        return next(b for b in itertools.count(1) if b >= 2 * self._persist(b, min(b, span)) + 2)

    def _climbed(self, c: Curve, p: int, unit: str, initial: float) -> tuple[float, float, int, int, float] | None:
        """(recent median, best, index of the best window, its width, noise) when the median of
        the last `p` buckets is above the best earlier level by more than the threshold; else
        None."""
        b = len(c)
        if b < 2 * p + 2:
            return None
        recent = median(c.mean[-p:])
        sigma = c.noise()
        if not math.isfinite(sigma) or recent - float(np.min(c.mean[: b - p])) <= self.z * sigma:
            # the best window's median is at least the lowest value before the recent window,
            # and the threshold at least z * sigma: no climb (the usual case), judged cheaply
            return None
        # Epoch losses are already averages over many steps: their best is a single epoch.
        k = 1 if unit == "epoch" else p
        med = rolling_median(c.mean[: b - p], k)  # windows that end before the recent one
        i_best = int(np.argmin(med))
        best = float(med[i_best])
        threshold = max((self.factor - 1.0) * abs(best), self.range_fraction * max(0.0, initial - best), self.z * sigma)
        if recent - best <= threshold:
            return None
        return recent, best, i_best, k, sigma

    def _after_rate_raised(self, run: RunState, c: Curve, i_best: int, p: int, unit: str) -> int | None:
        """Buckets a climb of the step loss must persist over where the learning rate measured
        after the start of its best window is at least `rate_raise` x the rate there (a warm
        restart, a warm-up: the loss of a healthy run jumps there and comes back as the rate
        anneals): `persist_fraction` of the configured run (`RunInfo.total_steps`), when that is
        more than `p`; else None. The window's start, not its end: a restart inside the best
        window (its losses the lowest of the cycle that ends there) is still a restart; judged
        from the window's end, the raised rate read as the rate at the best and the restart's jump
        as a divergence (a healthy `CosineAnnealingWarmRestarts` fit, 0.002 -> 0.03 at step 396
        inside a best window of steps 376-399)."""
        total = run.info.total_steps
        if unit != "step" or not total or run.lr.total < 2:
            return None
        need = math.ceil(self.persist_fraction * total / max(1, c.width))
        if need <= p:
            return None
        steps, rates = run.lr.values()
        best_step = int(c.x[i_best])  # the first step of the best window
        before = rates[steps <= best_step]
        after = rates[(steps > best_step) & np.isfinite(rates)]
        if not len(before) or not len(after):
            return None
        at_best = float(before[-1])
        if not (at_best > 0 and float(np.max(after)) >= self.rate_raise * at_best):
            return None
        return need

    def _short_climb(self, run: RunState, c: Curve, unit: str) -> list[Finding]:
        """An epoch log too short for `_climb` (fewer than `min_points("epoch")` epochs) whose
        last epoch's loss is above `factor` x its lowest before and above its first epoch's
        (ERROR): the run ended having undone all of its training. The first epoch's loss is the
        mean over its batches, the descent from the random start included, so a healthy run's
        later epochs stay below it; `factor` is the climb's own (2.0: double the best). Judged at
        the run's end only, where the loss has no epoch left to come back in (held-out-14's
        FabianoMendonca/molecular-docking-with-deep-learning: 3.88 -> 1.89 at epoch 6 -> 3.97 at 7)."""
        if unit != "epoch" or self._fired or not 3 <= len(c) < self.min_points(unit):
            return []
        first, last = float(c.mean[0]), float(c.mean[-1])
        i_best = int(np.argmin(c.mean[:-1]))
        best = float(c.mean[i_best])
        # the best after the first epoch: a loss that never went below its first epoch's had no
        # training to undo (a tiny first loss that jumped 50x and is falling is no divergence)
        if not (i_best > 0 and best > 0 and math.isfinite(last) and last > self.factor * best and last > first):
            return []
        self._fired = True
        best_x, now = int(c.x[i_best]), int(c.x[-1])
        clip = run.info.grad_clip
        return [
            self.finding(
                f"Training loss is diverging: its last epoch's {last:.4g} is {times(last / best)}x its best of "
                f"{best:.4g} (epoch {best_x}) and above its first epoch's {first:.4g}: the run ended having "
                f"undone all of its training ({len(c)} epochs, too few to see it stay high).",
                evidence={
                    "loss": sig(last),
                    "best_loss": sig(best),
                    "best_epoch": best_x,
                    "initial_loss": sig(first),
                    "ratio": sig(last / best),
                    "epochs": len(c),
                    **({"grad_clip": clip} if clip is not None else {}),
                },
                hint=_zero_grad_first(
                    run,
                    f"lower the learning rate (3-10x), {_steadiers(clip)}, and look for bad batches in epoch {now}.",
                ),
                epoch=run.epoch,
                key="train",
            )
        ]

    def _climb(self, run: RunState, c: Curve, initial: float, unit: str) -> list[Finding]:
        """The loss rose far above its best and stays there (ERROR)."""
        p = self._persist(len(c), c.window(_CLIMB_WINDOW[unit]))
        climb = self._climbed(c, p, unit, initial)
        if climb is None:
            return []
        longer = self._after_rate_raised(run, c, climb[2], p, unit)
        if longer is not None:
            # the schedule raised the rate since the best (a warm restart, a warm-up): the
            # climb must outlast `persist_fraction` of the whole configured run
            p = longer
            climb = self._climbed(c, p, unit, initial)
            if climb is None:
                return []
            if climb[0] - climb[1] < (1.0 - self.range_fraction) * (initial - climb[1]):
                # and undo most of the training (1 - `range_fraction` of the way back to the
                # initial loss): a healthy run keeps what it learned through a restart, its jump
                # a share of the way back (healthy10's SGD 0.03 restart 0.002 -> 0.03: 0.106 ->
                # 1.01 of an initial 2.78, 34%, for 50 steps); a restart that kills the run sends
                # it back to chance (SGD 0.1: 2.8)
                return []
        recent, best, i_best, k, sigma = climb
        self._fired = True
        best_x = int(c.x[i_best + k // 2])
        now = int(c.x[-1])
        ratio = recent / best if best > 0 else math.inf
        above = f", {times(ratio)}x its best of {best:.4g}" if best > 0 else f" from its best of {best:.4g}"
        # a step curve's best is the median of a window, which can lie far above the first losses
        # the user logged (a loss at 2.2 on step 0 that blew up from step 2 has its best 6107)
        spans = k * c.width
        at = f"at {unit} {best_x}" if spans == 1 else f"the median of the {spans} {unit}s around {unit} {best_x}"
        clip = run.info.grad_clip
        return [
            self.finding(
                f"Training loss is diverging: it climbed to {recent:.4g}{above} "
                f"({at}) and has stayed high since {unit} {int(c.x[-p])}.",
                evidence={
                    "loss": sig(recent),
                    "best_loss": sig(best),
                    f"best_{unit}": best_x,
                    "initial_loss": sig(initial),
                    "ratio": sig(ratio),
                    "noise": sig(sigma),
                    f"high_for_{unit}s": now - int(c.x[-p]) + c.width,
                    **({"grad_clip": clip} if clip is not None else {}),
                },
                hint=_zero_grad_first(
                    run,
                    f"lower the learning rate (3-10x), {_steadiers(clip)}, and look "
                    f"for bad batches near {unit} {int(c.x[-p])}.",
                ),
                step=run.step if unit == "step" else None,
                epoch=run.epoch,
                key="train",
            )
        ]


def _steadiers(clip: float | None) -> str:
    """What to add besides a lower rate: warmup and gradient clipping, or warmup alone where the
    run clips already (advising clipping to a run that diverged with `gradient_clip_val=0.5` on
    tells it nothing: a clipped SGD step still moves the weights by lr x the threshold)."""
    if clip is None:
        return "add warmup and gradient clipping"
    return f"add warmup (the gradient clipping at {clip:g} that is on does not hold it)"


@dataclass(frozen=True)
class TargetStart:
    """Where a regression starts against its training targets: the loss of predicting 0 (an
    untrained network's outputs) and the targets' centre (mean, or median for an absolute
    loss) and standard deviation, for `loss-plateau`'s constant-level hint."""

    zero_loss: float
    centre: float
    std: float

    def short_of(self, train_loss: float, constant_loss: float) -> bool:
        """True when the targets' centre is far from 0 (predicting 0 scores at least twice what
        predicting the centre does: for squared error, |mean| >= their standard deviation) and
        `train_loss` has covered less than half the way from the first to the second."""
        return self.zero_loss >= 2.0 * constant_loss and train_loss > (self.zero_loss + constant_loss) / 2.0


def _zero_grad_first(run: RunState, fix: str) -> str:
    """`fix` as a hint, led, where nothing rules out gradients that are never zeroed (a
    hand-written loop, a log) and no gradient was measured to tell (`stale-gradients`), by that
    cause: no learning rate fixes it."""
    if run.info.zeroes_gradients or run.grad_cosine.total:
        return fix[:1].upper() + fix[1:]
    return (
        "If the loop is hand-written, first check that optimizer.zero_grad() runs before each "
        "backward(): gradients never zeroed add up and diverge at any learning rate "
        f"(Monitor(optimizer=...) measures it). Otherwise, {fix}"
    )


def _spike_references(c: Curve, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(level, reference): every bucket after the first, and the median of the (up to) `k`
    buckets before it, so an explosion in the first epochs counts too (a real run went
    0.76 -> 8e9 -> 1.34 at epochs 1-3)."""
    early = c.mean[: min(k, len(c)) - 1].tolist()
    head = [_median(early[:j]) for j in range(1, len(early) + 1)]
    ref = rolling_median(c.mean[:-1], k) if len(c) > k else np.empty(0)  # ref[j]: buckets j..j+k-1
    reference = np.concatenate((head, ref))
    return c.mean[1 : 1 + len(reference)], reference


def _fallen_back(high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The explosions in `high` that fell back (runs of high buckets followed by a low one):
    the mask cut after the last such run, and the runs' first indices."""
    ends = np.flatnonzero(high[:-1] & ~high[1:])
    if not len(ends):
        return np.zeros_like(high), np.empty(0, dtype=int)
    starts = np.flatnonzero(high & ~np.concatenate(([False], high[:-1])))[: len(ends)]
    high = high.copy()
    high[ends[-1] + 1 :] = False
    return high, starts


def _negative_hint(loss: str | None) -> str:
    """What makes a loss run below zero, for the loss named (None: unknown)."""
    if loss in ("bce", "bce_with_logits", "binary_crossentropy", "binary_focal_crossentropy"):
        usual = "labels outside {0, 1} (e.g. {0, 2} or {-1, 1}) fed to binary cross-entropy"
    elif loss == "nll":
        usual = "raw scores or probabilities fed to NLLLoss, which expects log-probabilities"
    elif loss in ("hinge", "squared_hinge"):
        usual = "labels outside {-1, 1} (or {0, 1}) fed to the hinge loss"
    else:
        usual = (
            "labels outside the loss's domain (binary cross-entropy fed labels outside {0, 1}) "
            "or a loss that does not fit the output"
        )
    return (
        f"The usual cause is {usual}. Check the label encoding and that the loss fits the model's "
        "output; a custom loss that may be negative is fine: suppress loss-divergence then."
    )


@register
class LossPlateau(LossCurveCheck):
    """The training loss stopped improving while still at a poor level, or the validation loss
    never beat predicting the class prior.

    What it does:
        (1) Fits a line to the last half of the training-loss curve (bucket means) and calls it
        a stall when the fitted decrease is not significant against the measured noise (`z`
        standard errors) or is under `tolerance` of the loss, and, for a loss below the chance
        level, the noise rules out a fall of `max_stall_drop` of the loss (a noisy curve that
        has learned something and may well still fall is not judged yet; a loss still at the
        chance level after the window learned nothing either way). It fires only when the level is
        also poor: the loss fell by less than `min_drop` of its initial value, or, for a
        classification run whose number of classes C is known, it sits above
        `chance_fraction` x ln(C), the loss of a uniform guess, or (class counts known from
        the first pass over the training data) from `tolerance` below the entropy of the
        training labels to a quarter above it, the loss of predicting the class prior (a stall
        higher than that is a loss weighted per class, whose input-ignoring floor is not that
        entropy; both levels times the rows of a loss summed over the batch,
        `RunInfo.loss_summed_over`). Under class weights the adapter saw
        (`RunInfo.class_weights`: Keras' `class_weight=`, a `CrossEntropyLoss(weight=)`) that
        entropy is the weighted shares' (ln(C) for balanced weights): the least a weighted loss
        reaches without the inputs. For a mean squared error (targets counted over the first
        pass over the training data), the level of a constant prediction is poor too: from
        `tolerance` below the targets' variance per output (averaged over the outputs: the
        loss of predicting their mean, the best constant) to `CONSTANT_CEILING` (2) x the
        larger of it and the mean squared target (the loss of predicting all zeros: a dead
        ReLU or sigmoid output), where the last epoch's mean loss is not below that band
        either; a sample of batches rather than the whole pass widens it by `z` standard
        errors of the variance (each sample's squared deviation averaged over its outputs).
        A loss mlcheck cannot name (no common loss of the outputs and targets, nor a
        multiple: InfoNCE over the batch, a triplet loss) whose first 10 steps sit above
        1.25 x ln(C) by 3 standard errors is not on ln(C)'s scale: neither level applies,
        and it is judged by its fall alone, unless it stalls within 10% of ln(C) (a uniform
        guess after a confidently wrong start). The first of
        these does not count for a run from trained weights, whose loss starts near its floor:
        `RunInfo.pretrained` (a Hugging Face `Trainer` log, a YOLO run from `.pt` weights, a
        `from_pretrained` model), or a
        classification loss that starts below `trained_start_fraction` x the smaller of ln(C)
        and the training labels' entropy, whichever are known (weights restored with
        `load_state_dict` leave no other trace). Below the chance level, a loss that still falls
        beyond its noise over the window at a rate that, kept up for as long as the run has lasted
        so far, takes it past `min_drop` below its initial value learns slowly, not stalled
        (`lr-too-low` reports a slow fall). A converged run
        (the loss fell a lot, or approaches zero) is not a plateau, nor is one whose validation
        loss or metrics are still improving (away from chance, also a validation loss whose fitted
        fall over the last half clears `z` standard errors, however small, at no more than
        `SETTLING_PACE` (half) of its pace before: settling onto a floor that is unknown there, an
        autoencoder's cross-entropy on pixel values stops far above 0; a rate too small creeps
        down in a straight line and is still told), nor one
        away from chance whose training score (a
        higher-is-better metric: accuracy, IoU, F1) still climbs over the window beyond its own
        scatter (the same `z` and `tolerance` test the loss failed: the loss has a floor or an
        offset unseen here, a Dice loss near 1), nor a warmup in progress. During a run it judges
        after `min_progress` of the configured steps (or, when their number is unknown, after a
        stall of `live_steps` steps / `live_epochs` epochs); at the end of a run it judges
        from `min_steps` steps or `min_epochs` epochs.
        (2) For a classification run with a log-loss (cross-entropy, NLL, binary
        cross-entropy) whose class labels it counted over the first pass of both splits, it
        compares the validation curves with a model that ignores its inputs: after
        `min_validations` validations, it fires when the best validation loss is not below the
        entropy of the validation labels (the least loss such a model can expect; predicting
        the training label shares scores about as much) less what chance lets it reach on that
        many samples (z^2 / 2n, z = `prior_z`), a logged plain validation accuracy never beat
        the most frequent validation class's share by `prior_z` binomial standard errors
        either, and the validation loss is not improving. Not for a loss summed over the
        batch's rows (`RunInfo.loss_summed_over`): its validation loss adds up the rows of
        each validation batch, not on the per-sample scale of the labels' entropy.
        The training loss may well be falling meanwhile: a network memorises labels that
        carry no information about its inputs (a training-loss plateau after this finding is
        the same cause and is not reported again). Needs the labels: the callbacks and `Monitor`
        (`log_batch`) have them, logs replayed by `mlcheck analyze` do not.
        The hint follows the update/weight ratios measured: below 10^-5 (`lr-too-low`'s bound)
        it names the learning rate, or the gradient clipping when one is set; at 10^-4 or more
        (a usual rate) it leads with the labels, dead or frozen layers and heavy dropout. The
        learning rates logged come first: a rate fallen under `LR_FALLEN_FRACTION` (0.2x) of
        its peak names the schedule (a Keras `LearningRateScheduler` whose function multiplies
        the rate it is handed compounds), one still climbing at its highest a warm-up that never
        ended (a warm-up in steps stepped once per epoch); a
        validation loss at the prior while the training loss is at the prior too is a model
        that learned nothing at all, not necessarily labels that carry no information.
        (3) For a regression with a squared or absolute error whose targets it kept over the
        first pass of both splits (at most 2^18 values per split), the same judgement against a
        constant (key `val-constant`): after `min_validations` validations, the best validation
        loss not below the loss of predicting the training targets' mean per output (median,
        for an absolute error) for every validation sample, and not improving. No margin below
        that level: a healthy regression of weak signal (R^2 0.1-0.2 on 100 validation rows)
        beats it by less than a chance margin would ask. The hint names targets shuffled apart from
        their inputs when the training loss beat the constant on the training targets (the model
        memorised them). An absolute error's stall in (1) is set against the training targets'
        median (their mean absolute deviation from it) and all zeros (their mean absolute value),
        as a squared error's against their variance and E[y^2].
        (4) A classification run still at chance in both splits (key `chance`): after
        `chance_validations` validations and `min_steps` training steps (a log whose steps count
        epochs: its validations alone), it fires when every validation loss so far sits no lower
        than the level of a model that ignores its inputs less its noise margin, every logged plain
        validation accuracy no higher than the majority share plus its margin, and the last epoch's
        training loss no lower than `tolerance` below the training level, while the learning rate is
        not warming up nor fallen near 0 (a schedule that explains the stall is `lr-schedule`'s to
        tell) and the loss is not weighted per class (a balanced-weight model scores above the
        labels' entropy and below the majority share while it learns). With the labels counted over
        the first pass of both splits (the callbacks) the levels are the class prior's: the
        validation labels' entropy less z^2 / 2n, the majority share plus `prior_z` binomial
        standard errors over the n validation rows, the training labels' entropy; from
        `min_validations` on, the prior's own verdict (2) judges instead, its hint telling memorised
        labels apart. Without them (`mlcheck analyze`: C read from a log whose loss and accuracy
        agree on ln(C) and 1/C, accuracies in percent included) they are ln(C) less `tolerance` and
        1/C plus `CHANCE_ACCURACY_BAND` (a quarter) of it, from `CHANCE_MIN_CLASSES` (3) classes,
        and a validation accuracy must be logged. The other rules wait for 5-10 epochs or a quarter
        of the run, and the prior's verdict for `min_validations`: a run configured for 40 epochs at
        chance is told at its third validation instead of its sixth or tenth. A run that learns
        anything, even slowly, gets below one of the levels within its first epochs (the training
        loss first).
        A binary cross-entropy on targets between 0 and 1 (an autoencoder on pixel values, soft
        labels) cannot fall below the targets' own entropy (BCE(y, p) >= H(y)): live, where the
        first pass shows such targets (or, for an autoencoder fed its inputs alone, such
        inputs: `RunInfo.target_is_input`), the fall is measured above that floor,
        (initial - loss) / (initial - floor), and the chance level ln(2) within the room above
        it. A log has no targets: there, an error metric logged beside the loss (`mse`, `mae`,
        `mean_squared_error`, `rmse`) that fell by more than `min_drop` over the same epochs
        holds a fall-based finding as an INFO that says so.

    Why it matters:
        A loss stuck near its starting value or at chance level means the model is not
        learning: the rest of the run will not fix it. A validation loss that never beats the
        class prior means the model learned nothing about the labels that carries over to new
        inputs: the usual cause is labels that no longer belong to their inputs.

    How to fix:
        Check that the model can learn at all (`mlcheck sanity model.py`: overfit one batch,
        loss at init). Common causes: learning rate too low, labels not matching inputs,
        a frozen or dead layer, a wrong output activation, a bug that detaches the loss. When
        the validation loss never beat the prior, check that inputs and labels stay paired:
        shuffled or split with one permutation for both, the right label column, and no
        augmentation or transform applied to the labels.

    Example:
        X, y = load_digits(return_X_y=True)
        rng = np.random.default_rng(0)
        rng.shuffle(X)  # shuffles the rows of X...
        rng.shuffle(y)  # ...and y in another order: the labels no longer match
        x_train, y_train = X[:1500], y[:1500]
        # the training loss stays near ln(10), or falls as the model memorises; the validation
        # loss never beats predicting the class shares
        model.fit(x_train, y_train, validation_split=0.2, epochs=50)

    Use instead:
        X, y = load_digits(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(y))
        X, y = X[order], y[order]  # one permutation for both
        x_train, y_train = X[:1500], y[:1500]
        model.fit(x_train, y_train, validation_split=0.2, epochs=50)

    Args:
        min_drop: a loss that fell by less than this fraction of its initial value is at a
            poor level. Default 0.1.
        regression_min_drop: the same for a regression run (`RunInfo.task == "regression"`).
            Default 0.02: a regression loss has no chance level, and the error the data allows
            is unknown (a hard target legitimately levels off a few percent below its start),
            so only a loss that hardly moved is a stall.
        chance_fraction: with C classes known, a loss above this fraction of ln(C) is at a
            poor level. Default 0.9.
        tolerance: a decrease under this fraction of the loss over the last half of the run is
            a stall. Default 0.02 (TheDeepChecker uses 5% per window, a shorter one).
        z: standard errors a decrease must exceed to count as progress. Default 3.0.
        min_steps / min_epochs: least run length to judge at all. Defaults 100 / 5.
        live_steps / live_epochs: stall length to judge during a run of unknown length.
            Defaults 1000 / 10: a slow start is not a stall.
        min_progress: share of a run of known length before judging during the run. Default
            0.25.
        zero_level: a loss at or below this (in absolute value) is at numerical zero: converged,
            not stalled. Default 1e-4, the smallest change Keras' `ReduceLROnPlateau` counts
            (`min_delta`): below it no stall can be told from noise.
        exploded_factor: a stall that followed a loss this many times its level and its initial
            value points at a learning rate far too high, not too low (the hint says so).
            Default 10.0, `loss-divergence`'s explosion factor.
        min_validations: validations before judging the validation loss against the class
            prior. Default 6: the bias alone reaches the prior within an epoch or two; a hard
            task that learns slowly is below the prior's loss by the fifth epoch, or its
            validation loss is still improving and the verdict waits. It waits too while the
            validation loss falls beyond its own scatter at a pace that would beat the prior
            within `min_steps` updates of the first validation: six
            validations of one update each (`limit_train_batches=0.1`) are too few updates to
            expect the prior beaten.
        chance_validations: validations before a run still at chance in both splits is told
            (key `chance`). Default 3: the output bias alone reaches the prior within an epoch or
            two, so a run that learns anything is below it by the third; the training loss must
            sit at the prior too, after `min_steps` steps, so a slow start that moves is not one.
        prior_z: standard errors (of the validation loss of a model that ignores its inputs,
            and of the majority rate) by which the best validation scores must beat the class
            prior to count. Default 3.0 (three sigma, as `z`): the best of several epochs is
            an optimistic pick, so a smaller margin would flag runs that learn a little.
        max_classes: more distinct labels than this are not counted. Default 1000, as
            `class-imbalance`.
        trained_start_fraction: a classification loss whose first 10 steps sit below this
            fraction of ln(C) (or of the training labels' entropy, the loss of predicting the
            class shares, when smaller) comes from trained weights. Default 0.5: a freshly
            initialised classifier predicts about uniformly, so its loss starts at about ln(C)
            (Karpathy, "A Recipe for Training Neural Networks", 2019: "verify loss @ init"),
            at or above that entropy; half of it is no untrained network's start, and a run
            that got there within its first 10 steps has fallen a lot anyway. `lr-too-low`
            takes the same fact with the same default.
        max_stall_drop: a stall is called only where the noise rules out a fall larger than
            this fraction of the loss over the last half: the fitted fall plus `z` standard
            errors stays below it. Default 0.1, `min_drop`: a fall the noise cannot tell from
            one as large as a run that counts as learning is no evidence of a stall (a slow
            fine-tune with batches of a few samples: each step's loss is noise). Not applied to
            a loss near the chance level or the class prior: there the level is the evidence
            (BatchNorm trained on batches of 2 sits at ln(10) with a window fall of 0.09 +- 0.12).
    """

    id = "loss-plateau"
    family = "optimization"
    severity = Severity.WARNING
    reads_probe = True  # the labels only
    #: the class prior needs the label counts of a whole pass over each split
    consumes = frozenset({Signal.EVERY_BATCH})
    judges_batches = False  # the counts serve a verdict on the validation curve: sanity skips it
    #: root causes that, when found first, explain this check's findings (they then say so)
    explained_by = frozenset(
        {
            "nonfinite-input",
            "output-loss-mismatch",
            "unused-parameters",
            "unshuffled-data",
            "dead-units",
            "vanishing-gradient",
            "unnormalized-input",  # regression targets of 1e5: the loss cannot come down at a normal rate
            "lr-too-high",  # a rate that threw the weights away leaves the loss stuck at chance
            "frozen-parameters",  # a layer frozen by mistake, never trained: the rest cannot fit around it
            "loss-at-init:summed",  # a summed loss's steps threw the weights away
            "batch-dependence:batchnorm-small-batch",  # BatchNorm's batch statistics at batches of 2: noise
            "batch-dependence",  # a reshape that mixes samples: each label meets another sample's inputs
            "overfit-batch",  # a model that cannot fit 16 samples cannot bring the loss down on all of them
            "lr-schedule",  # a rate decayed to ~0 (a schedule counted in epochs, stepped per batch) stops the loss
        }
    )

    def __init__(
        self,
        min_drop: float = 0.1,
        chance_fraction: float = 0.9,
        tolerance: float = 0.02,
        z: float = 3.0,
        min_steps: int = 100,
        min_epochs: int = 5,
        live_steps: int = 1000,
        live_epochs: int = 10,
        min_progress: float = 0.25,
        regression_min_drop: float = 0.02,
        zero_level: float = 1e-4,
        exploded_factor: float = 10.0,
        min_validations: int = 6,
        chance_validations: int = 3,
        prior_z: float = 3.0,
        max_classes: int = 1000,
        trained_start_fraction: float = TRAINED_START_FRACTION,
        max_stall_drop: float = 0.1,
    ) -> None:
        self.trained_start_fraction = trained_start_fraction
        self.max_stall_drop = max_stall_drop
        self.exploded_factor = exploded_factor
        self.min_validations = min_validations
        self.chance_validations = chance_validations
        self.prior_z = prior_z
        self.max_classes = max_classes
        self.min_drop = min_drop
        self.zero_level = zero_level
        self.regression_min_drop = regression_min_drop
        self.chance_fraction = chance_fraction
        self.tolerance = tolerance
        self.z = z
        self.min_steps = min_steps
        self.min_epochs = min_epochs
        self.live_steps = live_steps
        self.live_epochs = live_epochs
        self.min_progress = min_progress
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self._labels = FirstPassLabels(self.max_classes)
        self._counted = False  # the first epoch's passes over both splits are complete
        self._prior_judged = False  # the validation curves were set against the class prior
        self._off_chance = False  # a validation loss or accuracy left chance: `chance` cannot fire
        self._targets = TargetMoments()  # a squared-error regression's training targets, first pass
        # a regression's targets of each split, first pass, as values: an absolute error's best
        # constant is their median; the validation curve is set against a constant's loss
        self._kept_train, self._kept_val = KeptTargets(), KeptTargets()

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        if self._counted:
            return ()
        y = batch.targets
        if run.info.loss in SQUARED_LOSSES and batch.split == "train" and y is not None and y.dtype.kind in "fiu":
            self._targets.add(batch, y)
        kept = {"train": self._kept_train, "val": self._kept_val}.get(batch.split)
        if run.info.loss in REGRESSION_LOSSES and kept is not None and y is not None and y.dtype.kind in "fiu":
            kept.add(batch, y)
        self._labels.add(batch, run)
        return ()

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        # the first training epoch: of the class labels counted, or of the regression targets
        passes = (self._labels.train, self._targets, self._kept_train)
        first = next((p.epoch for p in passes if p.epoch is not None), None)
        if not self._counted and first is not None and run.epoch is not None and run.epoch >= first:
            self._counted = True
        early = list(self._one_of_several(run, self._still_at_chance(run)))
        return [*early, *super().on_epoch(run), *self._against_prior(run), *self._against_constant(run)]

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return [*super().on_end(run), *self._against_prior(run), *self._against_constant(run)]

    def _class_prior(self, run: RunState) -> ClassPrior | None:
        """The class prior from the first pass's label counts; None before both passes are
        complete, when only a sample of the batches was seen, or with too many classes."""
        train, val = self._labels.train, self._labels.val
        if not (self._counted and train.contiguous and val.contiguous) or len(train.counts) > self.max_classes:
            return None
        return ClassPrior.of(train.counts, val.counts)

    def _prior_entropy(self) -> float | None:
        """The entropy of the training labels of the first pass (the loss of predicting their
        shares), or None when they are not all counted yet."""
        train = self._labels.train
        if not (self._counted and train.contiguous) or len(train.counts) < 2:
            return None
        return label_entropy(train.counts.values())

    def _against_prior(self, run: RunState) -> list[Finding]:
        """The validation loss never beat predicting the class prior (WARNING, once)."""
        if self._prior_judged or self._fired or run.info.loss not in LOG_LOSSES:
            return []
        if run.info.loss_summed_over is not None and run.info.loss_summed_over > 1:
            return []  # summed over each validation batch's rows: not on the entropy's per-sample scale
        b = run.val_loss.buckets(include_open=True)
        if int(b["n"].sum()) < self.min_validations or run.val_loss.nonfinite:
            return []  # too few validations yet; a non-finite one is nonfinite-loss's business
        prior = self._class_prior(run)
        if prior is None or improving(run.val_loss, higher=False):
            return []  # no class counts, or the validation loss is still coming down: wait
        accuracy = next(
            (series for name, series in run.val_metrics.items() if is_plain_accuracy(name) and series.finite_count),
            None,
        )
        best_acc = float(np.max(accuracy.buckets(include_open=True)["max"])) if accuracy is not None else None
        i_best = int(np.argmin(b["min"]))
        verdict = prior_beaten(prior, float(b["min"][i_best]), best_acc, self.prior_z)
        if not verdict.beaten and closing_on(b, verdict.loss_bound, self._prior_horizon(b, run), self.z):
            return []  # still falling at a pace that beats the prior within the horizon: wait
        self._prior_judged = True  # judged once: beaten, it learned something and the verdict stands
        if verdict.beaten:
            return []
        self._fired = True  # the same cause: a training-loss plateau later would repeat it
        return [self._prior_finding(run, prior, verdict, int(b["x1"][i_best]), int(b["n"].sum()))]

    def _prior_horizon(self, b: Mapping[str, np.ndarray], run: RunState) -> float:
        """The epoch (the validation curve's x) by which a validation loss still falling should
        beat the class prior for the verdict to wait: `min_steps` updates after the first
        validation (this check's least run length to judge a stall at all), at the run's updates
        an epoch so far. `min_validations` validations of one update each (`limit_train_batches`)
        are 6 updates: too few to expect the prior beaten, while the validation loss falling
        steadily says the run is learning. A run past `min_steps` updates is judged as before: a
        slow fall there is a stall's symptom (a rate warming up per epoch). The first validation
        itself (no wait) where the updates an epoch are unknown."""
        first = float(b["x0"][0])
        if run.step is None or run.epoch is None or run.step <= 0:
            return first
        per_epoch = run.step / (run.epoch + 1)
        return first + self.min_steps / per_epoch

    def _chance_levels(self, run: RunState) -> ChanceLevels | None:
        """The levels a model that ignores its inputs sits at, with their noise margins: from the
        first pass's class counts where both splits were counted whole (the validation labels'
        entropy less z^2 / 2n, the majority share plus `prior_z` binomial standard errors), else
        from the C classes known (ln(C) less `tolerance` of it, 1/C plus `CHANCE_ACCURACY_BAND`
        of it: no validation row count to size a standard error by). None where neither is known,
        or the loss is summed over the batch's rows, or not on ln(C)'s scale."""
        if run.info.task != "classification" or (run.info.loss_summed_over or 1) > 1:
            return None
        if unnamed_off_scale(run, self._train.start) or starts_off_chance(run) is not None:
            return None  # a loss on another scale than ln(C): the level says nothing
        prior = self._class_prior(run) if run.info.loss in LOG_LOSSES else None
        if prior is not None:
            return ChanceLevels(
                train_loss=(1 - self.tolerance) * prior.entropy,
                val_loss=prior.loss_bound(self.prior_z),
                val_accuracy=prior.majority_rate + prior.accuracy_margin(self.prior_z),
                words=f"the class prior's {prior.entropy:.4g} (entropy of the training labels)",
                accuracy_words=f"{prior.majority_rate:.3g}, the share of class {prior.majority_class}",
                n_val=prior.n_val,
            )
        chance = run.info.chance_level()
        classes = run.info.num_classes
        if chance is None or not classes or (run.info.loss is not None and run.info.loss not in LOG_LOSSES):
            return None
        if classes < CHANCE_MIN_CLASSES:
            return None  # two classes without row counts: a weak signal sits there too
        return ChanceLevels(
            train_loss=(1 - self.tolerance) * chance[0],
            val_loss=(1 - self.tolerance) * chance[0],
            val_accuracy=(1 + CHANCE_ACCURACY_BAND) / classes,
            words=f"the chance level {chance[1]}",
            accuracy_words=f"{1 / classes:.3g} (1/{classes})",
            n_val=None,
        )

    def _still_at_chance(self, run: RunState) -> list[Finding]:
        """Training and validation both still at chance after `chance_validations` validations and
        `min_steps` steps (WARNING, once, key `chance`): the model learned nothing at all, neither
        on its training data nor on new inputs. Each validation's loss not below the input-ignoring
        level less its noise margin, each logged plain validation accuracy not above the majority
        share plus its margin, and the last epoch's training loss not below the training level: a
        run that learns a little from the start (the usual case, even slowly) is below one of them
        within its first epochs."""
        if not self._chance_judged_now(run):
            return []
        b = run.val_loss.buckets(include_open=True)
        validations = int(b["n"].sum())
        if validations < self.chance_validations:
            return []  # too early: the output bias alone takes an epoch or two to reach the prior
        if not self._had_time_to_move(run) or _schedule_hint(run) is not None:
            # a rate the schedule took (nearly) to 0, or still warming up, explains a model at
            # chance: `lr-schedule` tells it, and the later stall verdicts follow from it
            return []
        levels = self._chance_levels(run)
        if levels is None or (levels.n_val is not None and validations >= self.min_validations):
            return []  # unknown; or the prior's own verdict is due, whose hint tells memorising apart
        best_loss = float(np.min(b["min"]))
        if not (math.isfinite(best_loss) and best_loss >= levels.val_loss):
            self._off_chance = math.isfinite(best_loss)  # every loss so far must sit at chance
            return []
        best_acc = _best_val_accuracy(run)
        if best_acc is not None and not best_acc <= levels.val_accuracy:
            self._off_chance = True
            return []
        if best_acc is None and levels.n_val is None:
            return []  # C inferred from the log alone: its loss and accuracy must agree that it guesses
        train = epoch_train_levels(run)
        if not train:
            return []
        last_train = train[max(train)]
        if not (math.isfinite(last_train) and last_train >= levels.train_loss):
            return []
        self._fired = True
        acc = ""
        if best_acc is not None:
            acc = f", validation accuracy at most {best_acc:.3g} against {levels.accuracy_words}"
        return [
            self.finding(
                f"Training and validation are both still at chance after {validations} validations: the best "
                f"validation loss {best_loss:.4g} and the last epoch's training loss {last_train:.4g} sit at "
                f"or above {levels.words}{acc}. The model has learned nothing yet.",
                evidence={
                    "best_val_loss": sig(best_loss),
                    "train_loss": sig(last_train),
                    "chance_val_loss_bound": sig(levels.val_loss),
                    "chance_train_loss_bound": sig(levels.train_loss),
                    "best_val_accuracy": None if best_acc is None else sig(best_acc),
                    "chance_accuracy_bound": sig(levels.val_accuracy),
                    "val_samples": levels.n_val,
                    "validations": validations,
                    "steps": run.step,
                },
                hint=self._chance_hint(run),
                step=run.step,
                epoch=run.epoch,
                key="chance",
            )
        ]

    def _chance_judged_now(self, run: RunState) -> bool:
        """Whether `_still_at_chance` judges at this epoch: not once the run left chance or a
        verdict was given, and as often as the other epoch-curve judgements (it reads every
        bucket)."""
        if self._fired or self._prior_judged or self._off_chance or run.val_loss.nonfinite:
            return False
        # a loss weighted per class trains towards balanced predictions: its model scores above
        # the labels' entropy and below the majority share on validation while it learns (batch
        # 16's k2 at 20:4:1), so neither level tells chance there
        return not run.info.class_weights and epoch_judgement_due(run.val_loss)

    def _had_time_to_move(self, run: RunState) -> bool:
        """Whether the run took `min_steps` updates (a log whose steps count epochs cannot say: its
        validations alone count; a live run of one update an epoch can, `RunInfo.steps_are_updates`)
        and its learning rate is not still warming up."""
        steps = run.step if run.step is not None else 0
        info = run.info
        per_epoch = info.max_epochs is not None and info.total_steps is not None
        per_epoch = per_epoch and info.total_steps <= info.max_epochs + 1 and not info.steps_are_updates
        if steps < self.min_steps and not per_epoch:
            return False  # too few updates to expect any movement
        warming = run.lr.finite_count >= 2 and rising(run.lr, float(run.lr.buckets()["x0"][0]), float(steps))
        return not warming  # a warm-up in progress keeps the steps small

    def _chance_hint(self, run: RunState) -> str:
        """The updates measured where they explain a model stuck at chance (a schedule that does is
        `lr-schedule`'s to tell: the rule waits); else
        the usual causes, most likely first."""
        ratio = _update_level(run)
        if ratio is not None and ratio < _STILL_LOG_RATIO:
            return _still_hint(ratio, run.info.grad_clip)
        return (
            "Check, in this order: the learning rate (too low to move, or so high the first steps threw the "
            "weights away: try 3-10x either way); that inputs and labels are shuffled and split together (one "
            "permutation for both, the right label column); that the model is not frozen or detached "
            "(requires_grad, trainable, a .detach() or torch.no_grad() in forward, every parameter in the "
            "optimizer); and that the loss fits the output (logits into CrossEntropyLoss, not softmax; "
            "from_logits= as the last layer gives). `mlcheck sanity model.py` tests the model can fit one "
            "batch. Suppress with suppress=['loss-plateau'] if the run is meant to sit at chance."
        )

    def _against_constant(self, run: RunState) -> list[Finding]:
        """A regression's validation loss never beat predicting one constant for every validation
        sample, by more than chance allows (WARNING, once): the counterpart of `_against_prior`."""
        absolute = run.info.loss in ABSOLUTE_LOSSES
        if self._prior_judged or self._fired or run.info.loss not in REGRESSION_LOSSES:
            return []
        if run.info.loss_summed_over is not None and run.info.loss_summed_over > 1:
            return []  # summed over each validation batch: not on the per-sample scale of the levels
        b = run.val_loss.buckets(include_open=True)
        if int(b["n"].sum()) < self.min_validations or run.val_loss.nonfinite:
            return []  # too few validations yet; a non-finite one is nonfinite-loss's business
        train, val = self._kept_train, self._kept_val
        if not (self._counted and train.contiguous and val.contiguous):
            return []  # a sample of batches: the levels would be a sample's
        yt, yv = train.values(), val.values()
        if yt is None or yv is None or yt.shape[1] != yv.shape[1] or improving(run.val_loss, higher=False):
            return []
        centre = np.median if absolute else np.mean
        optimal, _ = constant_error(yv, centre(yv, axis=0), absolute)  # the least any constant scores here
        if optimal <= 0:
            return []  # constant validation targets: a constant fits them
        # the bound is the simplest input-ignoring prediction, the training targets' mean (median)
        # for every validation sample, with no margin below it: a healthy weak regression (R^2 0.1-0.2
        # on 100 validation rows) gets less below it than a chance margin of z^2 / n would ask
        # (batch 17's false-alarm study), and a model that never beat it at all learned nothing that
        # carries over
        bound = constant_error(yv, centre(yt, axis=0), absolute)[0]
        i_best = int(np.argmin(b["min"]))
        best = float(b["min"][i_best])
        self._prior_judged = True  # judged once: beaten, it learned something and the verdict stands
        if best < bound:
            return []
        self._fired = True  # the same cause: a training-loss plateau later would repeat it
        levels = {
            "best_val_loss": best,
            "constant_val_loss": optimal,
            "train_constant_val_loss": bound,
            "train_constant_train_loss": constant_error(yt, centre(yt, axis=0), absolute)[0],
        }
        # what predicting 0 scores on the training targets: where an untrained network starts
        start = TargetStart(
            constant_error(yt, np.zeros(yt.shape[1]), absolute)[0], float(centre(yt)), float(np.std(yt))
        )
        return [self._constant_finding(run, absolute, levels, int(b["x1"][i_best]), len(yv), start)]

    def _constant_finding(
        self,
        run: RunState,
        absolute: bool,
        levels: dict[str, float],
        best_epoch: int,
        n_val: int,
        start: TargetStart,
    ) -> Finding:
        """`_against_constant`'s finding; a training loss below the constant's on the training
        targets while validation never beat one is memorisation (targets apart from their inputs);
        one still nearer what predicting 0 scores than the constant's has not reached the targets'
        level yet (targets far from 0, fitted by a network whose outputs start near 0)."""
        train = epoch_train_levels(run)
        fell = ""
        if len(train) >= 2:
            first, last = train[min(train)], train[max(train)]
            if last < first:
                fell = f", while the training loss fell from {first:.3g} to {last:.3g}"
        what = "median" if absolute else "mean"
        spread = "mean absolute deviation from their median" if absolute else "variance"
        constant_train = levels["train_constant_train_loss"]
        last_train = train[max(train)] if train else math.nan
        if start.short_of(last_train, constant_train):
            hint = (
                f"The training loss ({last_train:.4g}) is still nearer the {start.zero_loss:.4g} of predicting 0 "
                f"than the {constant_train:.4g} of predicting the training targets' {what} ({start.centre:.4g}): the "
                f"model has not yet reached the targets' level. Targets far from 0 (standard deviation "
                f"{start.std:.4g}) are slow to reach for a network whose outputs start near 0 and move a little "
                "each step: standardise the targets with the training split's mean and standard deviation (and "
                "invert it for reporting), or start the output layer's bias at their mean; more epochs or a larger "
                "learning rate also get there."
            )
        elif last_train < constant_train:
            hint = (
                "The targets likely carry no information about the inputs the model sees (it memorised the "
                "training targets instead): check that inputs and targets are shuffled and split together (one "
                "permutation for both, not `np.random.shuffle(y)` alone), that the target column is the right "
                "one, that every split's features are scaled with the training statistics, and that outputs "
                "and targets have the same shape."
            )
        else:
            hint = (
                "The training loss did not beat a constant either: nothing the model learned carries over "
                "from its inputs. Check that inputs and targets are shuffled and split together (one permutation "
                "for both, not `np.random.shuffle(y)` alone) and that the target column is the right one; then "
                "that the model can fit one batch (`mlcheck sanity model.py`), the learning rate, and a dead or "
                "squashing output layer."
            )
        return self.finding(
            f"Validation never beat predicting a constant: the best validation loss {levels['best_val_loss']:.4g} "
            f"(epoch {best_epoch}) never got below {levels['train_constant_val_loss']:.4g}, the loss of predicting "
            f"the training targets' {what} for every one of these {n_val} validation targets (the best constant "
            f"for them scores {levels['constant_val_loss']:.4g}, their {spread}){fell}.",
            evidence={
                **{k: sig(v) for k, v in levels.items()},
                "best_epoch": best_epoch,
                "constant": what,
                "val_samples": n_val,
            },
            hint=hint,
            epoch=run.epoch,
            key="val-constant",
        )

    def _prior_finding(self, run: RunState, prior: ClassPrior, verdict, best_epoch: int, validations: int) -> Finding:
        train = epoch_train_levels(run)
        fell = ""
        if len(train) >= 2:
            epochs = sorted(train)
            first, last = train[epochs[0]], train[epochs[-1]]
            if last < first:
                fell = f", while the training loss fell from {first:.3g} to {last:.3g}"
        acc = ""
        if verdict.best_accuracy is not None:
            acc = (
                f"; validation accuracy peaked at {verdict.best_accuracy:.3g} against {prior.majority_rate:.3g} "
                f"for always answering class {prior.majority_class}"
            )
        return self.finding(
            f"Validation never beat predicting the class prior: the best validation loss {verdict.best_loss:.4g} "
            f"(epoch {best_epoch}) never got below {verdict.loss_bound:.4g}, the least any prediction that ignores "
            f"the inputs can score on these {prior.n_val} validation labels ({prior.val_entropy:.4g}) less what "
            f"chance allows (predicting the training label shares scores {prior.loss:.4g}){acc}{fell}.",
            evidence={
                "best_val_loss": sig(verdict.best_loss),
                "best_epoch": best_epoch,
                "prior_loss": sig(prior.loss),
                "prior_entropy": sig(prior.entropy),
                "val_label_entropy": sig(prior.val_entropy),
                "prior_loss_bound": sig(verdict.loss_bound),
                "best_val_accuracy": None if verdict.best_accuracy is None else sig(verdict.best_accuracy),
                "majority_rate": sig(prior.majority_rate),
                "majority_class": prior.majority_class,
                "accuracy_bound": None if verdict.accuracy_bound is None else sig(verdict.accuracy_bound),
                "val_samples": prior.n_val,
                "validations": validations,
            },
            hint=self._prior_hint(run, prior, train),
            epoch=run.epoch,
            key="val-prior",
        )

    def _prior_hint(self, run: RunState, prior: ClassPrior, train: dict[int, float]) -> str:
        """Labels that carry no information, where the training loss got below the prior (the
        model memorised them); else the model learned nothing at all, on its training data
        either, and the hint leads with why it cannot learn (the updates measured, then the
        model), labels last."""
        labels = (
            "check that inputs and labels are shuffled and split together (one permutation for both), "
            "that the label column is the right one, that no augmentation or transform is applied "
            "to the labels, and that every split encodes the classes alike (one LabelEncoder or class "
            "list, fitted on the training labels and applied to each split: one fitted per split gives "
            "the same class another id where a split lacks a class)."
        )
        last = train[max(train)] if train else None
        if last is None or last < (1 - self.tolerance) * prior.entropy:
            return "The labels likely carry no information about the inputs: " + labels
        schedule = _schedule_hint(run)
        if schedule is not None:
            return schedule + " The training loss did not beat the class prior either: the model is not learning."
        ratio = _update_level(run)
        if ratio is not None and ratio < _STILL_LOG_RATIO:
            return (
                _still_hint(ratio, run.info.grad_clip)
                + " The training loss did not beat the class prior either: the model is not learning at all."
            )
        return (
            "The training loss did not beat the class prior either: the model learned nothing at all. "
            "Check that it can fit one batch (`mlcheck sanity model.py`), its initialisation (all-zero "
            "weights never break the symmetry between units), dropout heavy enough to drown the signal, "
            "and the learning rate; then " + labels
        )

    def _soft_floor(self, run: RunState) -> float | None:
        """A binary cross-entropy's floor on soft training targets (their entropy, from the first
        pass: `FirstPassLabels.soft_floor`); None where unknown, or for a summed loss."""
        rows = run.info.loss_summed_over
        return None if rows is not None and rows > 1 else self._labels.soft_floor()

    def _input_ignoring_levels(self, run: RunState, level: float) -> tuple[tuple[float, str] | None, float | None]:
        """(the chance level and how it was got, the training labels' entropy): the levels a
        model that ignores its inputs sits at, each None where unknown. Under class weights the
        adapter saw (`RunInfo.class_weights`) the second is the weighted loss's own least level
        (`weighted_prior_loss`: ln(C) for balanced weights), not the labels' entropy. An unnamed loss that
        started far above ln(C) (InfoNCE over the batch, a triplet loss: `unnamed_off_scale`) has
        neither, unless it stalls at ln(C) itself (within `chance_fraction`'s 10% either side): a
        uniform guess after a confidently wrong start, whatever the loss's name. Otherwise it is
        judged by its fall alone."""
        if unnamed_off_scale(run, self._train.start):
            chance = run.info.chance_level()
            at_chance = chance is not None and abs(level - chance[0]) <= (1 - self.chance_fraction) * chance[0]
            return (chance, None) if at_chance else (None, None)
        entropy = self._prior_entropy() if run.info.task == "classification" else None
        if entropy is not None and run.info.class_weights:
            entropy = weighted_prior_loss(self._labels.train.counts, run.info.class_weights)
        return run.info.chance_level(), entropy  # in the loss's units: a summed loss's is larger

    def _judge(self, run: RunState, c: Curve, initial: float, unit: str, final: bool = False) -> list[Finding]:
        step_unit = unit == "step"
        if self._too_early(run, c, step_unit, final):
            return []
        # the level first: a loss that has come down far is no plateau (the usual case, cheap)
        level = median(c.mean[-max(3, len(c) // 10) :])
        if abs(level) <= self.zero_level:
            return []  # at numerical zero: converged
        chance_level, entropy = self._input_ignoring_levels(run, level)
        chance = None if chance_level is None else chance_level[0]
        floor = self._soft_floor(run) or 0.0
        fell = fall_above_floor(initial, level, floor)
        # near chance within the room above the floor: soft targets' entropy may sit close to ln(2)
        near_chance = chance is not None and level - floor > self.chance_fraction * (chance - floor)
        rows = run.info.loss_summed_over
        summed = entropy is not None and rows is not None and rows > 1
        if summed:
            entropy *= rows  # in the loss's units, as the chance level: a summed loss's is that many times larger
        # the training loss of predicting the class prior: with imbalanced classes it sits well
        # below ln(C), and a loss stalled there learned nothing beyond the class shares
        # (an unweighted log-loss's output bias alone takes it to the entropy, so a stall well above
        # it is a loss weighted per class, whose input-ignoring floor is not the entropy)
        at_prior = entropy is not None and (1 - self.tolerance) * entropy <= level <= PRIOR_CEILING * entropy
        constant = self._at_constant(run, level)
        near_chance = near_chance or at_prior or constant is not None
        min_drop = self.regression_min_drop if run.info.task == "regression" else self.min_drop
        # from trained weights the loss starts near its floor: a small fall is no stall there
        fell_little = (
            math.isfinite(fell)
            and fell < min_drop
            and not starts_trained(run, initial, entropy, self.trained_start_fraction)
        )
        if not (near_chance or fell_little):
            return []
        w = max(3, len(c) // 2)
        xw, yw = c.x[-w:], c.mean[-w:]
        if step_unit and rising(run.lr, float(xw[0]), float(xw[-1])):
            return []
        drop, se = trend_drop(xw, yw)
        if not math.isfinite(drop):
            return []
        moving = abs(drop) > self.z * se and abs(drop) > self.tolerance * abs(level)
        if moving:
            return []  # still improving, or rising (loss-divergence's business): not a stall
        # below chance: the noise leaves room for a real fall (too early to call it a stall), or the
        # loss falls slowly but steadily (not a stall: lr-too-low's business)
        if not near_chance and (
            drop + self.z * se > self.max_stall_drop * abs(level)
            or _falls_past(c, xw, drop, se, self.z, initial, level, min_drop)
        ):
            return []
        # a score still climbing says the model learns: on validation rows, or (away from chance, where the
        # level is no evidence) on the training rows, whose loss may have a floor unseen here (a Dice loss near 1)
        if self._validationimproving(run, near_chance):
            return []
        # an error metric logged beside (`metrics=["mse"]`) that fell far says the model learns:
        # the loss has a floor above 0 (cross-entropy on soft targets: their entropy)
        metric_fall = None if near_chance else _error_metric_fall(run, float(xw[-1]), min_drop)
        self._fired = True
        stalled_for = int(c.x[-1] - xw[0]) + c.width
        peak = float(np.nanmax(c.mean))
        why, hint = _plateau_reason(
            level,
            initial,
            fell,
            chance if near_chance else None,
            chance_level[1] if chance_level is not None else "",
            _update_level(run),
            run.info.grad_clip,
            _schedule_hint(run),
        )
        if at_prior and not (chance is not None and level > self.chance_fraction * chance):
            summed_rows = f" ({rows} rows summed)" if summed else ""
            of = "the training labels' shares under the loss's class weights" if run.info.class_weights else ""
            why = (
                f"no lower than {entropy:.4g}, the entropy of {of or 'the training labels'}{summed_rows}: the loss of "
                "predicting the class shares without looking at the inputs"
            )
        why, hint = self._constant_reason(constant, level) if constant is not None else (why, hint)
        if peak > self.exploded_factor * max(abs(level), abs(initial)):
            why += f", after the loss exploded to {peak:.4g}"
            hint = (
                f"The loss exploded to {peak:.4g} before it stalled: the learning rate is likely far too high "
                "(lower it 10-100x, add warmup or gradient clipping); a model wrecked by one bad step "
                "often sits at the chance level afterwards."
            )
        held, severity, hint = _held_by_metric(metric_fall, unit, hint)
        return [
            self.finding(
                f"Training loss has plateaued at {level:.4g}, {why}, for the last {stalled_for} {unit}s{held}.",
                severity=severity,
                evidence={
                    "loss": sig(level),
                    "initial_loss": sig(initial),
                    "fraction_fallen": sig(fell),
                    "chance_loss": sig(chance) if chance else None,
                    "prior_entropy": sig(entropy) if entropy is not None else None,
                    **self._constant_evidence(constant),
                    f"stalled_{unit}s": stalled_for,
                    "drop_in_window": sig(drop),
                    "drop_stderr": sig(se),
                    "peak_loss": sig(peak),
                },
                hint=hint,
                step=run.step if step_unit else None,
                epoch=run.epoch,
                key="train",
            )
        ]

    def _at_constant(self, run: RunState, level: float) -> tuple[ConstantLevels, float] | None:
        """(the constant predictions' levels, in the loss's units; the noise margin) where a
        squared-error loss (and the last epoch's mean loss) sits no lower than the best constant
        prediction's (the targets' mean per output) by more than that margin, and no higher than
        `CONSTANT_CEILING` x the larger of it and all zeros' (higher is another scale: judged by
        its fall alone); else None.
        The margin is `tolerance` of that level, plus `z` standard errors of it where the first
        pass over the training targets was not seen whole: a loss measured on the same rows
        as the level carries no sampling error against it."""
        if run.info.loss in ABSOLUTE_LOSSES:
            kept = self._kept_train
            values = kept.values()
            levels = None if values is None else absolute_levels(values, kept.contiguous)
        elif run.info.loss in SQUARED_LOSSES:
            levels = self._targets.levels()
        else:
            return None
        if levels is None or levels.best <= 0:
            return None  # too few targets counted, or constant targets: any constant fits them
        rows = run.info.loss_summed_over or 1
        if rows > 1:
            levels = levels.scaled(rows)  # summed over the batch's rows: each level that many times larger
        whole = self._counted and levels.whole_pass
        margin = self.tolerance * levels.best + (0.0 if whole else self.z * levels.best_se)
        # the lowest of the recent step level and the last epoch's mean loss: a step level is the
        # median of a few buckets of a few batches each (batches of 32 on a noisy target scatter
        # by a quarter of its variance), an epoch's mean is taken over every training row
        epochs = epoch_train_levels(run)
        lowest = min(level, epochs[max(epochs)]) if epochs else level
        if lowest < levels.best - margin or level > CONSTANT_CEILING * max(levels.best, levels.zeros):
            return None
        return levels, margin

    def _constant_reason(self, constant: tuple[ConstantLevels, float], level: float) -> tuple[str, str]:
        """(why the level is poor, hint) for a loss stalled at a constant prediction's level."""
        levels, _ = constant
        which, value, _ = levels.nearest(level)
        kind, centre = ("absolute", "median") if levels.absolute else ("squared", "mean")
        if which == "zeros":
            what = (
                f"{value:.4g}, the loss of predicting all zeros (the mean {kind} target; the targets' {centre} "
                f"scores {levels.best:.4g})"
            )
        elif levels.absolute:
            what = (
                f"{value:.4g}, the loss of predicting the targets' median for every sample (their mean absolute "
                f"deviation from it; the targets average {levels.target_mean:.4g}, all zeros scores {levels.zeros:.4g})"
            )
        else:
            what = (
                f"{value:.4g}, the loss of predicting the targets' mean ({levels.target_mean:.4g} on average) for "
                f"every sample (their variance; all zeros scores {levels.zeros:.4g})"
            )
        relation = "no lower than" if level >= value else "near" if level >= levels.best else "within noise of"
        why = (
            f"{relation} {what}, over {levels.n} training samples of "
            f"{levels.outputs} target value{'s' if levels.outputs > 1 else ''}: the model's output ignores its inputs"
        )
        dead = "a ReLU or sigmoid output layer whose units died outputs 0 for every input; " if which == "zeros" else ""
        hint = (
            f"The model predicts about a constant: {dead}check the output layer (a linear output for targets "
            "that can be negative or above 1), that no bottleneck or layer is dead or frozen, that inputs "
            "and targets stay paired, and the learning rate (too high collapses the outputs, too low never "
            "leaves them); standardise the targets. `mlcheck sanity model.py` checks that one batch can be fitted."
        )
        return why, hint

    @staticmethod
    def _constant_evidence(constant: tuple[ConstantLevels, float] | None) -> dict:
        if constant is None:
            return {}
        levels, margin = constant
        return {
            "constant_mean_loss": sig(levels.best),
            "constant_mean_stderr": sig(levels.best_se),
            "zeros_loss": sig(levels.zeros),
            "constant_margin": sig(margin),
            "target_samples": levels.n,
            "target_outputs": levels.outputs,
        }

    #: the fewest buckets a plateau is judged on (its level, and a trend over the last half)
    MIN_BUCKETS = 6

    def min_points(self, unit: str) -> int:
        return max(self.MIN_BUCKETS, self.min_steps if unit == "step" else self.min_epochs)

    def _too_early(self, run: RunState, c: Curve, step_unit: bool, final: bool) -> bool:
        """Whether the curve is still too short to judge (during a run: too early in it)."""
        if c.values < (self.min_steps if step_unit else self.min_epochs) or len(c) < self.MIN_BUCKETS:
            return True
        if final:
            return False
        total = run.info.total_steps if step_unit else run.info.max_epochs
        if total:
            return bool(c.x[-1] < self.min_progress * total)
        return c.values < 2 * (self.live_steps if step_unit else self.live_epochs)

    def _training_score_improving(self, run: RunState) -> bool:
        """Whether a higher-is-better training metric (accuracy, IoU, F1) still climbs over its last
        half beyond its own scatter (`improving`: `z` standard errors and `tolerance` of its level,
        the test the loss failed): the same rows' score says the model still learns, so a loss that
        barely moves has a floor or offset this check cannot see (a Dice or Jaccard loss near 1, a
        loss with a large regularisation term), not a stall. Not asked near chance or the class
        prior: there the loss's level is the evidence."""
        for name, series in run.train_metrics.items():
            if higher_is_better(name, run.info.higher_is_better) and improving(series, True, self.z, self.tolerance):
                return True
        return False

    def _validationimproving(self, run: RunState, near_chance: bool) -> bool:
        """Whether the model still learns by its validation scores (`improving`: a fall clearing
        `z` standard errors and `tolerance` of its level), or, away from chance, by a validation
        loss settling onto its floor (`_settling`) or a training score still climbing
        (`_training_score_improving`). Away from chance the loss's level is no evidence: its floor
        is unknown (a cross-entropy on soft targets stops at their entropy, a hard task at its
        irreducible error), and a validation loss that still falls beyond its noise while slowing
        down is approaching that floor, however little it falls against its level. Near chance
        the level is the evidence, and a validation loss easing towards the class prior's (an
        output bias converging) is no learning: the size floor stays."""
        if improving(run.val_loss, higher=False, z=self.z, tol=self.tolerance):
            return True
        if not near_chance and _settling(run.val_loss, self.z):
            return True
        if not near_chance and self._training_score_improving(run):
            return True
        for name, series in run.val_metrics.items():
            higher = higher_is_better(name, run.info.higher_is_better)
            if higher is not None and improving(series, higher):
                return True
        return False


#: Metrics that measure an error (lower is better, 0 at a perfect fit) whatever the loss: their
#: fall says the model learns where the loss's own floor is unknown (Keras' `metrics=["mse"]`)
ERROR_METRICS = SQUARED_LOSSES | ABSOLUTE_LOSSES | frozenset({"rmse", "root_mean_squared_error"})
#: standard errors an error metric's fall must clear: the curve checks' `z` (3)
_METRIC_Z = 3.0


def _error_metric_fall(run: RunState, until: float, min_drop: float) -> tuple[str, float] | None:
    """(name, fraction fallen) of an error metric (`ERROR_METRICS`, training or validation) whose
    level by `until` (the median of its last 3 points there) sits more than `min_drop` below its
    first point: the same fall `loss-plateau` asks of the loss, on a scale whose floor is 0.
    None where none fell that far."""
    best = None
    for prefix, table in (("", run.train_metrics), ("val_", run.val_metrics)):
        for name, series in table.items():
            if name.lower().removeprefix("val_") not in ERROR_METRICS:
                continue
            b = series.buckets(include_open=True)
            y = b["mean"][b["x1"] <= until]
            y = y[np.isfinite(y)]
            if len(y) < 4 or not y[0] > 0:
                continue
            level = median(y[-3:])
            fall = float((y[0] - level) / y[0])
            # noise-aware: the fall must clear z x the metric's own scatter (successive differences,
            # robust to the one large early step: median absolute difference x 1.4826 / sqrt(2)),
            # a first point and a median of three (sqrt(1 + 1/3)); a noisy validation metric
            # whose first point sat high (held-out-7's 10wins13 val MAE: 0.079, then 0.047-0.089) holds nothing
            scatter = float(np.median(np.abs(np.diff(y)))) * 1.4826 / math.sqrt(2)
            if y[0] - level <= _METRIC_Z * scatter * math.sqrt(4 / 3):
                continue
            if fall > min_drop and (best is None or fall > best[1]):
                best = (prefix + name, fall)
    return best


def _held_by_metric(metric_fall: tuple[str, float] | None, unit: str, hint: str) -> tuple[str, Severity | None, str]:
    """(what to add to the message, the severity: None for the check's own, the hint) where an
    error metric logged beside the loss fell (`_error_metric_fall`): the finding is held as INFO."""
    if metric_fall is None:
        return "", None, hint
    name, fall = metric_fall
    return (
        f"; held as INFO: the {name} logged beside it fell {fall:.0%} over the same {unit}s, so the model is "
        "learning and the loss has a floor above 0 (cross-entropy on soft targets stops at their entropy)",
        Severity.INFO,
        f"Nothing to fix if the {name} is what you watch: a cross-entropy on targets between 0 and 1 (pixel "
        "values, soft labels) cannot fall below the targets' own entropy, so its fall measured from 0 "
        "understates what the model learned.",
    )


def _best_val_accuracy(run: RunState) -> float | None:
    """The best plain validation accuracy logged so far, as a fraction (one logged in percent
    read as such), or None where none is logged."""
    accuracy = next(
        (series for name, series in run.val_metrics.items() if is_plain_accuracy(name) and series.finite_count),
        None,
    )
    if accuracy is None:
        return None
    best = float(np.max(accuracy.buckets(include_open=True)["max"]))
    return best / 100.0 if best > 1.5 else best


#: An accuracy within this share of 1/C above 1/C is at chance where no validation row count sizes
#: a standard error (`mlcheck analyze`): a quarter of it, two binomial standard errors of a guess's
#: accuracy on about 580 samples at ten classes; the band `analyze` reads C from (`chance_classes`).
CHANCE_ACCURACY_BAND = 0.25


#: The fewest classes at which ln(C) and 1/C alone (no row counts to size the noise by) say a run
#: is at chance. At two classes a healthy weak-signal task sits there too: real Keras logs labelled
#: healthy (benchmarks/reallogs held-out-7: 47 validation rows at their majority share for 17
#: epochs, then 0.64; 100 rows at 0.41-0.60 while the training loss fell from ln(2) to 0.62) stay
#: within 2% of ln(2) and within 1/C's band for their first epochs. With the rows counted (the
#: callbacks), the class prior's margins are sized by them and two classes are judged.
CHANCE_MIN_CLASSES = 3


@dataclass(frozen=True)
class ChanceLevels:
    """What a model that ignores its inputs scores, with noise margins (`LossPlateau._chance_levels`):
    a training loss at or above `train_loss`, validation losses at or above `val_loss` and
    accuracies at or below `val_accuracy` are at chance."""

    train_loss: float
    val_loss: float
    val_accuracy: float
    words: str
    accuracy_words: str
    n_val: int | None


#: A training loss stalled above this multiple of the training labels' entropy is not at the class
#: prior. A model that predicts the training class shares scores their entropy H in expectation;
#: 1.25 H is that prior with its shares off by a factor of about 2 for a 5% class (KL 0.05 nats),
#: which the output bias alone corrects within an epoch under an unweighted log-loss. A loss that
#: stalls higher (and below the chance level) is weighted per class inside the step (inverse class
#: frequencies, a `pos_weight`): an input-ignoring model scores the weighted shares' entropy there,
#: anywhere up to ln(C), so the entropy is not its floor (healthy-programs batch 13, l6: 0.356
#: against H 0.213 at 17:1 with inverse-frequency weights, balanced accuracy 0.81 -> 0.88).
PRIOR_CEILING = 1.25


#: The regression losses whose constant-prediction levels are known: squared and absolute errors.
REGRESSION_LOSSES = SQUARED_LOSSES | ABSOLUTE_LOSSES


#: A squared-error loss stalled above this multiple of the larger of the best constant's and all
#: zeros' loss is not at a constant prediction's level: a constant as far from the targets' mean
#: as they spread (a sigmoid output stuck at 0.5 on pixels in [0, 1]) scores twice their
#: variance, and a loss far higher is on another scale (summed over outputs, a weighted or
#: regularised loss): it is judged by its fall alone, as before the levels were known.
CONSTANT_CEILING = 2.0


#: log10 update/weight ratios below this: the weights hardly move (`lr-too-low`'s default
#: `min_log_ratio`, a decade below TheDeepChecker's healthy band [-4, -1])
_STILL_LOG_RATIO = -5.0
#: ... and at or above this, the floor of that band: the rate is not what holds the loss up
_MOVING_LOG_RATIO = -4.0


#: measured steps that must all have changed no weight at all before a plateau is blamed on steps
#: that apply nothing (the measurements are exact: an update of 0 is log10 -inf)
_EMPTY_UPDATES = 3


def _update_level(run: RunState) -> float | None:
    """The median log10 update/weight ratio measured so far (sampled steps), or None; -inf when
    `_EMPTY_UPDATES` or more steps were measured and not one changed a weight."""
    series = run.update_ratio
    if not series.finite_count:
        empty = series.nonfinite >= _EMPTY_UPDATES and series.last_value == -math.inf
        return -math.inf if empty else None
    means = series.buckets(include_open=True)["mean"]
    means = means[np.isfinite(means)]
    return float(np.median(means)) if means.size else None


#: A learning rate under this fraction of its peak when the loss stalls has cut every step fivefold or
#: more: the schedule, not the labels or the model, is the likelier cause (a halving per epoch is
#: at 1/8 by epoch 3, where a digits MLP under SGD 0.01 stalled on JAX; a cosine or step schedule
#: gets there only late in the run, after the learning)
LR_FALLEN_FRACTION = 0.2
#: A learning rate that ends the run at this many times its first value, at its highest yet, is a
#: warm-up still in progress (`rising`'s factor)
LR_STILL_RISING = 1.2


def _schedule_hint(run: RunState) -> str | None:
    """The hint for a stall that the learning-rate schedule explains, from the rates logged: a rate
    fallen under `LR_FALLEN_FRACTION` of its peak, or one still climbing at its highest (a warm-up
    that never ended); None otherwise, or where no rate was logged."""
    if run.lr.finite_count < 2:
        return None
    steps, rates = run.lr.finite_values()
    if len(rates) < 2 or not rates.max() > 0:
        return None
    top = int(np.argmax(rates))
    peak, now, first = float(rates[top]), float(rates[-1]), float(rates[0])
    if now <= LR_FALLEN_FRACTION * peak:
        since = int(steps[top + int(np.argmax(rates[top:] <= LR_FALLEN_FRACTION * peak))])
        return (
            f"The learning rate has fallen to {now:.3g}, {now / peak:.2g}x its peak of {peak:.3g} (under "
            f"{LR_FALLEN_FRACTION:g}x since step {since}): the steps shrank before the model learned. A schedule "
            "that multiplies the rate it is handed compounds (Keras "
            "`LearningRateScheduler(lambda epoch, lr: lr * 0.5)` halves it every epoch): compute the rate from "
            "the epoch (`lambda epoch: 1e-3 * 0.5 ** (epoch // 10)`), or let it decay over the whole run."
        )
    if first > 0 and now > LR_STILL_RISING * first and now >= peak:
        return (
            f"The learning rate is still climbing ({first:.3g} at the start, {now:.3g} now): a warm-up still in "
            "progress keeps the steps small. A warm-up counted in optimizer steps but stepped once per epoch "
            "takes that many epochs: in Lightning return `{'scheduler': s, 'interval': 'step'}` as "
            "`lr_scheduler` (the default interval is 'epoch')."
        )
    return None


def _still_hint(ratio: float, clip: float | None) -> str:
    """The hint for a loss that stays put while the weights hardly move (`ratio` -inf: not at all)."""
    if ratio == -math.inf:
        return (
            "The weights did not change at all at any step measured (update 0): the optimizer's steps "
            "apply nothing. Look for optimizer.step() called before backward() (or zero_grad() between "
            "backward() and step(): the step then finds no gradient), a learning rate of 0, or gradients "
            "multiplied by 0."
        )
    if clip is not None:
        return (
            f"The weights hardly move (updates 10^{ratio:.1f} of the weights per step) and the gradients are "
            f"clipped to {clip:.3g}: raise the clipping threshold (usual values 0.5-5) or remove it."
        )
    return (
        f"The weights hardly move (updates 10^{ratio:.1f} of the weights per step; about 10^-3 is usual): "
        "raise the learning rate (3-10x at a time)."
    )


#: A validation loss whose last half falls at no more than this fraction of its pace before
#: (`_settling`) has slowed as a loss approaching its floor does (an exponential approach halves
#: its pace every time constant), unlike a step size too small, whose loss falls in a straight
#: line (CS231n, "Neural Networks Part 3": low learning rates give linear improvements). Half:
#: one halving of the pace, one time constant of such an approach; a round bar, not fitted to runs
#: (a straight creep scores about 1, the settling real curves that motivated it 3-7).
SETTLING_PACE = 0.5


def _settling(series: Series, z: float) -> bool:
    """True when an epoch-level validation loss still falls beyond its noise over its last half
    (a least-squares fall clearing `z` standard errors, however small against its level) at no
    more than `SETTLING_PACE` of its pace from its first point to that half's start: a loss
    settling onto a floor above 0, whose model still learns what carries over (held-out-9's
    rosepy, dev's handson-ml3 autoencoder c147-13: every epoch lower), not the straight creep of
    a rate too small (digits at Adam 1e-6: 2.3193 -> 2.3175 in 8 epochs, 0.0003 an epoch
    throughout), whose stall at a poor level `loss-plateau` tells."""
    b = series.buckets(include_open=True)
    x, y = b["x1"], b["mean"]
    if len(y) < 4 or not bool(np.all(np.isfinite(y))):
        return False
    half = max(3, len(y) // 2)
    xw, yw = x[-half:], y[-half:]
    drop, se = trend_drop(xw, yw)
    before_span, span = float(xw[0] - x[0]), float(xw[-1] - xw[0])
    if not (math.isfinite(drop) and drop > z * se and before_span > 0 and span > 0):
        return False
    pace_before = float(y[0] - yw[0]) / before_span
    return drop / span <= SETTLING_PACE * pace_before


def _falls_past(
    c: Curve, xw: np.ndarray, drop: float, se: float, z: float, initial: float, level: float, min_drop: float
) -> bool:
    """True when the loss still falls beyond its noise over the window (`drop` > `z` x `se`) at a
    rate that, kept up for as long as the run has lasted so far, takes it past `min_drop` below its
    initial value: a run that learns slowly and steadily, not one that stalled. A level test alone
    called a steady fall of 0.4-0.6% an epoch a plateau after 7 epochs; that Keras run went on to
    fall another 7.8% (benchmarks/reallogs held-out-5, ravindra-pandey binary_model_history.csv)."""
    span = float(xw[-1] - xw[0])
    if not (initial > 0 and span > 0 and drop > z * se):
        return False
    elapsed = float(c.x[-1] - c.x[0])
    projected = (initial - level + drop / span * elapsed) / initial
    return projected >= min_drop


def _plateau_reason(
    level: float,
    initial: float,
    fell: float,
    chance: float | None,
    chance_words: str,
    ratio: float | None = None,
    clip: float | None = None,
    schedule: str | None = None,
) -> tuple[str, str]:
    """(why the level is poor, hint) for a loss-plateau finding; `chance` is set when the loss is
    near or above the chance level ln(C) (`chance_words`: "ln(10) = 2.303"); `ratio` is the
    median log10 update ratio measured, and `clip` the gradient clipping threshold, where known;
    `schedule` the hint of a learning-rate schedule that explains the stall (`_schedule_hint`),
    which wins over the update ratios (a median over the run, from before the rate fell)."""
    hint = (
        "Check that the model can learn at all (`mlcheck sanity model.py`); raise the "
        "learning rate, check that labels match inputs and that no layer is frozen "
        "or dead."
    )
    if ratio is not None and ratio < _STILL_LOG_RATIO:
        hint = _still_hint(ratio, clip)
    elif ratio is not None and ratio >= _MOVING_LOG_RATIO:
        hint = (
            f"The weights move at a usual rate (updates 10^{ratio:.1f} of the weights per step), so a learning "
            "rate too low is unlikely: check that labels match their inputs (X and y shuffled with one "
            "permutation), that no layer is dead or frozen, and that dropout is not so heavy that no "
            "signal gets through (rates above 0.5). `mlcheck sanity model.py` checks the model on one batch."
        )
    if schedule is not None:
        hint = schedule
    if chance is not None and level > 2 * chance:
        why = (
            f"far above the chance level {chance_words} that a uniform guess scores, so the model is confidently wrong"
        )
        hint = (
            "A loss stuck far above chance usually means the learning rate is far too "
            "high (lower it 10-100x) or the loss is scaled or fed the wrong targets."
        )
    elif chance is not None:
        why = f"close to the chance level {chance_words}"
    else:
        why = (
            f"only {fell:.1%} below its initial {initial:.4g}"
            if fell > 0
            else f"no lower than its initial {initial:.4g}"
        )
    return why, hint


def _median(values: list[float]) -> float:
    """Median of a short list (np.median costs ~5 us a call; this runs on every judgement)."""
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])
