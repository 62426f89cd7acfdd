"""b09 Keras: `EarlyStopping(monitor="loss", patience=10, restore_best_weights=True)` ("val_loss"
meant) on a wide MLP trained on 300 digits: the training loss keeps falling, so training never
stops while validation loss climbs, and the weights restored are the last, most overfit ones."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b09_keras_early_stopping_on_training_loss"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=10, restore_best_weights=True)  # BUG: "val_loss"
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:300],
        y[:300],
        validation_data=(x[1000:], y[1000:]),
        epochs=80,
        batch_size=32,
        verbose=0,
        callbacks=[stop, cb],
    )
    report(NAME, cb.findings, {"epochs_run": len(model.history.history["loss"]) if model.history else None})
