"""`exploding-gradient` names its root cause: regression targets in the hundreds of thousands
(diabetes progression x 1,000, "cost in dollars") under MSE hand back gradients of that scale,
which the layer check saw first in the first layer (until user32 judged a squared loss's
gradients per unit of its root mean square error: now `unnormalized-input` alone tells it).
Where the layer finding is raised after `unnormalized-input` has named the targets, it says it
likely follows from them (its own hint, clipping or a lower learning rate, would treat the
symptom). Standardised targets: no exploding gradients."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from mlcheck import MLCheckWarning
from mlcheck.integrations.keras import MLCheckCallback


@pytest.mark.parametrize("dollars", [True, False])
def test_keras_targets_in_dollars_explain_the_exploding_gradient(tmp_path, dollars):
    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    y = (y * 1000.0 if dollars else (y - y.mean()) / y.std()).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    cb = MLCheckCallback(log_dir=str(tmp_path), every_n_steps=5, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, validation_split=0.2, epochs=4, batch_size=32, verbose=0, callbacks=[cb])
    exploding = [f for f in cb.findings if f.check == "exploding-gradient"]
    if dollars:
        # the root cause is named; the gradients, judged per unit of the MSE's root mean square
        # error since user32 (they carry the targets' units), need not be told apart from it,
        # and where they are, the layer finding points at the targets
        assert any(f.check == "unnormalized-input" for f in cb.findings)
        assert all("unnormalized-input" in f.message for f in exploding)  # before: its own clip/lr advice
    else:
        assert exploding == []
