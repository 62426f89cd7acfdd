"""b12 Keras: a forecaster on one synthetic series, 48-step windows cut with stride 1, then shuffled
and split at random: each validation window shares 47 of its 48 values with training windows, so
validation measures interpolation, not forecasting (a split by time was meant)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b12_keras_overlapping_windows_split"
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
    order = rng.permutation(len(x))  # BUG: random split of overlapping windows
    x, y = x[order], y[order]
    n = int(0.8 * len(x))
    model = keras.Sequential([keras.Input((WINDOW,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    model.compile("adam", "mse", metrics=["mae"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x[:n], y[:n], validation_data=(x[n:], y[n:]), epochs=10, batch_size=64, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
