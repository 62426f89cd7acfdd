"""h08 Keras (healthy; added after the blind run, as b12's control): the forecaster of b12 split by time
(the first 80% of windows train, shuffled among themselves; the last 20% validate): persistence,
the window's last value, predicts the next one well on a smooth series, which is forecasting."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h08_keras_forecaster_time_split"
WINDOW = 48

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    t = np.arange(4000)
    series = np.sin(t / 25.0) + 0.5 * np.sin(t / 7.3) + np.cumsum(rng.normal(0, 0.05, len(t)))
    series = ((series - series[:3000].mean()) / series[:3000].std()).astype("float32")
    x = np.stack([series[i : i + WINDOW] for i in range(len(series) - WINDOW - 1)])
    y = series[WINDOW : len(series) - 1]
    n = int(0.8 * len(x))
    order = rng.permutation(n)  # shuffle the training period only
    x[:n], y[:n] = x[:n][order], y[:n][order]
    model = keras.Sequential([keras.Input((WINDOW,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    model.compile("adam", "mse", metrics=["mae"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x[:n], y[:n], validation_data=(x[n:], y[n:]), epochs=10, batch_size=64, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
