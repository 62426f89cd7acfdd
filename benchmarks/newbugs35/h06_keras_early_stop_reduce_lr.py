"""h06 Keras (healthy): standardised breast_cancer, an MLP with dropout, `EarlyStopping(patience=6,
restore_best_weights=True)` and `ReduceLROnPlateau(factor=0.5, patience=3)` on val_loss, up to 60
epochs."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import breast_cancer, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h06_keras_early_stop_reduce_lr"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = breast_cancer()
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=6, restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:450],
        y[:450],
        validation_data=(x[450:], y[450:]),
        epochs=60,
        batch_size=16,
        verbose=0,
        callbacks=[stop, plateau, cb],
    )
    report(NAME, cb.findings)
