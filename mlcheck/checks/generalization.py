"""Generalization checks: the model fits the training data but stops improving on new data."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.class_prior import FirstPass
from mlcheck.checks.curve import (
    epoch_judgement_due,
    epoch_train_levels,
    mann_kendall_z,
    noise,
    rolling_mean,
    sig,
    trend_drop,
)
from mlcheck.findings import Finding, Severity
from mlcheck.metrics import higher_is_better, reversed_mode, strip_split

if TYPE_CHECKING:
    from mlcheck.run import BatchObservation, EarlyStop, RunState
    from mlcheck.series import Series

_NOISE_MIN_POINTS = 4  # `noise` needs 4 values for its first second differences
_FIT_MIN_POINTS = 6  # a parabola has 3 parameters: at least 3 residual degrees of freedom
# a converged accuracy moves by a sample or two of the validation set from epoch to epoch: the
# fault suite's lightning/clean_early_converging (114 validation samples, 0.9 points each) was
# warned about at seed 1 when a fall beyond the accuracy's noise alone confirmed the turn
_SAMPLES_MOVED = 2
# the stretch test's second, longer stretch (`_noisy_rise`): a difference of two 5-epoch means has
# sqrt(2/5) of one epoch's noise, so the bar falls from 2.45 to 2.03 epoch noises (3 -> 3.21 z, the
# pair's Bonferroni share); a run needs 3 such stretches (15 validations) for a best, a recent and
# one between. 8 epochs added no hit on the real logs (benchmarks/reallogs, branch over29)
_LONG_STRETCH = 5
# issue 12: "short runs (8-10 epochs) must be judged too"; over35's short-run early test. Over38
# measured it up to 15 validations: no healthy real run more, but on seeded healthy 15-epoch runs
# (benchmarks/study_short_early.py 300 15) twice main's WARNINGs at 5-10% noise; at 10, main's
_SHORT_RUN = 10
#: The spread of one validation row's loss, as a multiple of the mean loss, for residuals drawn
#: from a normal distribution: a squared error e^2 has standard deviation sqrt(2) x its mean
#: (chi-square with one degree of freedom), an absolute error |e| sqrt(pi/2 - 1) = 0.756 x its
#: mean (half-normal). Heavier tails spread more, so these are the least spread a regression
#: validation loss has: the standard error they give errs toward a warning. Huber, smooth L1 and
#: log-cosh lie between the two: the smaller is taken.
_SQUARED_SPREAD = math.sqrt(2.0)
_ABSOLUTE_SPREAD = math.sqrt(math.pi / 2.0 - 1.0)
_ROW_SPREAD = {
    **dict.fromkeys(("mse", "mean_squared_error", "msle", "mean_squared_logarithmic_error"), _SQUARED_SPREAD),
    **dict.fromkeys(("mae", "l1", "mean_absolute_error", "huber", "smooth_l1", "log_cosh"), _ABSOLUTE_SPREAD),
}


@dataclass(frozen=True)
class _Unresolved:
    """A regression run's validation rise within the standard error of the validation loss over
    its rows (`TrainValGap.rows_z`): `rows` validation rows, `stderr` that error at the best, or,
    `paired`, the error of the rise itself from the same rows' losses at the best epoch and now."""

    rows: int
    stderr: float
    paired: bool = False


@dataclass(frozen=True)
class _HeldMetric:
    """An accuracy-like validation metric that held through the rise: its name and its values as
    the message tells them (`told`), each named a level (a mean of validations) or a point."""

    name: str
    told: str


