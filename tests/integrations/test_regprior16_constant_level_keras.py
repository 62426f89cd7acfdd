"""A Keras regression whose output collapsed to a constant is told so while it trains
(healthy-programs batch 16, noticed 2: two denoising autoencoders flat at the mean squared pixel,
0.1127 against E[y^2] 0.1124, and no live finding). `loss-plateau` judged a regression only by
its fall from its start; a loss that fell from a poor start onto the level of the best constant
prediction (the targets' variance per output) or of all zeros (E[y^2]) fell enough. It now sets a
stalled squared-error loss against those levels, counted over the first pass over the training
targets. Healthy regressions stay silent: an autoencoder that learns, diabetes, and a noisy
target whose best achievable loss is 95% of its variance (R^2 = 0.05)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback


def _autoencoder(inputs_zeroed: bool) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A denoising autoencoder on the 8x8 digits' pixels in [0, 1]; `inputs_zeroed`: a
    preprocessing layer that multiplies the inputs by 0 (a scale of 0 where 1/255 was meant), so
    the output can only learn a constant."""
    pixels = (load_digits().data / 16.0).astype(np.float32)
    noisy = np.clip(pixels + np.random.default_rng(0).normal(0, 0.3, pixels.shape), 0, 1).astype(np.float32)
    keras.utils.set_random_seed(0)
    first = [keras.layers.Rescaling(0.0)] if inputs_zeroed else []
    model = keras.Sequential(
        [
            keras.Input((64,)),
            *first,
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(64, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05 if inputs_zeroed else 1e-3), "mse")
    return model, noisy, pixels


@pytest.mark.parametrize("inputs_zeroed", [True, False], ids=["collapsed", "learns"])
def test_regprior16_autoencoder_stalled_at_the_constant_level_is_reported_live(tmp_path, inputs_zeroed):
    model, noisy, pixels = _autoencoder(inputs_zeroed)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    model.fit(
        noisy[:1400],
        pixels[:1400],
        validation_data=(noisy[1400:], pixels[1400:]),
        epochs=12,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    plateau = [f for f in cb.findings if f.check == "loss-plateau" and f.severity >= Severity.WARNING]
    if not inputs_zeroed:
        assert not [f for f in cb.findings if f.severity >= Severity.WARNING], cb.findings
        return
    assert len(plateau) == 1, cb.findings  # was: none (the loss fell 0.11 -> 0.074, over 2%)
    f = plateau[0]
    variance = float(pixels[:1400].var(axis=0).mean())
    assert f.step is not None and f.step < 12 * 44  # live, before the run ended
    assert f.evidence["constant_mean_loss"] == pytest.approx(variance, rel=1e-3)
    assert f.evidence["zeros_loss"] == pytest.approx(float(np.mean(pixels[:1400] ** 2)), rel=1e-3)
    assert f.evidence["target_samples"] == 1400 and f.evidence["target_outputs"] == 64
    assert "the loss of predicting the targets' mean" in f.message and "ignores its inputs" in f.message
    assert f"{variance:.4g}" in f.message
    # the hint leads with the root cause found first (the layer after the zeroed inputs is dead)
    assert "dead-units" in f.hint or "predicts about a constant" in f.hint


@pytest.mark.parametrize("data", ["diabetes", "noisy-r2-0.05"])
def test_regprior16_healthy_regressions_stay_silent(tmp_path, data):
    rng = np.random.default_rng(0)
    if data == "diabetes":
        x, y = load_diabetes(return_X_y=True)
        x, y = (x - x.mean(0)) / x.std(0), (y - y.mean()) / y.std()
    else:  # a target only 5% of whose variance the inputs explain: the best loss is 0.95x the variance
        x = rng.normal(size=(3000, 8))
        y = 0.23 * x[:, 0] + rng.normal(size=3000)
    x, y = x.astype(np.float32), y.astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    cb = MLCheckCallback(log_dir=str(tmp_path))
    n = int(0.8 * len(x))
    model.fit(x[:n], y[:n], validation_data=(x[n:], y[n:]), epochs=20, batch_size=32, verbose=0, callbacks=[cb])
    assert not [f for f in cb.findings if f.severity >= Severity.WARNING], cb.findings
