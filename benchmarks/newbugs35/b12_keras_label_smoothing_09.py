"""b12 Keras: `CategoricalCrossentropy(label_smoothing=0.9)`, the user reading the argument as the
confidence kept on the true class (0.1 meant): the target puts 0.19 on the true class and 0.09 on
each other one, so the best model is nearly uniform, the loss cannot fall below the target's
entropy (2.20 vs ln 10 = 2.30) and the predicted probabilities are useless as confidences."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b12_keras_label_smoothing_09"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    y1 = keras.utils.to_categorical(y, 10)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.9)  # BUG: 0.1 meant
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
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
