"""b10 Keras: a Poisson regression of counts (exponential output, `loss="poisson"`) whose counts
were standardised with the features (`(y - mean) / sd`): 68% of the targets are negative, where
the Poisson loss exp(f) - y f has no minimum (it falls without bound as f -> -inf), so those rows
pull their predictions down forever."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b10_keras_poisson_on_standardised_counts"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 8)).astype("float32")
    rate = np.exp(0.5 + x @ rng.normal(0, 0.35, 8))
    counts = rng.poisson(rate).astype("float32")
    # BUG: the counts standardised like the features (Poisson wants the raw counts)
    y = (counts - counts[:1600].mean()) / counts[:1600].std()
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
