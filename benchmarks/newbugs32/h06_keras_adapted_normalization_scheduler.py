"""h06 Keras (healthy, b08's and b09's control): raw breast_cancer features through
`Normalization()` (per feature, axis=-1) adapted on the training rows, Adam with
`LearningRateScheduler(lambda epoch, lr: lr if epoch < 5 else lr * 0.9)` (returns a rate)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import breast_cancer, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h06_keras_adapted_normalization_scheduler"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = breast_cancer(scale=False)
    norm = keras.layers.Normalization()
    norm.adapt(x[:450])
    model = keras.Sequential(
        [
            keras.Input((30,)),
            norm,
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    sched = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch < 5 else lr * 0.9)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:450],
        y[:450],
        validation_data=(x[450:], y[450:]),
        epochs=20,
        batch_size=16,
        verbose=0,
        callbacks=[sched, cb],
    )
    report(NAME, cb.findings)
