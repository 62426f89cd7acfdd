"""b11 Keras: `ReduceLROnPlateau(monitor="val_accuracy", mode="min", patience=1, factor=0.2)`:
a rising accuracy counts as no improvement, so the rate is cut every other epoch (wine)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, quiet, report, wine

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b11_keras_plateau_mode_min_on_accuracy"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = wine()
    model = keras.Sequential(
        [keras.Input((13,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    reduce = keras.callbacks.ReduceLROnPlateau(
        monitor="val_accuracy",
        mode="min",
        patience=1,
        factor=0.2,  # BUG: accuracy wants mode="max"
    )
    model.fit(
        x[:140],
        y[:140],
        validation_data=(x[140:], y[140:]),
        epochs=20,
        batch_size=16,
        verbose=0,
        callbacks=[reduce, cb],
    )
    report(NAME, cb.findings, {"final_lr": float(model.optimizer.learning_rate)})
