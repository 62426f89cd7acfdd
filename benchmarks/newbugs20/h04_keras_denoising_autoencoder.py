"""h04 Keras (healthy): a denoising autoencoder on digits done right: noisy inputs, clean targets,
sigmoid output and binary cross-entropy on pixels in [0, 1]."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h04_keras_denoising_autoencoder"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, _ = digits()
    rng = np.random.default_rng(0)
    noisy = np.clip(x + 0.3 * rng.standard_normal(x.shape), 0, 1).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(64, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy")
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        noisy[:1400],
        x[:1400],
        validation_data=(noisy[1400:], x[1400:]),
        epochs=12,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
