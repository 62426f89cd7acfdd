"""b12 Keras: a sequence-to-one regression (the mean of a noisy walk's last five steps) whose last
LSTM keeps `return_sequences=True` before `Dense(1)`: the model outputs (batch, 30, 1) and the MSE
broadcasts the one target over all 30 steps, so early steps, which cannot have seen the last five
values, are trained to predict them too; the loss floor sits far above a sequence-to-one model's."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b12_keras_lstm_returns_sequences_into_dense"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 0.3, (2000, 30)), axis=1)
    x = (walk + rng.normal(0, 0.1, walk.shape))[..., None].astype("float32")
    y = walk[:, -5:].mean(1).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((30, 1)),
            keras.layers.LSTM(32, return_sequences=True),  # BUG: the last recurrent layer, False meant
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(2e-3), "mse", metrics=["mae"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1600], y[:1600], validation_data=(x[1600:], y[1600:]), epochs=8, batch_size=32, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