class _ValidationRows(FirstPass):
    """The rows of the first pass over the validation data (`FirstPass`: whether its batches were
    seen without a gap, the whole set and not a sample of it)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0

    def add(self, batch: BatchObservation) -> None:
        if not self.take(batch):
            return  # the first pass only: later epochs validate on the same rows
        held = next((a for a in (batch.targets, batch.probe, batch.inputs) if a is not None and a.ndim), None)
        if held is None:
            self.contiguous = False  # rows not countable: the count says nothing
            return
        self.rows += len(held)

    def total(self) -> int | None:
        """The validation rows, or None when the pass was not seen whole."""
        return self.rows if self.contiguous and self.rows > 0 else None

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.rows = int(state["rows"])


def _resolution(values: np.ndarray) -> float:
    """The smallest step between two distinct logged values of an accuracy-like metric: one
    validation sample (1/n) when the values are counts over a fixed set, the printed precision
    otherwise (0.0001 for Keras' 4 digits). 0.0 when every value is the same."""
    v = np.unique(values[np.isfinite(values)])
    if len(v) < 2:
        return 0.0
    steps = np.diff(v)
    steps = steps[steps > 1e-9 * max(1.0, float(np.max(np.abs(v))))]  # above float round-off
    return float(np.min(steps)) if len(steps) else 0.0


def _falls_steadily(x: np.ndarray, values: np.ndarray, since: int, z: float) -> bool:
    """True when an accuracy-like metric falls steadily from epoch `since` on: a line fitted to the
    epochs from `since` (at least 4 of them: 2 degrees of freedom) falls by more than `z` standard
    errors, the error taken from the larger of the scatter around the line and the metric's own
    epoch noise over the whole run (so a few well-aligned epochs cannot fake a small error), and by
    more than two validation samples (`_resolution`) over those epochs: less is a sample's jitter."""
    keep = x >= since
    if int(np.sum(keep)) < 4 or len(values) < _NOISE_MIN_POINTS:
        return False
    xs, ys = x[keep].astype(np.float64), values[keep].astype(np.float64)
    xc = xs - xs.mean()
    sxx = float(xc @ xc)
    slope = float(xc @ (ys - ys.mean())) / sxx
    resid = ys - ys.mean() - slope * xc
    scatter = max(math.sqrt(float(resid @ resid) / (len(xs) - 2)), noise(values))
    fall = -slope * float(xs[-1] - xs[0])
    return bool(-slope > z * scatter / math.sqrt(sxx) and fall > _SAMPLES_MOVED * _resolution(values))


#: A learning rate this many times its value at the best epoch has been raised since (a warm-up
#: still climbing, a one-cycle peak, a warm restart): the factor `curve.rising` takes for a warm-up
#: in progress, which the loss checks wait out
_LR_RAISED = 1.2


@dataclass(frozen=True)
class _RaisedRate:
    """The logged learning rate at the best epoch's last step (`at_best`) and now (`now`), when
    `now` is over `_LR_RAISED` x `at_best`: a rise of the validation loss then coincides with
    larger steps than those that reached the best, which is instability, not memorisation."""

    at_best: float
    now: float


def _raised_rate(run: RunState, best_epoch: int) -> _RaisedRate | None:
    """`_RaisedRate` when the run logged its learning rate and it is now over `_LR_RAISED` x its
    value at the best epoch's last step; None otherwise (no rate logged, that step not known, a
    constant or falling rate)."""
    at = run.epoch_step.get(best_epoch)
    if at is None or run.lr.finite_count < 2:
        return None
    steps, rates = run.lr.finite_values()
    before = rates[steps <= at]
    if not len(before):
        return None
    at_best, now = float(before[-1]), float(rates[-1])
    return _RaisedRate(at_best, now) if at_best > 0 and now > _LR_RAISED * at_best else None


def _fit_noise(values: np.ndarray) -> float:
    """Standard deviation of the residuals of `values` around a least-squares parabola: the noise
    of a curve that turns (a smooth U-shaped turn leaves almost none; a noisy plateau all of its
    noise). nan for fewer than `_FIT_MIN_POINTS` values."""
    if len(values) < _FIT_MIN_POINTS:
        return math.nan
    x = np.arange(len(values), dtype=np.float64)
    resid = values - np.polyval(np.polyfit(x, values, 2), x)
    return math.sqrt(float(resid @ resid) / (len(values) - 3))


def _named_layers(layers: tuple[str, ...]) -> str:
    """The first three layer paths, quoted, and how many more."""
    named = ", ".join(f"`{name}`" for name in layers[:3])
    return named + (f" and {len(layers) - 3} more" if len(layers) > 3 else "")


def _training_metric(metric: str, run: RunState) -> bool:
    """Whether an early stopping's monitored name is a training metric of a run that also logs its
    validation twin: "train_loss" (any split prefix or suffix `strip_split` reads), or a name
    without one ("loss", Keras' training loss; "accuracy") whose validation twin is logged."""
    split, base = strip_split(metric.removesuffix("_epoch"))
    if split == "train":
        return True
    return split is None and (base == "loss" or base in run.val_metrics)


@register
class TrainValGap(Check):
    """Overfitting: the validation loss turned up while the training loss kept falling.

    What it does:
        After each epoch, finds the best stretch of the validation loss (the lowest mean of
        `patience` consecutive epochs) and compares it with the mean of the last `patience`
        epochs. It fires when the validation loss has risen above its best by more than
        `z` x the noise of a difference of two such means (sqrt(2 / `patience`) x its measured
        epoch-to-epoch noise) and by more than `min_rise` of the best,
        for at least `patience` epochs after the best, each of the last `patience` epochs above
        the best by one such noise (a spike of two epochs does not carry the mean alone), with a
        rising trend since the best
        (`trend_z` standard errors of a fitted line, or by ranks: Mann-Kendall's test, which a
        few wild epochs do not drown as they widen a line's error), while the training loss fell
        further since the best epoch
        (`min_train_fall`; so the gap between them grew) to below the run's first training loss
        (a model no better on its training data than at the start has not memorised it: a loss
        that blew up at a learning rate far too high and is settling back is instability, which
        lr-too-high and loss-divergence report). It reports the best epoch. One noisy epoch
        never fires (UMLAUT's rule fires on any single uptick). In a run of 15 validations or
        more, where the `patience`-epoch stretches say no, stretches of 5 epochs are compared
        the same way at the z of half `z`'s one-sided tail (3.21 for 3): their means carry less
        of each epoch's noise, so a lasting rise on a curve that swings from epoch to epoch
        still shows.
        A run too short to measure the noise (fewer than 2 x `patience` + 2 epochs, e.g. the
        5-epoch runs common in tutorials) is judged by shape instead: a validation loss that rose
        at every one of `patience` or more epochs after its lowest, by `short_min_rise` on average
        (one epoch, `short_max_falls`, may fall, when each of the last `patience` stands above the
        lowest by more than `z` x the noise that fall shows, in a run known to be that short or at
        its end; a run of unknown length still needs the rises in a row until it ends).
        At any length, a validation loss never better than its first validation, risen at every
        epoch since (`patience` or more, `short_min_rise` on average), is overfitting when the
        training loss fell meanwhile to `shape_train_share` (half) of its first epoch's value: the
        model learned nothing that carried to new data after its first epoch while fitting its
        training set twice as well (the stretch test's noise can be too large to see it).
        In the first epochs of a run configured for more epochs than that (the callbacks know
        `max_epochs`), the shape test waits: the noise-aware tests judge the later epochs, and the
        shape test speaks at the run's end only if it ended before them (stopped early). Three
        rises in a row on a small, noisy validation set are no evidence while the noise can still
        be measured (a 12-epoch run on 40 validation samples was warned about at epoch 4 of a
        flat, noisy validation loss).
        An earlier test decides as soon as the rise is real, without waiting for the stretches to
        fill: each of the last `early_epochs` epochs above the best by more than `min_rise`
        (Prechelt's GL) and by more than `z` x the validation noise around the turn (the scatter
        of the log loss around a parabola from `patience` epochs before the best), the training
        loss still falling, and, where an accuracy-like validation metric is logged, that metric
        not at its best now; it is a WARNING only when the metric fell below its value at the
        best epoch by more than `metric_z` x its own noise and by more than two validation
        samples (the smallest step between its logged values) in each of those epochs (else INFO
        while the rise is modest, as below): the loss has already passed its own test, so the
        decisions only have to confirm the turn, not prove it alone.
        In a run of `_SHORT_RUN` (10) validations or fewer (issue 12: "short runs (8-10 epochs)
        must be judged too") the early test also asks the mean of the last `patience` epochs, each
        above the lowest: above the best by `min_rise` and by `z` x the same noise x
        sqrt(2 / patience) (two means of `patience` epochs, as the stretch test compares them:
        one-sided 0.135% under normal noise), with the training loss lower at every epoch since
        the lowest (a second witness); the same metric condition and holds apply. Three epochs at
        that bar say what two at `z` alone cannot when one of them dips back (held-out-3 of
        benchmarks/reallogs, a Keras regression: validation 0.383 at epoch 4, then 0.395, 0.465,
        0.641 while training fell at each epoch, told at epoch 7 instead of 8). The same test asks
        the last two epochs (over39): each of them, not only their mean, above the best by
        `min_rise` and by `z` x the noise x sqrt(1/2 + 1/patience), so one spike cannot carry it
        (benchmarks/reallogs held-out-8, a U-Net whose loss spiked once at epoch 6 and fell 34%
        below that best at 9: a mean of two told it three epochs early). Its noise comes
        from a handful of epochs, so its WARNING says the model *may* be overfitting, that the
        loss may still come back, and that early stopping with patience `patience` keeps the best
        epoch either way; a metric that held is told as the stretch test tells it (its best level
        over `patience` validations and its best point).
        Where the run logs its learning rate, the rate is now more than 1.2x its value at the best
        epoch (a warm-up still climbing, a one-cycle peak, a warm restart) and an accuracy-like
        validation metric fell since the best epoch below its first epoch's value (by `metric_z` x
        its noise and two validation samples: the model lost even what its first epoch learned),
        the verdict waits: larger steps throwing the optimizer off, not memorisation, which keeps
        the decisions near their best for longer (held-out-5 of benchmarks/reallogs: a one-cycle run,
        Adam up to 0.1, whose validation loss went 1.6 -> 9.0 and accuracy 0.31 -> 0.14 at the
        peak, and which ended at 0.66 and 0.76, was warned about at epoch 12). A raised rate alone
        holds nothing: a model that memorises during a long warm-up (training loss 0.64 -> 0.04,
        accuracy far above its first epoch's) is overfitting. Once the rate is back, a loss still
        above the best by the rise that test asked for is told as overfitting; a run that ends with
        the rate still raised gets an INFO that says which.
        After a WARNING, a validation loss whose last `patience` epochs come back, on their mean,
        below the best level it named passed its rise (over39: until then it had to come back below
        it by as much as the rise had to exceed, which freed 2 of the 13 WARNINGs told before a
        labelled minimum in benchmarks/reallogs; back to the level frees 11 and loses one hit told
        on time): the run learned on past it (YOLO's validation loss jumps for a few epochs
        early in long runs and falls for hundreds more). An INFO says so (key `overfit-passed-N`),
        the check judges afresh from the new best (a later rise is told again, key `overfit-N`),
        and `mlcheck analyze`, which reads the whole log, turns that WARNING into an INFO. So does
        `mlcheck analyze` where the log ends at its best: the mean of its last `patience`
        validation losses is the lowest such mean of the run and below the best level the WARNING
        named (the rise did not last, and the run ends at its best level), or the single lowest
        validation loss of the run lies among its last `patience` epochs, below the best level and
        the best epoch's own loss the WARNING named (the run ends at its best epoch).
        Runs without a validation loss are skipped. When an accuracy-like validation metric
        is logged and has not worsened (its recent mean is within `metric_tolerance` of its
        best, and it does not fall in a line since the best epoch by more than `metric_trend_z`
        standard errors) and the rise is modest (`info_max_rise`), the finding is INFO: the loss
        rises through over-confidence while the decisions are as good as ever. A metric that was
        exactly 0 at every validation (Keras' exact-match `accuracy` on a regression) says
        nothing about the decisions and is not consulted.
        A regression has no such metric; its finding is INFO while the rise is modest
        (`info_max_rise`) and within `rows_z` standard errors of the validation loss over the
        rows of the validation set (counted over its first pass; for squared errors the error is
        sqrt(2 / rows) x the loss, for absolute, Huber and log-cosh errors 0.756 / sqrt(rows) x
        it, what normal residuals give): the validation loss measures the loss on new data only
        that closely, so a smaller rise says little about it. A healthy MLP on 92 rows of
        sklearn's diabetes data rose 5.2% from its best while its error over those rows was 15%;
        across 8 random splits of that data the same run's rise from its best was within 1.0
        paired standard error of the rows' loss differences each time.
        A classification run gets the same guard from each validation row's -log of its
        true-class probability at the latest validation: the callbacks sum those losses and their
        squares over each validation pass on the device, from the outputs and targets of the
        validation steps (`Signal.VAL_LOSSES`, `RunState.val_row_losses`; Lightning through
        forward hooks on for the validation pass only, Keras from each test step's `compute_loss`
        where the callback sees the steps), or the opt-in per-sample capture (`noisy-labels`)
        keeps them. Their standard deviation / sqrt(rows), scaled to the best level, is the
        error, used only when the rows' mean matches the logged validation loss within 5% (a
        weighted, smoothed or sampled loss is not their mean). Where no adapter took them (no
        targets found, outputs that are no class scores, a compiled JAX or TensorFlow step,
        `mlcheck analyze`) the row count alone bounds nothing for a cross-entropy (its per-row
        losses may all be equal, so no smallest error follows from the count), and the rise is
        judged as before. Batch 20's h07 (Lightning, wine, 38 validation rows) rose 0.2356 ->
        0.2524 (7%) while the rows' error was 0.12: INFO since, not a WARNING.
        Past `info_max_rise` the level's error is too lenient (a difference of two epochs on the
        same rows has a smaller, paired error), so there the rise's own error holds it first: where
        the adapter kept each row's loss (Lightning, validation passes of at most 1,024 rows, the
        same classes in the same order at both epochs, each pass's mean matching its logged loss
        within 5%), the standard error of the mean of the rows' differences between the best epoch
        and now; a rise within `rows_z` of it is INFO. One row of a small set growing more confident
        in a wrong class carries such a rise and makes its paired error as large as itself. Batch
        35's h03 (wine, 38 rows, OneCycle) rose 0.2855 -> 0.369 (29%) at 0.8 of that error, one row
        carrying 87% of it: INFO; a breast_cancer MLP's rise of 24% on 143 rows with accuracy held,
        spread over its rows, was 1.6-2.0 of it: a WARNING still (measured with a /tmp script).
        Where the rows are not paired, a classification's level error still holds past the cap
        while the rise has not lasted `held_max_epochs` with the training loss halved: a rise
        smaller than the loss's own error over the rows is not known to have happened, however
        large a share of a small loss it is. Batch 38's h04 (Lightning, wine, label smoothing 0.1,
        38 validation rows) rose 0.1876 -> 0.2188 (16.6%) while the rows' error was 0.057.
        The finding is also INFO while the run's own early stopping will end the rise and keeps the
        weights of the best epoch: an `EarlyStopping` that monitors the validation loss and either
        restores the best weights itself (Keras' `restore_best_weights=True`) or has a checkpoint
        callback that saves the best by the same metric beside it (Keras'
        `ModelCheckpoint(save_best_only=True)`, Lightning's `ModelCheckpoint(monitor=...)`). It is a
        WARNING again when the rise is large (`info_max_rise`) or the run goes on past that early
        stopping's patience (it is evidently not stopping this run); an early stopping that watches
        another metric or keeps the last epoch's weights changes nothing.

        Where the adapter saw layers that act differently in training (dropout, BatchNorm) in
        training mode during a validation batch (`RunInfo.train_mode_at_validation`; Lightning
        reads it once, at the first validation batch: a `validation_step` that calls `.train()`,
        a `train()` override that ignores `mode=False`; Keras calls the model twice for
        inference on it and names the BatchNorm layers whose statistics moved and, where the
        outputs differ, the dropout and noise layers: a layer called with `training=True` in a
        subclassed model's `call`), a WARNING says so once (key
        `train-mode-validation`), and a later overfitting finding names it as its likely cause.
        The mirror, a model in evaluation mode over a whole training step with dropout or
        BatchNorm layers (`RunInfo.eval_mode_at_training`; Lightning reads the module's
        `training` flag at the end of each training batch, two in a row: a `self.eval()` after a
        manual evaluation in `on_train_epoch_end` or `training_step`, never undone by
        `self.train()`), is a WARNING once too (key `eval-mode-training`): from then on dropout
        is off and BatchNorm frozen at its running statistics, so the model trains without its
        regularisation; only some layers in eval mode (a frozen backbone's BatchNorm) is not it.
        An `EarlyStopping`, or a `ModelCheckpoint` that keeps the best weights, whose given mode
        reads its metric the wrong way round (`mode="max"` on a loss, `mode="min"` on an
        accuracy; `RunInfo.stop_monitors`, the direction read from the metric's name as
        `lr-schedule`'s `plateau-mode` reads it) is a WARNING at the first epoch's end (key
        `stop-mode`): every epoch the run improves counts as none, so the early stopping ends a
        healthy run after `patience` epochs, and the "best" weights it restores or the
        checkpoint keeps are those of the worst epoch. Exact: no noise to allow for.
        Such a callback that watches a training metric while the run validates (`monitor="loss"`,
        the Keras docs' example for a fit without validation data, or "train_loss", or an
        unprefixed name whose `val_` twin is logged) is a WARNING at the first validation (key
        `stop-on-training`): the training loss keeps falling as the model overfits, so it never
        stops the run at the validation loss's best, and the weights it restores are the most
        fitted (batch 38's b09: 80 epochs run, validation loss up from its best at epoch 35).
        Exact too.

    Why it matters:
        From the best epoch on, further training makes the model worse on new data; every
        later epoch costs compute and, without a checkpoint from the best epoch, quality.

    How to fix:
        Keep the checkpoint from the best epoch (early stopping, a checkpoint callback that
        monitors the validation loss), and regularise: weight decay, dropout, data
        augmentation, a smaller model, or more data.

    Example:
        model = keras.Sequential([
            keras.Input(shape=(x_train.shape[1],)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=200)
        model.save("model.keras")  # epoch 200's weights, long past the best

    Use instead:
        model = keras.Sequential([
            keras.Input(shape=(x_train.shape[1],)),
            keras.layers.Dense(128, activation="relu", kernel_regularizer="l2"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1, activation="sigmoid"),
        ])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        best = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
        model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=200,
                  callbacks=[best])
        model.save("model.keras")  # the weights of the best epoch

    Args:
        patience: epochs the rise must last and the width of the best and recent stretches.
            Default 3: Lightning's EarlyStopping default.
        z: the rise of the stretch test must exceed z x the noise of a difference of two means
            of `patience` epochs (sqrt(2 / patience) x one epoch's; the early test, which compares
            single epochs, takes one epoch's). Default 3.0.
        min_rise: the rise must exceed this fraction of the best validation loss. Default 0.05.
        min_rise_range: and this fraction of how far the validation loss fell from its first
            epoch to its best. Default 0.02: on easy data a rise from 1e-5 to 1e-4 is noise.
        trend_z: the epochs since the best must also show a rising trend, a line fit whose
            rise exceeds this many standard errors, or Mann-Kendall's rank statistic as many.
            Default 3.0: the test is repeated every epoch, so it needs a stricter level than a
            single test would.
        min_train_fall: the training loss must have fallen by this fraction since the best
            epoch. Default 0.01: with a flat training loss a rising validation loss is more
            likely noise or drift than overfitting.
        metric_tolerance: an accuracy-like validation metric whose recent mean is within this
            much (absolute, on a 0-1 scale; or its epoch noise if larger) of its best has not
            worsened. Default 0.01: one percentage point.
        info_max_rise: a held metric, or the run's own early stopping, makes the finding INFO only
            while the validation loss rose by at most this fraction of its best. Default 0.15:
            three times the largest generalisation loss at which Prechelt's stopping rules stop
            (GL5, a 5% rise; "Early Stopping - But When?", 1998); beyond that, calibration and the
            loss itself are degrading, whatever the accuracy or the weights kept.
        held_max_epochs: a held metric makes a modest rise INFO only until the rise has lasted
            this many epochs while the training loss fell to `held_train_share` of its value at
            the best epoch or below; then it is a WARNING. Default 8: more than twice the
            patience (3) of Keras' EarlyStopping, which would have stopped such a run long
            before; benoitpier/nlp_binary_classification (benchmarks/reallogs held-out-7) rose
            5% over 8 epochs while its training loss fell from 0.42 to 0.21, its accuracy held.
        held_train_share: see `held_max_epochs`. Default 0.5: the training loss halved since the
            best epoch, the model fitting its training set ever closer while validation worsens.
        short_min_rise: in a run too short to measure its noise (fewer than 2 x `patience` + 2
            epochs), the validation loss must have risen at each of at least `patience` epochs
            after its lowest one, and the last `patience` epochs must average this fraction above
            it. Default 0.10: the rise of the overfitting label of benchmarks/reallogs.
        short_max_falls: of the epochs after the lowest in such a short run, this many may fall
            instead of rising, when each of the last `patience` epochs lies above the lowest by
            more than `z` x the noise the largest fall shows (the fall / sqrt(2): the difference
            of two noisy epochs). Default 1: one noisy epoch broke the three rises in a row of
            real 5-epoch runs (benchmarks/reallogs held-out-2: 0.540, 0.647, 0.638, 0.810, 0.779;
            held-out-5: 0.191, 0.195, 0.277, 0.268, 0.285); with 2 allowed the real runs give the
            same results (`benchmarks/reallogs/precheck_overfit.py`), so the stricter is kept.
            Only where the run's configured length is known (`mlcheck analyze` reads it from the
            log) or at its end: a live run of unknown length in a one-cycle warm-up (validation
            1.48, then 1.86, 1.81, 1.84 as the rate tripled) would be called at its fourth epoch.
        shape_train_share: at any length, a validation loss lowest at its first validation and
            risen at every epoch since (`patience` or more, `short_min_rise` on average) is
            overfitting when the training loss fell to this share of its first epoch's value or
            below. Default 0.5, `held_train_share`'s: the model fits its training set ever closer
            while validation worsens. On the labelled real runs of benchmarks/reallogs (all
            splits, chosen after seeing them) it fires on no healthy run of 325 and catches one
            overfitting run the other tests missed and 4 earlier (2026-12-04, branch fold19);
            from any lowest epoch instead of the first it also fired on a healthy 12-epoch run on
            40 validation samples. Not while a logged learning rate is raised (a warm-up).
        early_epochs: the early test needs this many epochs in a row above the best. Default 2:
            one epoch never fires; two is the lag asked of it (benchmarks/reallogs, issue 12).
        metric_z: the early test's WARNING needs an accuracy-like validation metric below its
            value at the best epoch by more than this many of its epoch noise, and by more than
            two validation samples (the smallest step between its logged values), in each of
            those epochs. Default 1.0: under noise alone one epoch lies that far below with
            probability ~0.16 (one-sided normal), `early_epochs` = 2 in a row ~1 in 40, and only
            after the loss passed its own `z` and `min_rise` test. (Until 2026-12-03 the fall had
            to pass `z` x the noise and one point, which held to INFO real overfitting runs of
            benchmarks/reallogs whose accuracy fell by 0.3-0.6 points, tens of samples.)
        metric_trend_z: an accuracy-like validation metric still within `metric_tolerance` of its
            best has nevertheless worsened when a line fitted to it from the best epoch on (4
            epochs or more) falls by more than this many standard errors (the larger of the
            scatter around the line and the metric's own epoch noise) and by more than two
            validation samples. Default 3.0: the stretch test's `trend_z`, for the same reason (the
            question is asked again every epoch). It judges the accuracy's course over the epochs
            since the turn rather than its level alone: Chollet's IMDB runs (benchmarks/reallogs)
            lose 0.3-0.7 points an epoch after the turn, within the noise their climb gives the
            accuracy, and were held at INFO one epoch longer.
        rows_z: a regression's (or, where the rows' -log p are known, a classification's) modest
            rise within this many standard errors of its validation loss over the validation
            rows is INFO. Default 1.0: the error of one validation loss;
            a difference between two epochs on the same rows has a smaller (paired) error, which
            the rows' losses alone would give, so one full error is lenient, but only up to the
            `info_max_rise` cap; past it, a rise within this many paired standard errors (the
            rows' own differences between the best epoch and now, where the adapter kept them) is
            INFO, and a classification's level error holds a rise that has not lasted
            `held_max_epochs`; else a WARNING whatever the rows.
    """

    id = "train-val-gap"
    family = "generalization"
    severity = Severity.WARNING
    #: a regression's validation rows are counted over the first pass (`rows_z`)
    #: and each validation pass's per-row losses (`rows_z`, classification)
    consumes = frozenset({Signal.EVERY_BATCH, Signal.VAL_LOSSES})
    reads_probe = True  # the row count only
    judges_batches = False  # the count serves a verdict on the validation curve: sanity skips it
    # validation unlike training, or a training loss weighted upside down: a gap, not overfitting
    explained_by = frozenset(
        {
            "label-shift",
            "class-imbalance:weights-inverted",
            # evaluation's running statistics are not training's batch statistics: a gap from epoch 0
            "batch-dependence:batchnorm-small-batch",
            # validation through dropout and batch statistics: its loss sits above training's
            "train-val-gap:train-mode-validation",
            # training without dropout (and with BatchNorm frozen): the regularisation is gone
            "train-val-gap:eval-mode-training",
        }
    )

    def __init__(
        self,
        patience: int = 3,
        z: float = 3.0,
        min_rise: float = 0.05,
        trend_z: float = 3.0,
        min_rise_range: float = 0.02,
        min_train_fall: float = 0.01,
        metric_tolerance: float = 0.01,
        info_max_rise: float = 0.15,
        held_max_epochs: int = 8,
        held_train_share: float = 0.5,
        short_min_rise: float = 0.10,
        short_max_falls: int = 1,
        shape_train_share: float = 0.5,
        early_epochs: int = 2,
        metric_z: float = 1.0,
        metric_trend_z: float = 3.0,
        rows_z: float = 1.0,
    ) -> None:
        self.rows_z = rows_z
        self.metric_trend_z = metric_trend_z
        self.metric_z = metric_z
        self.early_epochs = early_epochs
        self.short_min_rise = short_min_rise
        self.short_max_falls = short_max_falls
        self.shape_train_share = shape_train_share
        self.info_max_rise = info_max_rise
        self.held_max_epochs = held_max_epochs
        self.held_train_share = held_train_share
        self.metric_tolerance = metric_tolerance
        self.patience = patience
        self.min_train_fall = min_train_fall
        self.min_rise_range = min_rise_range
        self.trend_z = trend_z
        self.z = z
        self.min_rise = min_rise
        super().__init__()

    def reset(self) -> None:
        self._fired = False
        self._mode_told = False
        self._stop_mode_told = False
        self._stop_split_told = False
        self._eval_told = False
        # the best level a WARNING named, and its epoch: a validation loss that comes back below
        # it passed its rise (`_passed`); how many rises have passed so far
        self._told: tuple[float, int] | None = None
        self._passes = 0
        # a verdict held while the learning rate was raised above its value at the best epoch:
        # (best epoch, best level, the rise its test required, the noise it measured)
        self._deferred: tuple[int, float, float, float] | None = None
        self._val_rows = _ValidationRows()

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        if batch.split == "val":
            self._val_rows.add(batch)
        return ()

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        told = [
            *self._reversed_stop_mode(run),
            *self._stop_on_training(run),
            *self._train_mode_at_validation(run),
            *self._eval_mode_at_training(run),
        ]
        if self._fired and epoch_judgement_due(run.val_loss):
            told = [*told, *self._passed(run)]
        if self._fired or not epoch_judgement_due(run.val_loss):
            return told
        return [*told, *self._judge(run, final=False)]

    def _passed(self, run: RunState) -> list[Finding]:
        """An INFO (key `overfit-passed-N`) when the mean of the last `patience` validation losses
        is back below the best level that the last WARNING named (the level its rise was measured
        from, the same `patience`-epoch kind of mean): the log no longer holds that rise, so it
        passed (YOLO's validation loss jumps for a few epochs early in long runs at the
        highest rate and falls for hundreds more); the check then judges afresh from the new best
        (a later rise is told again). `mlcheck analyze`, which sees the whole log, demotes that
        WARNING to INFO."""
        if self._told is None:
            return []
        best, epoch = self._told
        val = run.val_loss.buckets(include_open=True)["mean"]
        p = max(1, self.patience)
        recent = val[-p:]
        if len(recent) < p or not bool(np.all(np.isfinite(recent))) or not float(np.mean(recent)) < best:
            return []
        self._fired, self._told, self._deferred = False, None, None
        self._passes += 1
        return [
            self.finding(
                f"The validation loss came back to {float(np.mean(recent)):.4g} (mean of the last {p} epochs), below "
                f"the best level that the overfitting finding of epoch {epoch} named ({best:.4g}): that rise passed "
                "(a spell of instability, not overfitting); a new rise from here is told again.",
                evidence={"val_loss": sig(float(np.mean(recent))), "below": sig(best), "told_at_epoch": epoch},
                step=run.step,
                epoch=run.epoch,
                severity=Severity.INFO,
                key=f"overfit-passed-{self._passes}",
            )
        ]

    def _reversed_stop_mode(self, run: RunState) -> list[Finding]:
        """Once: an EarlyStopping or best-weights ModelCheckpoint whose given mode counts the
        wrong direction of its metric as improvement (`RunInfo.stop_monitors`)."""
        if self._stop_mode_told or not run.info.stop_monitors:
            return []
        self._stop_mode_told = True
        wrong = [
            (words, metric, mode)
            for words, metric, mode in run.info.stop_monitors
            if reversed_mode(metric, mode, run.info.higher_is_better)
        ]
        if not wrong:
            return []
        words, metric, mode = wrong[0]
        better, wanted = ("higher", "max") if mode == "min" else ("lower", "min")
        counted = "fall" if mode == "min" else "rise"
        return [
            self.finding(
                f"{words} counts a {counted} of {metric} as improvement, but {metric} is better {better}: "
                "every epoch the run improves counts as none, so an early stopping ends a healthy run after "
                "`patience` epochs, and the best weights it restores or a checkpoint keeps are the worst epoch's.",
                evidence={"callbacks": [w for w, _, _ in wrong], "monitor": metric, "mode": mode},
                hint=f"Pass mode={wanted!r} for {metric} (or leave mode to the framework: Keras' 'auto' reads the "
                "metric's direction; Lightning's default is 'min'), e.g. a mode copied from an accuracy monitor "
                "onto a loss.",
                step=run.step,
                epoch=run.epoch,
                severity=Severity.WARNING,
                key="stop-mode",
            )
        ]

    def _stop_on_training(self, run: RunState) -> list[Finding]:
        """Once, at the first epoch with a validation loss: an EarlyStopping or best-weights
        ModelCheckpoint that watches a training metric (`RunInfo.stop_monitors`: "loss",
        "train_loss", or an unprefixed name whose validation twin is logged) while the run
        validates. Exact: no noise to allow for."""
        if self._stop_split_told or not run.info.stop_monitors or not len(run.val_loss.buckets()["mean"]):
            return []
        self._stop_split_told = True
        on_training = [(words, metric) for words, metric, _ in run.info.stop_monitors if _training_metric(metric, run)]
        if not on_training:
            return []
        words, metric = on_training[0]
        base = strip_split(metric.removesuffix("_epoch"))[1]
        return [
            self.finding(
                f"{words} watches the training {base}, not the validation {base} this run logs: the training "
                f"{base} keeps improving while the model overfits, so it never stops the run at the validation "
                "loss's best, and the weights it restores or keeps are the most fitted to the training data.",
                evidence={"callbacks": [w for w, _ in on_training], "monitor": metric, "validation": f"val_{base}"},
                hint=f"Pass monitor='val_{base}' (the Keras docs' EarlyStopping example watches 'loss' for a fit "
                "without validation data; with validation data, watch the validation metric).",
                step=run.step,
                epoch=run.epoch,
                severity=Severity.WARNING,
                key="stop-on-training",
            )
        ]

    def _train_mode_at_validation(self, run: RunState) -> list[Finding]:
        """Once: layers that act differently in training were in training mode while validation
        ran (`RunInfo.train_mode_at_validation`), so the validation numbers are not the model's."""
        layers = run.info.train_mode_at_validation
        if self._mode_told or not layers:
            return []
        self._mode_told = True
        named = _named_layers(layers)
        through = [
            *(["dropout"] if any("Dropout" in name for name in layers) else []),
            *(
                ["the batch statistics of BatchNorm (which also learns its running statistics from them)"]
                if any("Norm" in name for name in layers)
                else []
            ),
        ] or ["layers in training mode"]
        return [
            self.finding(
                f"Validation ran with {len(layers)} layer(s) in training mode ({named}): the validation outputs "
                f"go through {' and '.join(through)}, so the validation loss and metrics are noisy and worse than "
                "the model's, and a gap to the training loss is not overfitting.",
                evidence={"layers": list(layers), "epoch": run.epoch},
                hint="Do not call .train() in validation_step (Lightning puts the model in evaluation mode for "
                "validation and back in training mode after it), do not override train() so that it ignores "
                "mode=False, and in a Keras model's call() hand the layers its own `training` argument instead "
                "of training=True. Monte-Carlo dropout on purpose: switch it on when predicting, not in validation.",
                epoch=run.epoch,
                severity=Severity.WARNING,
                key="train-mode-validation",
            )
        ]

    def _eval_mode_at_training(self, run: RunState) -> list[Finding]:
        """Once: the model was in evaluation mode over a whole training step, with layers that act
        differently in training (`RunInfo.eval_mode_at_training`), so it trains without them."""
        layers = run.info.eval_mode_at_training
        if self._eval_told or not layers:
            return []
        self._eval_told = True
        named = _named_layers(layers)
        effects = [
            *(["dropout passes every unit through (no regularisation)"] if any("Dropout" in n for n in layers) else []),
            *(
                ["BatchNorm normalises with its running statistics and stops updating them"]
                if any("Norm" in n for n in layers)
                else []
            ),
        ]
        epoch, step = run.info.eval_mode_since or (run.epoch, run.step)
        return [
            self.finding(
                f"Training ran in evaluation mode from epoch {epoch} (step {step}): the model was in eval mode over a "
                f"whole training step with {len(layers)} layer(s) that act differently in training ({named}), so "
                f"{' and '.join(effects)} for every step from there on.",
                evidence={"layers": list(layers), "since_epoch": epoch, "since_step": step},
                hint="Call self.train() after a manual evaluation that called self.eval() (in on_train_epoch_end, "
                "in training_step), or evaluate in validation_step, where Lightning switches the mode and back "
                "for you. To freeze only BatchNorm statistics on purpose, put those layers in eval mode "
                "(`self.backbone.eval()`), not the whole module.",
                epoch=run.epoch,
                severity=Severity.WARNING,
                key="eval-mode-training",
            )
        ]

    def on_end(self, run: RunState) -> Iterable[Finding]:
        # seen in the last epoch, after its on_epoch (or a run with no epoch's end)
        told = [*self._reversed_stop_mode(run), *self._eval_mode_at_training(run)]
        return told if self._fired else [*told, *self._judge(run, final=True)]

    def _judge(self, run: RunState, final: bool) -> list[Finding]:
        b = run.val_loss.buckets(include_open=True)
        epochs, val = b["x1"], b["mean"]
        p = max(1, self.patience)
        if len(val) >= 2 * p + 2:
            standard = self._noisy_rise(epochs, val)
        elif final or not self._noise_measurable_later(run):
            # one fall is allowed where the run is known to end short of measuring its noise (its
            # configured length, or its end): a run of unknown length may be in a warm-up whose
            # larger steps shake the validation loss, which the later tests judge
            known = final or run.info.max_epochs is not None
            standard = self._short_rise(val, self.short_max_falls if known else 0)
        else:
            # the first epochs of a longer run: three noisy rises in a row are no evidence while the
            # noise can still be measured; the early test meanwhile catches a clean turn
            standard = None
        if standard is None:
            # at any length, never better than the first validation while the training loss halved
            standard = self._halved_rise(run, epochs, val)
        early = self._early_rise(val) if not self._metric_at_best(run) else None
        short = self._short_descent_rise(run, epochs, val) if early is None else None
        deferred = self._deferred_rise(epochs, val)
        if early is None and short is None and standard is None and deferred is None:
            return []  # no rise (the usual case): the training levels are not needed
        train = epoch_train_levels(run)  # once, for both tests
        # the early test speaks first, unless it would say INFO where the standard one says WARNING
        tests = ((early, True), (short, True), (standard, False), (deferred, False))
        verdicts = [v for v in (self._verdict(run, epochs, train, rise, is_early) for rise, is_early in tests) if v]
        verdicts.sort(key=lambda v: v[-1] is not None)  # a WARNING (nothing held) before an INFO
        if not verdicts:
            return []
        (best_at, best, recent, sigma), best_epoch, train_best, train_now, kept, held = verdicts[0]
        raised = _raised_rate(run, best_epoch)
        lost = self._metric_below_first(run, best_epoch) if raised is not None else None
        if raised is not None and lost is not None:
            # the rise came with a larger rate than the one that reached the best, and the decisions are
            # worse than after the first epoch: instability; held until that passes, then confirmed only
            # if the loss is still up by what this test asked of it
            margin = self.z * sigma if math.isfinite(sigma) else 0.0
            floor = self.min_rise if math.isfinite(sigma) else self.short_min_rise
            self._deferred = (best_epoch, best, max(margin, floor * abs(best)), sigma)
            if not final:
                return []  # judged again each epoch: a rise that outlasts the raised rate is overfitting
            return [self._raised_rate_finding(run, raised, lost, best_epoch, best, recent, float(val[best_at]))]
        since = int(epochs[-1]) - best_epoch
        guard = self._early_stop_guard(run, b, best, recent) if held is None else None
        if held is None and guard is None:
            # an INFO is judged again: it becomes a WARNING if the metric drops, or if the run goes
            # on past its early stopping's patience
            self._fired = True
            # a rise passes when the loss comes back to the best level it rose from (over39: below
            # it by what the rise had to exceed freed 2 of main's 13 early hits on benchmarks/reallogs,
            # back to it 11, losing one hit on time; within one noise unit above it lost 5)
            self._told = (best, int(run.epoch) if run.epoch is not None else -1)
        by_short = short is not None and verdicts[0][0] is short
        held, kept = self._held_as_level(run, best_epoch, held, kept, by_short)
        tail, evidence, hint = self._wording(run, held, guard, best_epoch)
        if kept is not None and recent - best <= self.info_max_rise * abs(best):
            tail = (
                f" Validation {kept.name} has held ({kept.told}), but the rise has lasted {since} epochs while "
                f"the training loss fell to {train_now / train_best:.0%} of its value at the best: the model "
                "fits its training set ever closer at the validation loss's expense, not a passing over-confidence."
            )
        elif kept is not None:
            tail = (
                f" Validation {kept.name} has held ({kept.told}), but a rise of "
                f"{100 * (recent / best - 1):.3g}% is past the {100 * self.info_max_rise:.3g}% up to which "
                "over-confidence is harmless: the predicted probabilities are getting worse."
            )
        opening = "The model is overfitting: validation"
        if by_short and held is None and guard is None:
            # what the short test knows: a rise over a few epochs, against a noise measured on few points
            opening, tail, evidence = self._short_told(len(val), best_epoch, tail, evidence)
        return [
            self.finding(
                # an INFO a held metric or the rows' error explains opens with the rise itself:
                # "The model is overfitting" and "rather than worse" in one finding contradict
                ("Validation" if held is not None else opening)
                + f" loss rose from its best level {best:.4g} (around epoch {best_epoch}, whose own loss was "
                f"{float(val[best_at]):.4g}) to {recent:.4g} over {since} epochs while training loss fell "
                f"from {train_best:.4g} to {train_now:.4g}." + tail,
                severity=Severity.INFO if held is not None or guard is not None else None,
                evidence={
                    "best_epoch": best_epoch,
                    "best_val_loss": sig(best),
                    "val_loss_at_best": sig(float(val[best_at])),
                    "val_loss": sig(recent),
                    "train_loss_at_best": sig(train_best),
                    "train_loss": sig(train_now),
                    "gap_at_best": sig(float(val[best_at]) - train_best),
                    "gap": sig(recent - train_now),
                    **({"val_noise": sig(sigma)} if math.isfinite(sigma) else {}),
                    "epochs_since_best": since,
                    **evidence,
                },
                hint=hint
                or (
                    f"Keep the checkpoint from epoch {best_epoch} (early stopping on the validation "
                    "loss) and add regularisation: weight decay, dropout, augmentation, or more data."
                ),
                step=run.step,
                epoch=run.epoch,
                key=f"overfit-{self._passes + 1}" if self._passes else "overfit",
            )
        ]

    def _deferred_rise(self, epochs: np.ndarray, val: np.ndarray) -> tuple[int, float, float, float] | None:
        """(index of the best epoch, best, recent, noise) of a verdict held while the learning rate
        was raised (`_deferred`) when the validation loss is still above that best level by the rise
        its test asked for over each of the last `patience` epochs: once the rate is back, the spike
        it caused has passed, and what stays up is overfitting (the noise measured over the spike
        would otherwise hide it); None when none was held, or the loss came back (a new lowest
        epoch drops the held verdict)."""
        if self._deferred is None:
            return None
        best_epoch, best, margin, sigma = self._deferred
        where = np.flatnonzero(epochs == best_epoch)
        if not len(where):
            return None
        i, p = int(where[0]), max(1, self.patience)
        if float(np.min(val[i + 1 :], initial=math.inf)) < float(val[i]):
            self._deferred = None  # a new best since: the spike passed and the run learned on
            return None
        recent = val[-p:]
        if len(val) - i <= p or not float(np.min(recent)) > best or not float(np.mean(recent)) - best > margin:
            return None
        return i, best, float(np.mean(recent)), sigma

    def _metric_below_first(self, run: RunState, best_epoch: int) -> tuple[str, float, float] | None:
        """(name, first value, lowest since) of an accuracy-like validation metric that fell, at some
        epoch since the validation loss's best, below its first validation's value by more than
        `metric_z` x its epoch noise and two validation samples (`_resolution`): the model lost even
        what its first epoch learned, which larger steps do to an optimizer and memorisation, which
        keeps improving the training fit, does not within a schedule's peak. None when none is
        logged or none fell that far."""
        for name, series in _decision_metrics(run):
            b = series.buckets(include_open=True)
            values = b["mean"]
            since = values[b["x1"] >= best_epoch]
            if len(values) < _NOISE_MIN_POINTS or not len(since):
                continue
            floor = float(values[0]) - max(self.metric_z * noise(values), _SAMPLES_MOVED * _resolution(values))
            if float(np.min(since)) < floor:
                return name, float(values[0]), float(np.min(since))
        return None

    def _raised_rate_finding(
        self,
        run: RunState,
        raised: _RaisedRate,
        lost: tuple[str, float, float],
        best_epoch: int,
        best: float,
        recent: float,
        at_best: float,
    ) -> Finding:
        """INFO at the run's end when its validation loss rose from its best while the learning rate
        stayed raised above its value at the best epoch and the decisions were worse than after the
        first epoch: the larger steps' instability, which a falling rate would have settled, as much
        as overfitting."""
        name, first, now = lost
        return self.finding(
            f"Validation loss rose from its best level {best:.4g} (around epoch {best_epoch}, whose own loss was "
            f"{at_best:.4g}) to {recent:.4g}, but the learning rate is {raised.now:.3g} now, "
            f"{raised.now / raised.at_best:.3g}x its {raised.at_best:.3g} at that epoch, and validation {name} fell "
            f"to {now:.4g} since, below its first epoch's {first:.4g}: larger steps throwing the model off "
            "(instability) as much as overfitting, and the run ended before the rate came back down to tell.",
            severity=Severity.INFO,
            evidence={
                "best_epoch": best_epoch,
                "best_val_loss": sig(best),
                "val_loss_at_best": sig(at_best),
                "val_loss": sig(recent),
                "lr_at_best": sig(raised.at_best),
                "lr": sig(raised.now),
                f"first_val_{name}": sig(first),
                f"lowest_val_{name}": sig(now),
            },
            hint=(
                f"Keep the checkpoint from epoch {best_epoch} (on the validation loss). If the validation loss "
                "spikes whenever the rate is high, lower the schedule's peak (OneCycleLR's max_lr, the warm-up's "
                "target rate)."
            ),
            step=run.step,
            epoch=run.epoch,
            key="overfit",
        )

    @staticmethod
    def _wording(
        run: RunState,
        held: _HeldMetric | _Unresolved | None,
        guard: tuple[EarlyStop, int, int] | None,
        best_epoch: int,
    ) -> tuple[str, dict, str | None]:
        """(the message's last sentence, extra evidence, a hint in place of the usual one) for a
        rise that a held metric, the validation set's own error or the run's own early stopping
        makes INFO, or that an early stopping keeping the last epoch's weights does not protect."""
        if isinstance(held, _Unresolved):
            error = (
                f"the standard error of the rise itself over its {held.rows} rows ({held.stderr:.3g}, from each "
                f"row's loss at epoch {best_epoch} and now: a few rows carry it)"
                if held.paired
                else f"the standard error of the validation loss over its {held.rows} rows ({held.stderr:.3g})"
            )
            tail = f" The rise is within {error}, so they cannot tell whether the model got worse on new data."

            hint = (
                f"Nothing may be wrong. A larger validation set (or k-fold validation) would tell; to be safe, keep "
                f"the checkpoint from epoch {best_epoch} (early stopping on the validation loss)."
            )
            return tail, {"val_rows": held.rows, "val_loss_stderr": sig(held.stderr)}, hint
        if held is not None:
            tail = (
                f" Validation {held.name} has not dropped ({held.told}), so the model is growing over-confident "
                "rather than worse."
            )
            return tail, {}, None
        if guard is not None:
            stop, kept_epoch, left = guard
            tail = (
                f" The run's own early stopping on {stop.monitor} (patience {stop.patience}) "
                + ("stops it now" if left == 0 else f"stops it within {left} epochs")
                + f" and {stop.keeps_best} keeps the weights of epoch {kept_epoch}, its best."
            )
            hint = (
                f"Nothing to do for this run: the weights of epoch {kept_epoch} are kept. To reach a "
                "better best, regularise: weight decay, dropout, augmentation, or more data."
            )
            return tail, {"early_stopping_patience": stop.patience, "kept_epoch": kept_epoch}, hint
        stop = run.info.early_stop
        if stop is not None and stop.keeps_best is None and stop.watches_val_loss:
            hint = (
                f"Your early stopping on {stop.monitor} stops the run but keeps the weights of its last "
                f"epoch: restore those of epoch {best_epoch} (Keras: "
                "EarlyStopping(restore_best_weights=True); Lightning: ModelCheckpoint(monitor="
                f"{stop.monitor!r}) and its best_model_path), and regularise: weight decay, dropout, "
                "augmentation, or more data."
            )
            return "", {}, hint
        return "", {}, None

    def _early_stop_guard(
        self, run: RunState, b: Mapping[str, np.ndarray], best: float, recent: float
    ) -> tuple[EarlyStop, int, int] | None:
        """(the run's early stopping, the epoch whose weights it keeps, validations left before it
        stops) when the run's own early stopping on the validation loss will end this rise and
        keeps the weights of the best epoch; None when there is none, it keeps the last epoch's
        weights, the rise is large (`info_max_rise`), or the run went on past its patience (it is
        evidently not stopping this run: a monitored name that is not logged, a reset)."""
        stop = run.info.early_stop
        if stop is None or stop.keeps_best is None or not stop.watches_val_loss:
            return None  # no early stopping, or one that hands over the overfitted last epoch
        if recent - best > self.info_max_rise * abs(best):
            return None  # a large rise: overfitting fast enough to need regularising, whatever is kept
        state = stop.replay(b["mean"], b["n"])
        if state is None or state[1] > stop.patience:
            return None
        return stop, int(b["x1"][state[0]]), stop.patience - state[1]

    def _verdict(
        self,
        run: RunState,
        epochs: np.ndarray,
        train: Mapping[int, float],
        rise_at: tuple[int, float, float, float] | None,
        early: bool,
    ) -> tuple | None:
        """(the test's rise, best epoch, training loss at the best and now, a metric that held
        through a large rise or None, a metric held through a modest rise or None) when the rise
        comes with a falling training loss (`train`: `epoch_train_levels`); None otherwise."""
        if rise_at is None:
            return None
        best_at, best, recent, _ = rise_at
        best_epoch = int(epochs[best_at])
        if best_epoch not in train or not train:
            return None
        train_best, train_now = train[best_epoch], train[max(train)]
        if not train_best - train_now > self.min_train_fall * abs(train_best):
            return None  # training loss flat or rising: noise or divergence, not overfitting
        first = self._first_train_loss(run)
        if first is not None and train_now >= first:
            # fell since the best epoch but not below where training started: the model has not
            # fitted its training data, so the rise is instability (a loss that blew up and is
            # settling back, lr 10 clipped to 0.5), not memorisation; lr-too-high and
            # loss-divergence name it
            return None
        # over-confidence with decisions intact is INFO, but only while the rise is modest; past
        # that it is a WARNING that still says the decisions held (`kept`, for the message)
        metric = self._metric_not_fallen(run, best_epoch) if early else self._metric_held(run, best_epoch)
        modest = recent - best <= self.info_max_rise * abs(best)
        lasting = (
            int(epochs[-1]) - best_epoch >= self.held_max_epochs and train_now <= self.held_train_share * train_best
        )
        held, kept = (metric, None) if modest and not lasting else (None, metric)
        if held is None and modest:
            held = self._within_row_error(run, best, recent) or self._within_sample_error(run, best, recent)
        elif held is None:
            # past the cap the rise's own (paired) error on the same rows holds it where the adapter
            # kept them (batch 35's h03: one full error of the level is lenient for a difference of
            # two epochs on the same rows); else a classification's rows still decide whether there
            # is a rise at all while it has not lasted: one smaller than the loss's own standard
            # error over the validation rows is not known to have happened (batch 38's h04: wine,
            # 38 rows, 0.188 -> 0.219, error 0.057)
            held = self._within_paired_error(run, best_epoch, best, recent)
            if held is None and not lasting:
                held = self._within_sample_error(run, best, recent)
                kept = None if held is not None else metric
        return rise_at, best_epoch, train_best, train_now, kept, held

    def _within_row_error(self, run: RunState, best: float, recent: float) -> _Unresolved | None:
        """For a regression loss whose per-row spread is known (`_ROW_SPREAD`), the validation
        rows and the standard error of the best validation loss over them when the rise lies
        within `rows_z` of it: so few rows cannot tell whether the model got worse on new data
        (a regression has no accuracy to confirm a turn). None otherwise, or when the rows of
        the validation set were not all seen (`mlcheck analyze`, a sampled pass)."""
        spread = _ROW_SPREAD.get(run.info.loss or "")
        rows = self._val_rows.total()
        if spread is None or rows is None or not best > 0:
            return None
        return self._unresolved(rows, spread * best / math.sqrt(rows), best, recent)

    #: how far the mean of the recorded rows' -log p may lie from the logged validation loss of
    #: the same epoch, as a share of it, for those rows to stand for that loss (`_within_sample_error`)
    SAMPLE_LOSS_TOLERANCE = 0.05

    def _within_sample_error(self, run: RunState, best: float, recent: float) -> _Unresolved | None:
        """For a classification loss, from each validation row's -log of its true-class
        probability: the validation rows and the standard error of the best validation loss over
        them when the rise lies within `rows_z` of it. Two sources, the first that has them: the
        per-sample outputs where their capture is on (an opt-in per-sample check,
        `mlcheck.samples`; every row seen at the latest validation), else the latest validation
        pass's per-row losses summed by the adapter (`RunState.val_row_losses`, of the epoch the
        latest validation loss was logged at). Their standard deviation / sqrt(rows) is that
        epoch's error, scaled to the best level by best / that epoch's mean (the regression
        guard's proportional spread: smaller than the latest epoch's own when the loss rose, so
        it errs toward a warning). Used only where the rows' mean loss matches the logged
        validation loss of that epoch within `SAMPLE_LOSS_TOLERANCE` (else the logged loss is not
        the rows' cross-entropy: weighted, smoothed, focal, a sample of the set). None otherwise."""
        if not best > 0:
            return None
        spread = self._sample_spread(run)
        if spread is None:
            spread = self._row_loss_spread(run)
        if spread is None:
            return None
        rows, mean, std = spread
        epoch_loss = run.val_loss.buckets(include_open=True)["mean"]
        if not len(epoch_loss) or not math.isfinite(float(epoch_loss[-1])):
            return None
        logged = float(epoch_loss[-1])
        if not mean > 0 or not math.isfinite(std) or abs(mean - logged) > self.SAMPLE_LOSS_TOLERANCE * logged:
            return None
        return self._unresolved(rows, std / math.sqrt(rows) * best / mean, best, recent)

    def _within_paired_error(self, run: RunState, best_epoch: int, best: float, recent: float) -> _Unresolved | None:
        """For a rise past `info_max_rise`, from each validation row's loss at the best epoch and
        at the latest (`RunState.val_rows_by_epoch`: passes of at most `RowLosses.PAIRED_MAX_ROWS`
        rows, the same classes in the same order, so the same rows): the standard error of the
        mean of the rows' differences, when the rise lies within `rows_z` of it. A rise that one or
        two rows of a small set carry (a misclassified row growing more confident) has a paired
        error as large as itself; a model getting worse on the set as a whole has a small one.
        Used only where each pass's rows' mean matches its logged validation loss within
        `SAMPLE_LOSS_TOLERANCE`. None otherwise."""
        b = run.val_loss.buckets(include_open=True)
        if not len(b["x1"]):
            return None
        latest = int(b["x1"][-1])
        at_best, now = run.val_rows_by_epoch.get(best_epoch), run.val_rows_by_epoch.get(latest)
        if at_best is None or now is None or latest == best_epoch or at_best.rows != now.rows or at_best.rows < 2:
            return None
        if not np.array_equal(at_best.labels, now.labels):
            return None  # a shuffled validation set: its rows do not pair
        for row in (at_best, now):
            logged = b["mean"][b["x1"] == row.epoch]
            if not len(logged) or not abs(row.mean - float(logged[-1])) <= self.SAMPLE_LOSS_TOLERANCE * abs(
                float(logged[-1])
            ):
                return None  # the logged loss is not these rows' mean loss
        rise = now.losses.astype(np.float64) - at_best.losses.astype(np.float64)
        stderr = float(np.std(rise, ddof=1)) / math.sqrt(now.rows)
        if not math.isfinite(stderr):
            return None
        return _Unresolved(now.rows, stderr, paired=True) if recent - best <= self.rows_z * stderr else None

    def _unresolved(self, rows: int, stderr: float, best: float, recent: float) -> _Unresolved | None:
        """The rows and the best level's standard error over them when the rise lies within
        `rows_z` of it (the two guards above); else None."""
        return _Unresolved(rows, stderr) if recent - best <= self.rows_z * stderr else None

    @staticmethod
    def _sample_spread(run: RunState) -> tuple[int, float, float] | None:
        """(rows, mean, standard deviation) of -log p of the validation rows in the per-sample
        store at the latest validation; None where the store is off or not every row was seen."""
        store = run.samples.get("val") if run.samples is not None else None
        if store is None or store.size < 2:
            return None
        last = store.column("last_epoch")
        if not bool(np.all(last == last[0])):
            return None  # rows not all seen at the latest validation
        # the probability is kept to 1/255: a row at 0 is read as half a level (its loss capped)
        losses = -np.log(np.maximum(store.latest_prob(), 0.5 / 255.0))
        return int(store.size), float(np.mean(losses)), float(np.std(losses, ddof=1))

    @staticmethod
    def _row_loss_spread(run: RunState) -> tuple[int, float, float] | None:
        """(rows, mean, standard deviation) of the latest validation pass's per-row losses that
        the adapter summed (`RunState.val_row_losses`), where they are of the epoch of the latest
        logged validation loss; None otherwise (no adapter took them: a custom loss, no targets
        found, `mlcheck analyze`)."""
        row = run.val_row_losses
        if row is None or row.rows < 2 or run.info.task == "regression":
            return None  # (a regression's outputs read as class scores: their -log p mean nothing)
        epochs = run.val_loss.buckets(include_open=True)["x1"]
        if not len(epochs) or row.epoch is None or int(epochs[-1]) != row.epoch:
            return None  # of another validation than the one the loss was logged for
        return row.rows, row.mean, row.std

    @staticmethod
    def _first_train_loss(run: RunState) -> float | None:
        """The first finite training loss of the run (a step's, else an epoch's), or None."""
        for series in (run.train_loss, run.epoch_train_loss):
            if series.first_value is not None:
                return float(series.first_value)
        return None

    def _noisy_rise(self, epochs: np.ndarray, val: np.ndarray) -> tuple[int, float, float, float] | None:
        """(index of the best epoch, best, recent, noise) when the validation loss rose above its
        best stretch by more than its measured noise, lastingly and with a trend; else None.

        Stretches of `patience` epochs first; in a run of 3 x `_LONG_STRETCH` validations or more,
        then stretches of `_LONG_STRETCH`: their means carry less of each epoch's noise, so a
        lasting rise that a noisy curve hides from 3-epoch means shows in 5-epoch ones. The longer
        comparison is made at the z whose one-sided tail is half of `z`'s (3.21 for 3: 0.07%), so
        the pair says yes under noise alone at most 1.5 x as often as the first alone (Bonferroni)."""
        p = max(1, self.patience)
        found = self._stretch_rise(epochs, val, p, self.z)
        if found is not None or len(val) < 3 * _LONG_STRETCH or _LONG_STRETCH <= p:
            return found
        z = NormalDist().inv_cdf(1.0 - NormalDist().cdf(-self.z) / 2.0)
        return self._stretch_rise(epochs, val, _LONG_STRETCH, z)

    def _stretch_rise(
        self, epochs: np.ndarray, val: np.ndarray, p: int, z: float
    ) -> tuple[int, float, float, float] | None:
        """The stretch test with stretches of `p` epochs, at `z` noises."""
        sigma = noise(val)
        if not math.isfinite(sigma):
            return None
        means = rolling_mean(val, p)
        earlier = means[: len(means) - p]  # stretches that end before the recent one begins
        i = int(np.argmin(earlier))
        if len(val) - i >= 4:  # noise often grows once the loss flattens: measure it there too
            sigma = max(sigma, noise(val[i:]))
        best, recent = float(earlier[i]), float(means[-1])
        came_down = float(val[0]) - best  # how far validation improved before turning
        # two means of p epochs each: their difference has sqrt(2 / p) x one epoch's noise
        needed = max(z * sigma * math.sqrt(2.0 / p), self.min_rise * abs(best), self.min_rise_range * came_down)
        if recent - best <= needed:
            return None
        if float(np.min(val[-p:])) <= best + sigma * math.sqrt(2.0 / p):
            # each recent epoch above the best level by the noise of the compared means (Prechelt's
            # UP: the rise holds at every step, not in the mean alone): a spike of two epochs in
            # three carries the mean by itself (held-out-9 bflameswif v0: 0.048, 0.13, 0.23 on 0.042)
            return None
        climb, se = trend_drop(epochs[i:], -val[i:])
        if not climb > self.trend_z * se and not mann_kendall_z(val[i:]) > self.trend_z:
            # a flat, noisy stretch that happens to end high: no trend, by a fitted line nor by
            # ranks (a few wild epochs widen the line's error, not the ranks')
            return None
        return i + int(np.argmin(val[i : i + p])), best, recent, sigma

    def _early_rise(self, val: np.ndarray) -> tuple[int, float, float, float] | None:
        """(index of the best epoch, best, recent, noise) as soon as each of the last
        `early_epochs` epochs lies above the best validation loss by more than `min_rise` of it
        (Prechelt's generalisation loss GL above 100 x `min_rise`) and by more than `z` x the
        epoch noise of the validation loss around its turn; else None.

        The noise is the scatter of the log of the loss around a parabola fitted from `patience`
        epochs before the lowest one to now: a smooth U-shaped turn leaves almost none, so a clean
        rise is called after `early_epochs` epochs, while a noisy plateau leaves all of its noise
        (second differences over the whole run would let a smooth early descent hide it, and
        their median would ignore the one wild epoch that matters over so few). The best level is
        the median of the lowest epoch and its neighbours: one lucky low epoch on a noisy plateau
        is not the yardstick."""
        k = max(1, self.early_epochs)
        m = int(np.argmin(val)) if len(val) else 0
        if len(val) - 1 - m < k or not bool(np.all(np.isfinite(val))) or not bool(np.all(val > 0)):
            return None  # too few epochs since the lowest one, or a loss whose log is undefined
        log_val = np.log(val)
        sigma = _fit_noise(log_val[max(0, m - max(1, self.patience)) :])
        if not math.isfinite(sigma):
            return None
        best = float(np.median(val[max(0, m - 1) : m + 2]))
        low = float(np.min(val[-k:]))
        if not low > best * (1.0 + self.min_rise):
            return None  # GL below the floor: too small a rise to matter
        if not math.log(low / best) > self.z * sigma:
            return None  # within the scatter of the curve around its turn
        # the level now, as the other tests measure it (the mean of the last `patience` epochs),
        # so that the INFO-or-WARNING decision does not depend on which test spoke first
        return m, best, float(np.mean(val[-max(1, self.patience) :])), sigma * best

    def _held_as_level(
        self,
        run: RunState,
        best_epoch: int,
        held: _HeldMetric | _Unresolved | None,
        kept: _HeldMetric | None,
        by_short: bool,
    ) -> tuple[_HeldMetric | _Unresolved | None, _HeldMetric | None]:
        """(held, kept) for a verdict of the short-run test: it compares two means of `patience`
        epochs, as the stretch test does, so a metric that held is told as that test tells it (its
        best level and best point, `_metric_held`) where that test sees it held too; the hold itself
        stays the early test's (`_metric_not_fallen`). Unchanged for the other tests."""
        if not by_short:
            return held, kept
        if isinstance(held, _HeldMetric):
            held = self._metric_held(run, best_epoch) or held
        if kept is not None:
            kept = self._metric_held(run, best_epoch) or kept
        return held, kept

    def _short_told(self, n: int, best_epoch: int, tail: str, evidence: dict) -> tuple[str, str, dict]:
        """(opening, tail, evidence) of a WARNING from the short-run test: a rise over the last
        `patience` epochs judged against a noise measured on a handful of epochs, so it says the
        model may be overfitting, that the loss may still come back, and what keeps the best
        weights either way (issue 12: findings must not claim more than the log shows)."""
        p = max(1, self.patience)
        tail += (
            f" With {n} validations its noise is measured on few epochs, so the loss may still come back; "
            f"early stopping on the validation loss with patience {p} keeps epoch {best_epoch} either way."
        )
        return "The model may be overfitting: validation", tail, {**evidence, "validations": n}

    def _short_descent_rise(
        self, run: RunState, epochs: np.ndarray, val: np.ndarray
    ) -> tuple[int, float, float, float] | None:
        """The early test over the last `patience` epochs of a run of `_SHORT_RUN` validations or
        fewer: each above the lowest, their mean above the best level (the early test's) by more
        than `min_rise` of it and by `z` x the early test's noise x sqrt(2 / patience) (a difference
        of two means of `patience` epochs, as the stretch test measures it), and the training loss
        lower at every epoch since the lowest (a second witness: the model fits its training set
        ever closer while the validation loss climbs). None otherwise, and in longer runs or while
        an accuracy-like metric is at its best."""
        if len(val) > _SHORT_RUN or self._metric_at_best(run):
            return None
        p = max(1, self.patience)
        m = int(np.argmin(val)) if len(val) else 0
        if len(val) - 1 - m < min(2, p) or not bool(np.all(np.isfinite(val))) or not bool(np.all(val > 0)):
            return None
        sigma = _fit_noise(np.log(val[max(0, m - p) :]))
        if not math.isfinite(sigma):
            return None
        best = float(np.median(val[max(0, m - 1) : m + 2]))
        if not any(self._short_tail_risen(val, m, k, best, sigma) for k in sorted({min(2, p), p})):
            return None
        recent = float(np.mean(val[-p:]))
        train = epoch_train_levels(run)
        levels = [train.get(int(e)) for e in epochs[m:]]
        if any(t is None for t in levels) or not bool(np.all(np.diff(np.asarray(levels, dtype=np.float64)) < 0)):
            return None
        return m, best, recent, sigma * best

    def _short_tail_risen(self, val: np.ndarray, m: int, k: int, best: float, sigma: float) -> bool:
        """Whether the last `k` epochs (all after the lowest, `m`) rose past the short-run test's
        bar: their mean above `best` by `min_rise` and by `z` x `sigma` (the log loss's noise) x
        sqrt(1 / k + 1 / patience) (the difference of a `k`-epoch mean and the best level, a
        `patience`-epoch one). With k = 2 each of the two must clear that bar on its own (over39):
        a rise that is not one point. One spike carries a mean of two (benchmarks/reallogs
        held-out-8 dextergome, a U-Net: 0.0144 then 0.0250 told at epoch 6, three epochs before the
        loss fell 34% below that best); with both above, noise alone clears it less often than the
        mean, whose z it keeps."""
        if len(val) - 1 - m < k:
            return False
        tail = val[-k:]
        bar = self.z * sigma * math.sqrt(1.0 / k + 1.0 / max(1, self.patience))
        recent = float(np.mean(tail))
        if not float(np.min(tail)) > float(val[m]) or not recent > best * (1.0 + self.min_rise):
            return False
        low = recent if k >= max(1, self.patience) else float(np.min(tail))
        return math.log(low / best) > bar

    def _noise_measurable_later(self, run: RunState) -> bool:
        """True when the run is configured for enough epochs (2 x `patience` + 2) to measure the
        validation loss's noise before it ends: the short-run shape test then waits for it."""
        planned = run.info.max_epochs
        return planned is not None and planned >= 2 * max(1, self.patience) + 2

    def _short_rise(self, val: np.ndarray, falls: int = 0) -> tuple[int, float, float, float] | None:
        """The same question for a run too short to measure its noise (under 2 x patience + 2
        epochs): the validation loss rose at every epoch for `patience` epochs or more after its
        lowest epoch, but for at most `falls` of them, and the last `patience` epochs average
        `short_min_rise` above it. Under noise alone `patience` rises in a row after a minimum
        happen about once in (p + 1)! (1 in 24 for p = 3), and then also by 10%: the shape stands
        in for the noise estimate. An epoch that fell is a measure of that noise: a fall between
        two epochs is the difference of two noisy values, so the noise is at least the largest
        fall / sqrt(2), and each of the last `patience` epochs must lie above the lowest by more
        than `z` x that (one noisy epoch does not break a rise that stands clear of it; a rise
        as small as the falls is noise)."""
        p = max(1, self.patience)
        if len(val) < p + 1 or not bool(np.all(np.isfinite(val))):
            return None
        i = int(np.argmin(val))
        after = val[i:]
        if len(after) < p + 1:
            return None
        down = -np.diff(after)
        down = down[down >= 0]  # the epochs that did not rise
        if len(down) > falls:
            return None
        best, recent = float(val[i]), float(np.mean(val[-p:]))
        if not recent - best > self.short_min_rise * abs(best):
            return None
        if len(down) and not float(np.min(val[-p:])) - best > self.z * float(np.max(down)) / math.sqrt(2.0):
            return None
        return i, best, recent, math.nan

    def _halved_rise(
        self, run: RunState, epochs: np.ndarray, val: np.ndarray
    ) -> tuple[int, float, float, float] | None:
        """A validation loss never better than its first validation, at any length: it rose at
        every epoch since the first (`patience` or more), the last `patience` average
        `short_min_rise` above it, and the training loss fell to `shape_train_share` of its first
        epoch's value or below. The model learned nothing that carried to new data after its first
        epoch while fitting its training set twice as well: memorisation, told without waiting for
        the noise the stretch test needs (benchmarks/reallogs held-out-7: a regression whose
        validation loss went 58 -> 73, 89, 113 while its training loss fell 106 -> 49, its later
        noise too large for the stretch test). A run whose validation loss improved first and then
        rose three times while its training loss halved is not enough: a healthy 12-epoch run on 40
        validation samples does that by chance (tests/integrations/test_small_validation_set.py).
        Nor is a rise while the logged learning rate is over 1.2x its first epoch's (a warm-up's
        larger steps spike the validation loss, which comes back); a warm-up spike in a log without
        its rate has this shape and is told."""
        rise = self._short_rise(val)
        if rise is None or rise[0] != 0:
            return None
        train = epoch_train_levels(run)
        best_epoch = int(epochs[rise[0]])
        if not train or best_epoch not in train:
            return None
        if not train[max(train)] <= self.shape_train_share * train[best_epoch]:
            return None
        if _raised_rate(run, best_epoch) is not None:
            return None  # a warm-up still climbing: its larger steps spike the validation loss
        return rise

    def _metric_at_best(self, run: RunState) -> bool:
        """True when an accuracy-like validation metric is at its best at the latest epoch: the
        decisions still improve, so a rising loss is not yet evidence enough for the early test."""
        for _name, series in _decision_metrics(run):
            values = series.buckets(include_open=True)["mean"]
            if len(values) >= 2 and float(values[-1]) >= float(np.max(values[:-1])):
                return True
        return False

    def _metric_not_fallen(self, run: RunState, best_epoch: int) -> _HeldMetric | None:
        """The accuracy-like validation metric (its value at the best epoch, its recent level) that
        has not fallen below its value at the best epoch by more than `metric_z` x its epoch noise
        and two validation samples (`_resolution`) in each of the last `early_epochs` epochs; None
        when there is none or every one fell: the confirmation the early test asks of the
        decisions."""
        k = max(1, self.early_epochs)
        for name, series in _decision_metrics(run):
            b = series.buckets(include_open=True)
            values = b["mean"]
            at_best = values[b["x1"] == best_epoch]
            recent = _level_told("recent", values[-k:])
            if not len(at_best) or len(values) < _NOISE_MIN_POINTS:  # too little to confirm a fall
                top = int(np.argmax(values))
                return _HeldMetric(name, f"best {values[top]:.4g} at epoch {int(b['x1'][top])}, {recent}")
            # and by more than a sample or two of the validation set: a converged accuracy moves by
            # that much from epoch to epoch, more than its noise from second differences may say
            floor = float(at_best[0]) - max(self.metric_z * noise(values), _SAMPLES_MOVED * _resolution(values))
            if not bool(np.all(values[-k:] < floor)):
                return _HeldMetric(name, f"{at_best[0]:.4g} at epoch {best_epoch}, the loss's best, {recent}")
        return None

    def _metric_held(self, run: RunState, best_epoch: int) -> _HeldMetric | None:
        """The accuracy-like validation metric (its best and recent levels, its best point) that has not worsened;
        None when there is none or one has worsened: its recent mean below its best stretch, or a
        steady fall since the validation loss's best epoch (`_falls_steadily`)."""
        held = None
        for name, series in _decision_metrics(run):
            b = series.buckets(include_open=True)
            values = b["mean"]
            if len(values) < 2 * self.patience:
                continue
            p = max(1, self.patience)
            best = float(np.max(rolling_mean(values, p)))
            recent = float(np.mean(values[-p:]))
            scale = 100.0 if best > 1.5 else 1.0  # accuracy logged in percent
            tolerance = max(self.metric_tolerance * scale, noise(values) if len(values) >= 4 else 0.0)
            if recent < best - tolerance:
                return None  # a decision metric got worse: real overfitting
            if _falls_steadily(b["x1"], values, best_epoch, self.metric_trend_z):
                return None  # still near its best, but falling epoch after epoch since the turn
            top = int(np.argmax(values))
            held = _HeldMetric(
                name,
                f"best level {best:.4g} over {p} validations, {_level_told('recent', values[-p:])}; "
                f"best point {values[top]:.4g} at epoch {int(b['x1'][top])}",
            )
        return held


def _level_told(which: str, values: np.ndarray) -> str:
    """ "recent level 0.2369 over 3 validations" for a mean of several validations, "recent 0.2347"
    for one: a level is not a value the log holds, so the message says which it gives."""
    if len(values) == 1:
        return f"{which} {float(values[0]):.4g}"
    return f"{which} level {float(np.mean(values)):.4g} over {len(values)} validations"


def _decision_metrics(run: RunState) -> Iterator[tuple[str, Series]]:
    """The accuracy-like validation metrics (higher is better) that can speak for the model's
    decisions: not one that was exactly 0 at every validation (Keras' `metrics=["accuracy"]` on a
    regression compares real-valued outputs with the targets for equality: 0.0 at every epoch,
    which "holds" whatever the model does)."""
    for name, series in run.val_metrics.items():
        if higher_is_better(name, run.info.higher_is_better) is not True:
            continue
        values = series.buckets(include_open=True)["mean"]
        if len(values) and not np.any(values):
            continue
        yield name, series
