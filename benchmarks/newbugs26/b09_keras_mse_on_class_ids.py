"""b09 Keras: digits with a `Dense(10, softmax)` output compiled with `loss="mse"` on the integer
labels 0-9 (meant `sparse_categorical_crossentropy`): Keras broadcasts the label against all
ten probabilities, and the loss is the squared distance of each probability from the digit."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b09_keras_mse_on_class_ids"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "mse", metrics=["accuracy"])  # BUG: a regression loss on class ids
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=10, batch_size=32, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
