"""b11 Keras: breast_cancer (37% malignant = class 0) fit with `class_weight={0: 50, 1: 1}`, copied
from a fraud notebook with 1 positive in 500: the weight over-corrects a 1.7:1 split 30x, so the
model calls most benign tumours malignant."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import breast_cancer, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b11_keras_class_weight_fifty"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = breast_cancer()
    xt, yt, xv, yv = x[:450], y[:450], x[450:], y[450:]
    print("class counts:", np.bincount(yt))
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    # BUG: a weight for a 1:500 minority on a 1:1.7 split
    model.fit(
        xt,
        yt,
        validation_data=(xv, yv),
        epochs=15,
        batch_size=32,
        class_weight={0: 50.0, 1: 1.0},
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
