"""b08 Keras: `Adam(1e-3, beta_1=0.999, beta_2=0.9)` (the two betas swapped when typed from a
paper's table): the momentum averages ~1000 steps of gradients while the scale divides by only
~10 steps of squares, so the updates lag far behind the gradient and overshoot."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b08_keras_adam_betas_swapped"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    xt, yt, xv, yv = x[:1400], y[:1400], x[1400:], y[1400:]
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    # BUG: beta_1=0.9, beta_2=0.999 meant
    opt = keras.optimizers.Adam(1e-3, beta_1=0.999, beta_2=0.9)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(xt, yt, validation_data=(xv, yv), epochs=10, batch_size=32, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
