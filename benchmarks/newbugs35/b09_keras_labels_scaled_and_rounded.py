"""b09 Keras: digit labels "normalised" to [0, 1] (`y / 9.0`, as the user did for a regression
target) and then rounded back to integers for `sparse_categorical_crossentropy`: 0-4 become 0 and
5-9 become 1, so a 10-way softmax is trained (and scored) on a two-class problem."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b09_keras_labels_scaled_and_rounded"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    y = y.astype(np.float32) / 9.0  # "normalise the target"
    y = np.round(y).astype(np.int64)  # BUG: integer classes needed again: 0-4 -> 0, 5-9 -> 1
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        y[:1400],
        validation_data=(x[1400:], y[1400:]),
        epochs=12,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
