"""b06 Keras: a synthetic house-price regression (standardised features, prices around 30,000
with a spread of about 9,000) fit with `loss="mse"` on the raw prices: the first loss is about
1e9 and Adam 1e-3 moves the output by about 1e-3 a step, far from the targets' scale."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b06_keras_price_target_unscaled"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=(n, 8)).astype("float32")
    w = rng.normal(size=8)
    # BUG: the price (about 3e4) is the target as it is; y / 1e4 or a StandardScaler meant
    y = (30_000 + 6_000 * x @ w / np.linalg.norm(w) + 1_500 * np.sin(3 * x[:, 0]) + rng.normal(0, 800, n)).astype(
        "float32"
    )
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse", metrics=["mae"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1600], y[:1600], validation_data=(x[1600:], y[1600:]), epochs=10, batch_size=32, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
