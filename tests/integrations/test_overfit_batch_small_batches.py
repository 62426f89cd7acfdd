"""`overfit-batch` on a real Keras fit whose training batches hold one sample (batch_size=1):
the finding names the rows it trained on, not the 16 it asks for, and when the loss rose as far
at 1/100 of the rate as at the configured one it does not blame the rate. Dense -> BatchNorm
fed one sample a batch normalises every unit to its bias in training mode, so no rate fits it
(found by a buggy-programs pass: the ERROR said "a batch of 16 samples" and "a rate far too high
is the likelier cause. Try 1e-06")."""

from __future__ import annotations

import keras
import numpy as np

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback


def test_batches_of_one_sample_are_named_and_the_rate_is_not_blamed(tmp_path):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")[:64]
    y = y.astype("float32")[:64]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(32),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    cb = MLCheckCallback(log_dir=tmp_path / "logs", overfit_seconds=120)
    model.fit(x, y, epochs=1, batch_size=1, callbacks=[cb], verbose=0)
    (finding,) = [f for f in cb.findings if f.check == "overfit-batch"]
    assert finding.severity == Severity.ERROR, finding.format()
    assert finding.evidence["samples"] == 1 and "batch of 1 sample:" in finding.message, finding.format()
    rates = finding.evidence["lrs_tried"]
    assert len(rates) == 3 and np.isclose(rates[-1], rates[0] / 100)
    assert "likelier cause" not in finding.hint and "not the cause" in finding.hint, finding.hint
