"""h05 Keras (healthy): wine with `class_weight` from `compute_class_weight("balanced")`,
`EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)`."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report, wine
from sklearn.utils.class_weight import compute_class_weight

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h05_keras_class_weight_early_stop"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = wine()
    w = compute_class_weight("balanced", classes=np.unique(y[:140]), y=y[:140])
    model = keras.Sequential(
        [keras.Input((13,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    model.fit(
        x[:140],
        y[:140],
        validation_data=(x[140:], y[140:]),
        epochs=30,
        batch_size=16,
        verbose=0,
        class_weight=dict(enumerate(w)),
        callbacks=[stop, cb],
    )
    report(NAME, cb.findings)
