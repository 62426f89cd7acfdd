"""h05 Keras (healthy): Keras 3's own gradient accumulation, `Adam(gradient_accumulation_steps=4)`
with batches of 16 (an effective batch of 64), wine."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, quiet, report, wine

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h05_keras_gradient_accumulation"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = wine()
    model = keras.Sequential(
        [
            keras.Input((13,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    opt = keras.optimizers.Adam(learning_rate=3e-3, gradient_accumulation_steps=4)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=25, batch_size=16, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
