"""h06 Keras (healthy): `CosineDecay` with a linear warm-up, both counted in optimizer steps and
sized from the data (warm-up = 1 epoch, decay over the other 11 of 12 epochs), Adam, digits."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import math

import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h06_keras_cosine_decay_per_step"
EPOCHS, BATCH = 12, 32

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    steps = math.ceil(1400 / BATCH)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=1e-4,
        decay_steps=(EPOCHS - 1) * steps,
        alpha=0.05,
        warmup_target=3e-3,
        warmup_steps=steps,
    )
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        y[:1400],
        validation_data=(x[1400:], y[1400:]),
        epochs=EPOCHS,
        batch_size=BATCH,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
