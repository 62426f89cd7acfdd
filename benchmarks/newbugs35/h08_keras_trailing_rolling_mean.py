"""h08 Keras (healthy, b08's control): the same random-walk forecaster with a trailing
`rolling(5).mean()` level feature (s[t-4..t], no future); the steps keep AR(1) momentum 0.6, so the
lags predict about a third of the next change's variance, honestly."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
import pandas as pd
from _common import log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h08_keras_trailing_rolling_mean"
LAGS = 10


def series(n, rng):
    # a random walk whose steps keep some momentum (AR(1), 0.6): the next step is partly predictable
    e, d = rng.normal(0, 1, n), np.zeros(n)
    for t in range(1, n):
        d[t] = 0.6 * d[t - 1] + e[t]
    return np.cumsum(d)


if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    s = series(3000, np.random.default_rng(0))
    smooth = pd.Series(s).rolling(5).mean().to_numpy()  # trailing: s[t-4..t]
    rows, targets = [], []
    for t in range(LAGS, len(s) - 3):
        lags = s[t - LAGS + 1 : t + 1] - s[t]
        rows.append(np.append(lags, smooth[t] - s[t]))
        targets.append(s[t + 1] - s[t])
    x, y = np.array(rows, np.float32), np.array(targets, np.float32)
    cut = int(0.8 * len(x))
    mu, sd = x[:cut].mean(0), x[:cut].std(0) + 1e-6
    x = (x - mu) / sd
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "mse", metrics=["mae"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:cut],
        y[:cut],
        validation_data=(x[cut:], y[cut:]),
        epochs=15,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
