"""h04 Keras (healthy): "is it a 7?" on digits (about 1:9), sigmoid output, binary_crossentropy,
class_weight from the class counts, AUC and recall as metrics."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h04_keras_imbalanced_class_weight"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    y = (y == 7).astype("float32")
    counts = np.bincount(y[:1400].astype(int))
    class_weight = {c: len(y[:1400]) / (2 * n) for c, n in enumerate(counts)}
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name="auc"), keras.metrics.Recall()])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        y[:1400],
        validation_data=(x[1400:], y[1400:]),
        epochs=12,
        batch_size=32,
        verbose=0,
        class_weight=class_weight,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
