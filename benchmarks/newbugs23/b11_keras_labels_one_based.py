"""b11 Keras: wine's classes written 1, 2, 3 (as in the UCI file) into `Dense(3, softmax)` with
`sparse_categorical_crossentropy`: label 3 has no output unit and class 0's unit no label."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, quiet, report, wine

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b11_keras_labels_one_based"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = wine()
    y = y + 1  # BUG: the UCI file numbers the cultivars 1-3; Keras wants 0..C-1
    model = keras.Sequential(
        [
            keras.Input((13,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=20, batch_size=16, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
