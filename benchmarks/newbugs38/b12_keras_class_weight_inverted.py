"""b12 Keras: breast cancer made imbalanced (1 malignant in ~8 rows kept) and a `class_weight`
computed as each class's share of the rows (`counts / counts.sum()`) where the inverse was meant:
the majority class gets weight ~0.88, the minority ~0.12, so the imbalance is made ~7x worse and
the minority class's recall collapses."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import breast_cancer, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b12_keras_class_weight_inverted"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = breast_cancer(scale=False)
    rng = np.random.default_rng(0)
    keep = (y == 1) | (rng.random(len(y)) < 0.25)  # malignant (0) kept at 25%
    x, y = x[keep], y[keep]
    n_tr = int(0.75 * len(y))
    mu, sd = x[:n_tr].mean(0), x[:n_tr].std(0)
    x = ((x - mu) / sd).astype("float32")
    counts = np.bincount(y[:n_tr], minlength=2)
    class_weight = {k: float(counts[k] / counts.sum()) for k in range(2)}  # BUG: the inverse meant
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
