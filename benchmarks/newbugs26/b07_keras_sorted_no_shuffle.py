"""b07 Keras: digits sorted by label (to count the classes) and fit with `shuffle=False`
(set so that two runs were comparable): every batch holds one or two digits, the model chases
the class of the moment and forgets the earlier ones."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b07_keras_sorted_no_shuffle"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    xt, yt, xv, yv = x[:1400], y[:1400], x[1400:], y[1400:]
    order = np.argsort(yt, kind="stable")
    xt, yt = xt[order], yt[order]
    print("per class:", np.bincount(yt))
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    # BUG: the training data are in label order and stay so
    model.fit(xt, yt, validation_data=(xv, yv), epochs=10, batch_size=32, shuffle=False, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
