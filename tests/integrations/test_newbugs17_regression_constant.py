"""Batch 17 of new users' programs: a regression that learned nothing, told against a constant.

- Keras diabetes with `loss="mae"` (and "mse") and `np.random.shuffle(y_train)` where the rows were
  meant to be shuffled (the inputs left in order): the network memorises the training targets
  (training loss 0.985 -> 0.55) while validation stays at the loss of predicting the targets'
  median (0.70). Before nothing was said: `loss-plateau` judged a regression's validation curve
  against no baseline (only a classification's against the class prior, `val-prior`). Now the best
  validation loss is set against the loss of predicting the training targets' mean (median, for
  "mae") for every validation sample: key `val-constant`, WARNING, whose hint names targets
  shuffled apart from their inputs when the training loss beat the constant.
  The same program with inputs and targets shuffled together: silent.
- An absolute-error regression collapsed to a constant (inputs zeroed by a `Rescaling(0.0)`):
  the stalled training loss is now set against the mean absolute deviation from the training
  targets' median, as a squared error's is against their variance (before, MAE had no level).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback


def _diabetes():
    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], (y[order] / 100.0).astype(np.float32)
    x = ((x - x[:350].mean(0)) / x[:350].std(0)).astype(np.float32)
    return x[:350], y[:350].copy(), x[350:], y[350:]


def _fit(model, x, y, validation, epochs, tmp_path):
    cb = MLCheckCallback(log_dir=str(tmp_path / "logs"))
    model.fit(x, y, validation_data=validation, epochs=epochs, batch_size=32, callbacks=[cb], verbose=0)
    return cb.findings


@pytest.mark.parametrize("loss", ["mae", "mse"])
@pytest.mark.parametrize("shuffled_apart", [True, False])
def test_newbugs17_validation_never_beating_a_constant_is_told(tmp_path, loss, shuffled_apart):
    xt, yt, xv, yv = _diabetes()
    if shuffled_apart:
        np.random.default_rng(1).shuffle(yt)  # the bug: the targets alone
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(3e-3), loss)
    findings = _fit(model, xt, yt, (xv, yv), 30, tmp_path)
    serious = [f for f in findings if f.severity >= Severity.WARNING]
    if not shuffled_apart:
        assert serious == [], [f.format() for f in findings]
        return
    (finding,) = [f for f in serious if f.check == "loss-plateau"]
    assert finding.key == "val-constant", finding.format()
    assert finding.evidence["constant"] == ("median" if loss == "mae" else "mean")
    assert finding.evidence["best_val_loss"] >= finding.evidence["train_constant_val_loss"]
    assert "np.random.shuffle(y)" in finding.hint, finding.hint


def test_newbugs17_absolute_error_collapsed_to_the_median_is_a_plateau(tmp_path):
    xt, yt, _, _ = _diabetes()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Rescaling(0.0),  # the bug: a scale of 0 zeroes every input
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-2), "mae")
    findings = _fit(model, xt, yt, None, 20, tmp_path)
    plateaus = [f for f in findings if f.check == "loss-plateau" and f.severity >= Severity.WARNING]
    assert plateaus, [f.format() for f in findings]
    assert "median" in plateaus[0].message, plateaus[0].format()
    mad = float(np.mean(np.abs(yt - np.median(yt))))
    assert plateaus[0].evidence["constant_mean_loss"] == pytest.approx(mad, rel=1e-3)
