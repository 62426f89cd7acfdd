"""b11 Keras: a binary classifier with one `Dense(1, activation="sigmoid")` output compiled with
`loss="categorical_crossentropy"` (binary_crossentropy meant): Keras renormalises the single
column to sum to 1, so the prediction is always exactly 1 and the loss is 0 for a positive row and
0 for a negative one: nothing is learned, whatever the weights."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import breast_cancer, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b11_keras_categorical_ce_single_sigmoid"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = breast_cancer()
    y = y.astype("float32").reshape(-1, 1)
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])  # BUG
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x[:450], y[:450], validation_data=(x[450:], y[450:]), epochs=20, batch_size=32, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
