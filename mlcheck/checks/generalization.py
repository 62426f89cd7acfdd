"""Generalization checks: the model fits the training data but stops improving on new data."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.base import Check, register
from mlcheck.checks.curve import epoch_train_levels, noise, rolling_mean, sig, trend_drop
from mlcheck.findings import Finding, Severity
from mlcheck.metrics import higher_is_better

if TYPE_CHECKING:
    from mlcheck.run import RunState


@register
class TrainValGap(Check):
    """Overfitting: the validation loss turned up while the training loss kept falling.

    What it does:
        After each epoch, finds the best stretch of the validation loss (the lowest mean of
        `patience` consecutive epochs) and compares it with the mean of the last `patience`
        epochs. It fires when the validation loss has risen above its best by more than
        `z` x its measured epoch-to-epoch noise and by more than `min_rise` of the best,
        for at least `patience` epochs after the best, with a rising trend since the best
        (`trend_z`), while the training loss fell further since the best epoch
        (`min_train_fall`; so the gap between them grew). It reports the best
        epoch. One noisy epoch never fires (UMLAUT's rule fires on any single uptick).
        A run too short to measure the noise (fewer than 2 x `patience` + 2 epochs, e.g. the
        5-epoch runs common in tutorials) is judged by shape instead: a validation loss that rose
        at every one of `patience` or more epochs after its lowest, by `short_min_rise` on average.
        Runs without a validation loss are skipped. When an accuracy-like validation metric
        is logged and has not worsened (its recent mean is within `metric_tolerance` of its
        best) and the rise is modest (`info_max_rise`), the finding is INFO: the loss rises
        through over-confidence while the decisions are as good as ever.

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
        z: the rise must exceed z x the noise of one epoch's validation loss. Default 3.0.
        min_rise: the rise must exceed this fraction of the best validation loss. Default 0.05.
        min_rise_range: and this fraction of how far the validation loss fell from its first
            epoch to its best. Default 0.02: on easy data a rise from 1e-5 to 1e-4 is noise.
        trend_z: the epochs since the best must also show a rising trend, a line fit whose
            rise exceeds this many standard errors. Default 3.0: the test is repeated every
            epoch, so it needs a stricter level than a single test would.
        min_train_fall: the training loss must have fallen by this fraction since the best
            epoch. Default 0.01: with a flat training loss a rising validation loss is more
            likely noise or drift than overfitting.
        metric_tolerance: an accuracy-like validation metric whose recent mean is within this
            much (absolute, on a 0-1 scale; or its epoch noise if larger) of its best has not
            worsened. Default 0.01: one percentage point.
        info_max_rise: a held metric makes the finding INFO only while the validation loss
            rose by at most this fraction of its best. Default 0.15: beyond that, calibration
            and the loss itself are degrading, whatever the accuracy.
        short_min_rise: in a run too short to measure its noise (fewer than 2 x `patience` + 2
            epochs), the validation loss must have risen at each of at least `patience` epochs
            after its lowest one, and the last `patience` epochs must average this fraction above
            it. Default 0.10: the rise of the overfitting label of benchmarks/reallogs.
    """

    id = "train-val-gap"
    family = "generalization"
    severity = Severity.WARNING
    explained_by = frozenset({"label-shift"})  # validation unlike training: a gap, not overfitting

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
        short_min_rise: float = 0.10,
    ) -> None:
        self.short_min_rise = short_min_rise
        self.info_max_rise = info_max_rise
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

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        return () if self._fired else self._judge(run)

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return () if self._fired else self._judge(run)

    def _judge(self, run: RunState) -> list[Finding]:
        b = run.val_loss.buckets(include_open=True)
        epochs, val = b["x1"], b["mean"]
        p = max(1, self.patience)
        rise_at = self._short_rise(val) if len(val) < 2 * p + 2 else self._noisy_rise(epochs, val)
        if rise_at is None:
            return []
        best_at, best, recent, sigma = rise_at
        rise = recent - best
        best_epoch = int(epochs[best_at])
        train = epoch_train_levels(run)
        if best_epoch not in train or not train:
            return []
        last_epoch = max(train)
        train_best, train_now = train[best_epoch], train[last_epoch]
        if not train_best - train_now > self.min_train_fall * abs(train_best):
            return []  # training loss flat or rising: noise or divergence, not overfitting
        since = int(epochs[-1]) - best_epoch
        # over-confidence with decisions intact is INFO, but only while the rise is modest
        held = self._metric_held(run) if rise <= self.info_max_rise * abs(best) else None
        if held is None:
            self._fired = True  # an INFO is judged again: it becomes a WARNING if the metric drops
        tail = ""
        if held is not None:
            name, metric_best, metric_now = held
            tail = (
                f" Validation {name} has not dropped (best {metric_best:.4g}, recent "
                f"{metric_now:.4g}), so the model is growing over-confident rather than worse."
            )
        return [
            self.finding(
                f"The model is overfitting: validation loss rose from its best {best:.4g} "
                f"(epoch {best_epoch}) to {recent:.4g} over {since} epochs while training loss fell "
                f"from {train_best:.4g} to {train_now:.4g}." + tail,
                severity=Severity.INFO if held is not None else None,
                evidence={
                    "best_epoch": best_epoch,
                    "best_val_loss": sig(best),
                    "val_loss": sig(recent),
                    "train_loss_at_best": sig(train_best),
                    "train_loss": sig(train_now),
                    "gap_at_best": sig(float(val[best_at]) - train_best),
                    "gap": sig(recent - train_now),
                    **({"val_noise": sig(sigma)} if math.isfinite(sigma) else {}),
                    "epochs_since_best": since,
                },
                hint=(
                    f"Keep the checkpoint from epoch {best_epoch} (early stopping on the validation "
                    "loss) and add regularisation: weight decay, dropout, augmentation, or more data."
                ),
                step=run.step,
                epoch=run.epoch,
                key="overfit",
            )
        ]

    def _noisy_rise(self, epochs: np.ndarray, val: np.ndarray) -> tuple[int, float, float, float] | None:
        """(index of the best epoch, best, recent, noise) when the validation loss rose above its
        best stretch by more than its measured noise, lastingly and with a trend; else None."""
        p = max(1, self.patience)
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
        needed = max(self.z * sigma, self.min_rise * abs(best), self.min_rise_range * came_down)
        if recent - best <= needed:
            return None
        if float(np.min(val[-p:])) <= best:
            return None  # one of the recent epochs is as good as the best: not a lasting rise
        climb, se = trend_drop(epochs[i:], -val[i:])
        if not climb > self.trend_z * se:
            return None  # a flat, noisy stretch that happens to end high: no trend
        return i + int(np.argmin(val[i : i + p])), best, recent, sigma

    def _short_rise(self, val: np.ndarray) -> tuple[int, float, float, float] | None:
        """The same question for a run too short to measure its noise (under 2 x patience + 2
        epochs): the validation loss rose at every epoch for `patience` epochs or more after its
        lowest epoch, and the last `patience` epochs average `short_min_rise` above it. Under
        noise alone `patience` rises in a row after a minimum happen about once in (p + 1)!
        (1 in 24 for p = 3), and then also by 10%: the shape stands in for the noise estimate."""
        p = max(1, self.patience)
        if len(val) < p + 1 or not bool(np.all(np.isfinite(val))):
            return None
        i = int(np.argmin(val))
        after = val[i:]
        if len(after) < p + 1 or not bool(np.all(np.diff(after) > 0)):
            return None
        best, recent = float(val[i]), float(np.mean(val[-p:]))
        if not recent - best > self.short_min_rise * abs(best):
            return None
        return i, best, recent, math.nan

    def _metric_held(self, run: RunState) -> tuple[str, float, float] | None:
        """(name, best, recent) of an accuracy-like validation metric that has not worsened;
        None when there is none or one has worsened."""
        held = None
        for name, series in run.val_metrics.items():
            if higher_is_better(name, run.info.higher_is_better) is not True:
                continue
            values = series.buckets(include_open=True)["mean"]
            if len(values) < 2 * self.patience:
                continue
            p = max(1, self.patience)
            best = float(np.max(rolling_mean(values, p)))
            recent = float(np.mean(values[-p:]))
            scale = 100.0 if best > 1.5 else 1.0  # accuracy logged in percent
            tolerance = max(self.metric_tolerance * scale, noise(values) if len(values) >= 4 else 0.0)
            if recent < best - tolerance:
                return None  # a decision metric got worse: real overfitting
            held = (name, best, recent)
        return held
