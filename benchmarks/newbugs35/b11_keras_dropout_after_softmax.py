"""b11 Keras: `Dropout(0.3)` appended after the softmax output layer ("regularise the head"):
in training 30% of the class probabilities are zeroed (the rest scaled by 1/0.7), so whenever the
true class is dropped the clipped cross-entropy is -log(1e-7) = 16; validation (dropout off) sees
the plain softmax."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b11_keras_dropout_after_softmax"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(10, activation="softmax"),
            keras.layers.Dropout(0.3),  # BUG: dropout on the output probabilities
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
