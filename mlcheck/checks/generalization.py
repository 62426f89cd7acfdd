"""Generalization checks: the model fits the training data but stops improving on new data."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.base import Check, register
from mlcheck.checks.curve import epoch_train_levels, sig
from mlcheck.findings import Finding, Severity
from mlcheck.metrics import higher_is_better

if TYPE_CHECKING:
    from mlcheck.run import RunState

_MAD_TO_STD = 1.4826  # a normal variable's standard deviation per unit of median absolute deviation
_SECOND_DIFF_VAR = 6.0  # var(v[i+1] - 2 v[i] + v[i-1]) / var(noise) for independent noise
# The noise is read where the curve has settled: from the first epoch within this fraction of its
# total fall from its best, so a fast early descent's curvature is not taken for noise.
_SETTLED = 0.25
_MIN_EPOCHS = 4  # second differences need 4 epochs to say anything about noise


def turn_free_noise(log_val: np.ndarray, best: int) -> float:
    """Robust standard deviation of one epoch's (log) validation loss, from second differences
    away from the turn at index `best` (the V at the minimum is signal, not noise) and after the
    steep early descent. nan when too few epochs are left to judge."""
    d2 = log_val[2:] - 2.0 * log_val[1:-1] + log_val[:-2]
    centre = np.arange(1, len(log_val) - 1)
    away = np.abs(centre - best) > 1
    fell = log_val[0] - log_val[best]
    settled = int(np.argmax(log_val[: best + 1] - log_val[best] <= _SETTLED * fell))
    keep = away & (centre > settled)
    if keep.sum() < 2:
        keep = away
    if keep.sum() < 2:
        return math.nan
    return float(_MAD_TO_STD * np.median(np.abs(d2[keep])) / math.sqrt(_SECOND_DIFF_VAR))


def cusum(z: np.ndarray, drift: float, cap: float) -> float:
    """Page's one-sided CUSUM of `z` (excess in noise units) with allowance `drift`, each step
    capped at `cap` so that one wild epoch cannot decide alone."""
    total = 0.0
    for step in np.minimum(z, cap):
        total = max(0.0, total + float(step) - drift)
    return total


@register
class TrainValGap(Check):
    """Overfitting: the validation loss turned up while the training loss kept falling.

    What it does:
        A sequential test, judged after every epoch, that decides as soon as the rise is real.
        It takes the validation loss's best epoch so far and sums, epoch by epoch since then,
        the relative excess over that best (the log ratio) in units of the validation noise: a
        one-sided CUSUM (Page 1954) with an allowance of `drift` noise units per epoch, each
        epoch's share capped at `cap` so that one wild epoch never decides alone. The noise is
        read from second differences of the log validation loss, leaving out the turn at the
        best epoch and the steep early descent (both are signal), and is never taken below
        `min_noise`. It fires once the sum passes `z`, the last epoch is `min_rise` above the
        best, at least `patience` epochs have passed since the best, and the training loss fell
        further since the best epoch (`min_train_fall`; so the gap between them grew). A fast,
        clear rise is flagged within 1-2 epochs; a slow one once enough epochs add up. It
        reports the best epoch. Runs without a validation loss are skipped. When an
        accuracy-like validation metric is logged and is still climbing since the best epoch
        (by more than its epoch-to-epoch noise) and the rise is modest (`info_max_rise`), the
        finding is INFO: the loss rises through over-confidence while the decisions still
        improve; it becomes a WARNING if the metric stops climbing or the rise grows.

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
        patience: epochs after the best before a decision. Default 2: one epoch above the best
            is what UMLAUT's rule fires on, and what noise does every few epochs.
        z: the CUSUM's decision threshold, in noise units. Default 4.0: with `drift` 1 and
            `cap` 3, two clear epochs or four modest ones (0 healthy runs of the 116 labelled
            real runs in benchmarks/reallogs dev and held-out fired).
        min_rise: the last epoch must be this fraction above the best. Default 0.03.
        drift: the CUSUM's allowance per epoch, in noise units. Default 1.0.
        cap: the most one epoch adds to the CUSUM, in noise units. Default 3.0.
        min_noise: the noise is never taken below this relative level (log units). Default
            0.02: Keras prints 4 digits, and a curve smoother than 2% per epoch is rare.
        min_rise_range: the rise must also exceed this fraction of how far the validation loss
            fell from its first epoch to its best. Default 0.02: on easy data a rise from 1e-5
            to 1e-4 is noise.
        min_train_fall: the training loss must have fallen by this fraction since the best
            epoch. Default 0.01: with a flat training loss a rising validation loss is more
            likely noise or drift than overfitting.
        metric_tolerance: an accuracy-like validation metric counts as still climbing when its
            mean since the best epoch is above its value there by more than its epoch noise and
            this much (absolute, on a 0-1 scale). Default 0.0.
        info_max_rise: a climbing metric makes the finding INFO only while the validation loss
            rose by at most this fraction of its best. Default 0.15: beyond that, calibration
            and the loss itself are degrading, whatever the accuracy.
        trend_z: accepted for compatibility; no longer used (the CUSUM replaced the trend test).
    """

    id = "train-val-gap"
    family = "generalization"
    severity = Severity.WARNING

    def __init__(
        self,
        patience: int = 2,
        z: float = 4.0,
        min_rise: float = 0.03,
        trend_z: float = 3.0,
        min_rise_range: float = 0.02,
        min_train_fall: float = 0.01,
        metric_tolerance: float = 0.0,
        info_max_rise: float = 0.15,
        drift: float = 1.0,
        cap: float = 3.0,
        min_noise: float = 0.02,
    ) -> None:
        self.patience = patience
        self.z = z
        self.min_rise = min_rise
        self.trend_z = trend_z
        self.min_rise_range = min_rise_range
        self.min_train_fall = min_train_fall
        self.metric_tolerance = metric_tolerance
        self.info_max_rise = info_max_rise
        self.drift = drift
        self.cap = cap
        self.min_noise = min_noise
        super().__init__()

    def reset(self) -> None:
        self._fired = False

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        return () if self._fired else self._judge(run)

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return () if self._fired else self._judge(run)

    def _rise(self, val: np.ndarray) -> tuple[int, float, float] | None:
        """(best index, CUSUM, noise) when the validation loss rose for real since its best."""
        if len(val) < _MIN_EPOCHS or not np.all(np.isfinite(val)) or float(np.min(val)) <= 0:
            return None  # a loss at or below zero has no relative scale (and is another check's)
        log = np.log(val)
        i = int(np.argmin(log))
        if len(val) - 1 - i < max(1, self.patience):
            return None  # too few epochs since the best
        sigma = turn_free_noise(log, i)
        if not math.isfinite(sigma):
            return None
        sigma = max(sigma, self.min_noise)
        # the lowest epoch is also the one noise pushed lowest: measure the excess from the mean
        # of the best epoch and its neighbours, or every later epoch looks ~1.5 noise units high
        excess = log[i + 1 :] - float(np.mean(log[max(0, i - 1) : i + 2]))
        score = cusum(excess / sigma, self.drift, self.cap)
        rise = float(val[-1] - val[i])
        came_down = float(val[0] - val[i])  # how far validation improved before turning
        if score < self.z or rise <= max(self.min_rise * float(val[i]), self.min_rise_range * came_down):
            return None
        return i, score, sigma

    def _judge(self, run: RunState) -> list[Finding]:
        b = run.val_loss.buckets(include_open=True)
        epochs, val = b["x1"], b["mean"]
        found = self._rise(val)
        if found is None:
            return []
        i, score, sigma = found
        best, recent = float(val[i]), float(val[-1])
        best_epoch = int(epochs[i])
        train = epoch_train_levels(run)
        if best_epoch not in train:
            return []
        last_epoch = max(train)
        train_best, train_now = train[best_epoch], train[last_epoch]
        if not train_best - train_now > self.min_train_fall * abs(train_best):
            return []  # training loss flat or rising: noise or divergence, not overfitting
        since = int(epochs[-1]) - best_epoch
        # over-confidence while the decisions still improve is INFO, but only while the rise is modest
        rise = recent - best
        climbing = self._metric_climbing(run, best_epoch) if rise <= self.info_max_rise * abs(best) else None
        if climbing is None:
            self._fired = True  # an INFO is judged again: it becomes a WARNING once the metric stalls
        tail = ""
        if climbing is not None:
            name, metric_best, metric_now = climbing
            tail = (
                f" Validation {name} is still climbing (epoch {best_epoch}: {metric_best:.4g}, since: "
                f"{metric_now:.4g}), so the model is growing over-confident rather than worse."
            )
        return [
            self.finding(
                f"The model is overfitting: validation loss rose from its best {best:.4g} "
                f"(epoch {best_epoch}) to {recent:.4g} over {since} epochs while training loss fell "
                f"from {train_best:.4g} to {train_now:.4g}." + tail,
                severity=Severity.INFO if climbing is not None else None,
                evidence={
                    "best_epoch": best_epoch,
                    "best_val_loss": sig(best),
                    "val_loss": sig(recent),
                    "train_loss_at_best": sig(train_best),
                    "train_loss": sig(train_now),
                    "gap_at_best": sig(best - train_best),
                    "gap": sig(recent - train_now),
                    "val_noise": sig(sigma),
                    "cusum": sig(score),
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

    def _metric_climbing(self, run: RunState, best_epoch: int) -> tuple[str, float, float] | None:
        """(name, value at the best epoch, mean since) of an accuracy-like validation metric still
        climbing since the best epoch; None when there is none, or one is not climbing."""
        climbing = None
        for name, series in run.val_metrics.items():
            if higher_is_better(name, run.info.higher_is_better) is not True:
                continue
            b = series.buckets(include_open=True)
            at = np.flatnonzero(b["x1"] == best_epoch)
            values = b["mean"]
            if not len(at) or at[0] + 1 >= len(values) or not np.all(np.isfinite(values)):
                continue
            k = int(at[0])
            since = values[k + 1 :][-2:]  # the last (at most) two epochs since the best
            scale = 100.0 if float(np.max(values)) > 1.5 else 1.0  # accuracy logged in percent
            step_noise = _MAD_TO_STD * float(np.median(np.abs(np.diff(values)))) / math.sqrt(2.0)
            if not float(np.mean(since)) > float(values[k]) + max(step_noise, self.metric_tolerance * scale):
                return None  # a decision metric stalled or dropped: real overfitting
            climbing = (name, float(values[k]), float(np.mean(since)))
        return climbing
