"""h06 Keras (healthy, b08's control): the label-sorted digits table shuffled once with a single
permutation for x and y before `fit(..., validation_split=0.2)`, EarlyStopping on val_loss
(patience 4, restore_best_weights)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h06_keras_validation_split_shuffled_first"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    order = np.argsort(y, kind="stable")
    x, y = x[order], y[order]
    perm = np.random.default_rng(0).permutation(len(y))
    x, y = x[perm], y[perm]
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x, y, validation_split=0.2, shuffle=True, epochs=25, batch_size=32, verbose=0, callbacks=[stop, cb])
    report(NAME, cb.findings)
