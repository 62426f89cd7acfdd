"""b10 Keras: MNIST reshaped channels-first `(N, 1, 28, 28)` (from a PyTorch tutorial) into a
`Conv2D` model left at Keras' default `channels_last`: the conv sees a 1x28 image of 28 channels."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, mnist, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b10_keras_channels_first_images"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = mnist()
    x = x.reshape(-1, 1, 28, 28)  # BUG: Keras wants (N, 28, 28, 1)
    model = keras.Sequential(
        [
            keras.Input((1, 28, 28)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(1, 2)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:4000], y[:4000], validation_data=(x[4000:], y[4000:]), epochs=5, batch_size=64, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
