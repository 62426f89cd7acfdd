"""h02 Keras (healthy): a regression whose noise is heavy-tailed (Student t, 2 degrees of
freedom: a few targets 10-50 standard units out), standardised by the training median and
IQR, fit with `Huber` loss, Adam 1e-3."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h02_keras_heavy_tailed_regression"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = 2400
    x = rng.normal(size=(n, 6)).astype("float32")
    y = x[:, 0] * 2 + np.tanh(x[:, 1] * x[:, 2]) * 1.5 - x[:, 3] + 0.5 * rng.standard_t(2, size=n)
    med = np.median(y[:2000])
    iqr = np.subtract(*np.percentile(y[:2000], [75, 25]))
    y = ((y - med) / iqr).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", keras.losses.Huber(delta=1.0), metrics=["mae"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:2000], y[:2000], validation_data=(x[2000:], y[2000:]), epochs=12, batch_size=32, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
