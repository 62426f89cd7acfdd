"""b08 Keras: `LearningRateScheduler(lambda epoch: 0.8 ** epoch)` written as a decay factor (what a
LambdaLR would take): Keras' scheduler returns the learning rate itself, so Adam runs at 1.0 in
epoch 0, 0.8 in epoch 1, ... (1e-3 x 0.8**epoch meant)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b08_keras_scheduler_returns_a_factor"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    # BUG: returns a factor; Keras uses the returned value as the rate (1e-3 * 0.8**epoch meant)
    sched = keras.callbacks.LearningRateScheduler(lambda epoch: 0.8**epoch)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        y[:1400],
        validation_data=(x[1400:], y[1400:]),
        epochs=10,
        batch_size=32,
        verbose=0,
        callbacks=[sched, cb],
    )
    report(NAME, cb.findings)
