"""b08 Keras: the digits table comes sorted by label (as many CSV exports do) and the user relies
on `model.fit(..., validation_split=0.2, shuffle=True)`: Keras takes the validation rows from the
end of the arrays before any shuffling, so validation holds only 8s and 9s that training never
sees (shuffle=True shuffles the training part only)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b08_keras_validation_split_sorted"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    order = np.argsort(y, kind="stable")
    x, y = x[order], y[order]  # the table as exported: sorted by label
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    # BUG: validation_split takes the last 20% of sorted data: classes 8 and 9 only
    model.fit(x, y, validation_split=0.2, shuffle=True, epochs=12, batch_size=32, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
