"""b09 Keras: `RandomRotation(0.5)` in a MNIST CNN, meant as "a little rotation": Keras' factor is
a fraction of a full turn, so 0.5 rotates by up to +-180 degrees and a 6 becomes a 9 (and 9 a 6)
in training while validation images stay upright."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, mnist, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b09_keras_rotation_factor_half_turn"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = mnist()
    x = x.reshape(-1, 28, 28, 1)
    xt, yt, xv, yv = x[:4000], y[:4000], x[4000:], y[4000:]
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.RandomRotation(0.5),  # BUG: +-180 degrees; 0.05 (+-18) meant
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(xt, yt, validation_data=(xv, yv), epochs=6, batch_size=64, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
