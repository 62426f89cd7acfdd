"""b10 Keras: a 10-class softmax model compiled with `loss="binary_crossentropy"` and
`metrics=["accuracy"]` on one-hot targets (categorical_crossentropy meant): the loss treats the
ten outputs as ten independent yes/no questions, and "accuracy" resolves to binary accuracy over
the 10 one-hot columns, about 0.9 for a model that predicts nothing."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b10_keras_binary_crossentropy_multiclass"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    y1 = keras.utils.to_categorical(y, 10)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.05), "binary_crossentropy", metrics=["accuracy"])  # BUG
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        y1[:1400],
        validation_data=(x[1400:], y1[1400:]),
        epochs=12,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
