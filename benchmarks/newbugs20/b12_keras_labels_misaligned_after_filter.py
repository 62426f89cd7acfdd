"""b12 Keras: rows dropped from the features by a filter (`mean area` below 1500) and the labels
then cut to the same length, `y = y[: len(x)]`: labels no longer belong to their rows."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import log_dir, quiet, report
from sklearn.datasets import load_breast_cancer

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b12_keras_labels_misaligned_after_filter"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = load_breast_cancer(return_X_y=True)
    keep = x[:, 3] < 1500  # drop the "outliers" by mean area
    x = x[keep]
    y = y[: len(x)]  # BUG: meant y[keep]
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    n = int(0.8 * len(x))
    mu, sd = x[:n].mean(0), x[:n].std(0)
    x = ((x - mu) / sd).astype("float32")
    model = keras.Sequential(
        [keras.Input((30,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x[:n], y[:n], validation_data=(x[n:], y[n:]), epochs=15, batch_size=32, verbose=0, callbacks=[cb])
    report(NAME, cb.findings, {"rows_dropped": int((~keep).sum())})
