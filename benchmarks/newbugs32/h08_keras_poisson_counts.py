"""h08 Keras (healthy, b10's control): the same Poisson regression of counts on the raw counts
(exponential output, `loss="poisson"`), Adam 1e-3."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h08_keras_poisson_counts"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 8)).astype("float32")
    rate = np.exp(0.5 + x @ rng.normal(0, 0.35, 8))
    y = rng.poisson(rate).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="exponential"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "poisson")
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1600], y[:1600], validation_data=(x[1600:], y[1600:]), epochs=15, batch_size=32, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
