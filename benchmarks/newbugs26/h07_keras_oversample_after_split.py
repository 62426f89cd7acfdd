"""h07 Keras (healthy, b01's control): "is it a 0?" on digits (about 1:9), split first, then the
training positives repeated 8x (the training part only) and shuffled; validation untouched;
sigmoid + binary_crossentropy."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h07_keras_oversample_after_split"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    y = (y == 0).astype("float32")
    xt, yt, xv, yv = x[:1400], y[:1400], x[1400:], y[1400:]
    pos = np.flatnonzero(yt == 1)
    xt = np.concatenate([xt] + [xt[pos]] * 7)
    yt = np.concatenate([yt] + [yt[pos]] * 7)
    order = np.random.default_rng(0).permutation(len(xt))
    xt, yt = xt[order], yt[order]
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(xt, yt, validation_data=(xv, yv), epochs=10, batch_size=32, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
