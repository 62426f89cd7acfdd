"""b08 Keras: diabetes progression, targets standardised (half of them below 0), but the output
layer kept `activation="sigmoid"` from a classifier it was copied from: predictions live in
(0, 1) and no negative target can be reached."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import diabetes, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b08_keras_sigmoid_regression_output"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = diabetes()
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),  # BUG: a linear output meant
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "mse", metrics=["mae"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x[:350], y[:350], validation_data=(x[350:], y[350:]), epochs=30, batch_size=16, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
