"""b12 Keras: `batch_size=len(x_train)` ("use the whole data set each step, it is small") with
SGD 0.05 for 15 epochs: 15 optimizer steps in all, where batches of 32 would take 660; the loss
has barely left ln(10) when the fit ends."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b12_keras_full_batch"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    xt, yt, xv, yv = x[:1400], y[:1400], x[1400:], y[1400:]
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    # BUG: one step an epoch
    model.fit(xt, yt, validation_data=(xv, yv), epochs=15, batch_size=len(xt), verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
