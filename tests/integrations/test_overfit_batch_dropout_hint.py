"""`overfit-batch`'s hint names the two causes new users' runs showed that it left out: a
Keras MLP with `Dropout(0.9)` after each hidden layer cannot memorise 16 samples (90% of every
layer's signal dropped at each step), and the hint listed detached layers, the optimizer and
the learning rate, never dropout. The twin with `Dropout(0.1)` fits the batch and is silent."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback


@pytest.mark.parametrize("rate", [0.9, 0.1])
def test_heavy_dropout_is_named_when_a_batch_cannot_be_fitted(tmp_path, rate):
    x, y = load_digits(return_X_y=True)
    x = (x[:320] / 16.0).astype(np.float32)
    keras.utils.set_random_seed(8)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(rate),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(rate),
            keras.layers.Dense(10),
        ]
    )
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(log_dir=str(tmp_path), checks=["overfit-batch"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y[:320], epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    found = [f for f in cb.findings if f.check == "overfit-batch" and f.severity >= Severity.WARNING]
    if rate > 0.5:
        (finding,) = found
        assert "dropout so heavy" in finding.hint, finding.hint  # before: not named
    else:
        assert found == []
