"""b10 Keras: `EarlyStopping(monitor="val_loss", mode="max", patience=3, restore_best_weights=True)`
(mode copied from an accuracy monitor): every fall of the loss counts as no improvement, training
stops after 4 epochs and the weights of epoch 0, the worst, are restored."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b10_keras_early_stopping_mode_max"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", mode="max", patience=3, restore_best_weights=True)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        y[:1400],
        validation_data=(x[1400:], y[1400:]),
        epochs=30,
        batch_size=32,
        verbose=0,
        callbacks=[cb, stop],
    )
    print("val accuracy after restore:", model.evaluate(x[1400:], y[1400:], verbose=0)[1])
    report(NAME, cb.findings)
