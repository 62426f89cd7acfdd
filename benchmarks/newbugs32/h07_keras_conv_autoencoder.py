"""h07 Keras (healthy): a small convolutional autoencoder on the 8x8 digits (Conv2D 16 -> 8 with
stride 2, Conv2DTranspose back, sigmoid output), binary cross-entropy against the input pixels in
[0, 1], Adam 2e-3."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h07_keras_conv_autoencoder"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, _ = digits()
    img = x.reshape(-1, 8, 8, 1)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(2e-3), "binary_crossentropy")
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        img[:1400],
        img[:1400],
        validation_data=(img[1400:], img[1400:]),
        epochs=10,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
