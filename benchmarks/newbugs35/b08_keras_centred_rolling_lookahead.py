"""b08 Keras: a next-step forecaster on a random walk with momentum (target: the next step's change) with a
"smoothed level" feature `pd.Series(s).rolling(5, center=True).mean()`: centred, the window at t
holds s[t+1] and s[t+2], so the feature carries the future the model is asked to predict. The
split is in time (correct); the leak is in the feature."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
import pandas as pd
from _common import log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b08_keras_centred_rolling_lookahead"
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
    smooth = pd.Series(s).rolling(5, center=True).mean().to_numpy()  # BUG: center=True looks ahead
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
