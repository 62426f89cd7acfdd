"""b10 Keras: diabetes (standardised target) with `Huber(delta=1e-3)` under SGD 0.01 (delta
copied from a script whose target was in thousands of units): past 0.001 the loss is
0.001 x |error|, so every gradient is ~1000x smaller than MSE's and the model barely moves."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import diabetes, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b10_keras_huber_delta_tiny"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = diabetes()
    xt, yt, xv, yv = x[:350], y[:350], x[350:], y[350:]
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    # BUG: delta in the units of another target; 1.0 fits a standardised one
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.losses.Huber(delta=1e-3), metrics=["mae"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(xt, yt, validation_data=(xv, yv), epochs=20, batch_size=32, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
