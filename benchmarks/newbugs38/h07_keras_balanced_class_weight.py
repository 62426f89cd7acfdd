"""h07 Keras (healthy, b12's control): the same imbalanced breast cancer set with
`class_weight` from sklearn's `compute_class_weight("balanced")` (n / (2 * count))."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import breast_cancer, log_dir, quiet, report
from sklearn.utils.class_weight import compute_class_weight

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h07_keras_balanced_class_weight"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = breast_cancer(scale=False)
    rng = np.random.default_rng(0)
    keep = (y == 1) | (rng.random(len(y)) < 0.25)
    x, y = x[keep], y[keep]
    n_tr = int(0.75 * len(y))
    mu, sd = x[:n_tr].mean(0), x[:n_tr].std(0)
    x = ((x - mu) / sd).astype("float32")
    w = compute_class_weight("balanced", classes=np.array([0, 1]), y=y[:n_tr])
    class_weight = {0: float(w[0]), 1: float(w[1])}
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-4), "binary_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:n_tr],
        y[:n_tr],
        validation_data=(x[n_tr:], y[n_tr:]),
        epochs=20,
        batch_size=32,
        verbose=0,
        class_weight=class_weight,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
