"""h05 Keras (healthy): a functional model with two heads on one digits body: the digit
(softmax, sparse_categorical_crossentropy) and the standardised ink (linear, mse), loss weights
1.0 and 0.5, one metric each."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h05_keras_multi_output"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    ink = x.sum(1)
    ink = ((ink - ink[:1400].mean()) / ink[:1400].std()).astype("float32")
    inp = keras.Input((64,))
    h = keras.layers.Dense(128, activation="relu")(inp)
    h = keras.layers.Dense(64, activation="relu")(h)
    digit = keras.layers.Dense(10, activation="softmax", name="digit")(h)
    ink_out = keras.layers.Dense(1, name="ink")(h)
    model = keras.Model(inp, [digit, ink_out])
    model.compile(
        keras.optimizers.Adam(1e-3),
        loss={"digit": "sparse_categorical_crossentropy", "ink": "mse"},
        loss_weights={"digit": 1.0, "ink": 0.5},
        metrics={"digit": ["accuracy"], "ink": ["mae"]},
    )
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        {"digit": y[:1400], "ink": ink[:1400]},
        validation_data=(x[1400:], {"digit": y[1400:], "ink": ink[1400:]}),
        epochs=10,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
