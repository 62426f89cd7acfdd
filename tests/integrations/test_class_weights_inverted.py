"""Keras `class_weight` upside down (the majority class weighted up, {0: 10, 1: 0.1} on a 9:1
binary task), on real fits of the digits: the callback reads the weight of each class from the
per-sample weights Keras hands each step, `class-imbalance` names the inverted weights after the
first epoch (key `weights-inverted`), and `train-val-gap`, which called the run overfitting,
points to it as the likely cause. Balancing weights, per-sample weights and no weights stay
silent."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback


def _fit(tmp_path, *, epochs: int, **fit_kw) -> MLCheckCallback:
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16).astype(np.float32), (y == 0).astype(np.int64)  # class 1 is ~10%
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=str(tmp_path))
    model.fit(
        x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=epochs, verbose=0, callbacks=[cb], **fit_kw
    )
    return cb


def test_inverted_class_weights_are_named_and_explain_the_gap(tmp_path):
    cb = _fit(tmp_path, epochs=6, class_weight={0: 10.0, 1: 0.1})
    (inverted,) = [f for f in cb.findings if f.key == "weights-inverted"]  # was: not noticed
    assert inverted.check == "class-imbalance" and inverted.severity == Severity.WARNING and inverted.epoch == 0
    assert inverted.evidence["largest_class"] == 0 and inverted.evidence["largest_weight"] == 10.0
    assert "upside down" in inverted.message and "compute_class_weight('balanced'" in inverted.hint
    # was: "The model is overfitting", with overfitting's advice
    gaps = [f for f in cb.findings if f.check == "train-val-gap"]
    assert gaps and all(f.evidence.get("likely_cause") == "class-imbalance" for f in gaps)


@pytest.mark.parametrize(
    "fit_kw",
    [
        {"class_weight": {0: 0.55, 1: 5.0}},  # balancing, as compute_class_weight("balanced") gives
        {"sample_weight": np.random.default_rng(0).uniform(0.5, 2.0, 1400)},  # per sample, not per class
        {},
    ],
    ids=["balancing", "sample_weight", "none"],
)
def test_balancing_and_per_sample_weights_stay_silent(tmp_path, fit_kw):
    cb = _fit(tmp_path, epochs=3, **fit_kw)
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == []
