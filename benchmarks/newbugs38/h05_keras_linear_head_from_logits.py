"""h05 Keras (healthy, b07's control): the digits MLP with a linear `Dense(10)` head and
`SparseCategoricalCrossentropy(from_logits=True)`, dropout 0.2."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h05_keras_linear_head_from_logits"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        y[:1400],
        validation_data=(x[1400:], y[1400:]),
        epochs=15,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
