"""b09 Keras: raw breast_cancer features (areas in the thousands, smoothness ~0.1) through
`Normalization(axis=None)` adapted on the training rows: axis=None computes one mean and one
variance over every value of every column, so the columns keep their 1e4-fold spread of scales
(the default axis=-1, one mean and variance per feature, meant)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import breast_cancer, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b09_keras_normalization_axis_none"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = breast_cancer(scale=False)
    norm = keras.layers.Normalization(axis=None)  # BUG: per-feature statistics need axis=-1
    norm.adapt(x[:450])
    model = keras.Sequential(
        [
            keras.Input((30,)),
            norm,
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x[:450], y[:450], validation_data=(x[450:], y[450:]), epochs=20, batch_size=16, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
