"""b09 Keras: the last layer `Dense(10, activation="relu")` into
`SparseCategoricalCrossentropy(from_logits=True)` (mnist 5k): every negative logit is cut to 0."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, mnist, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b09_keras_relu_logits"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = mnist()
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="relu"),  # BUG: logits must be linear
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:4000], y[:4000], validation_data=(x[4000:], y[4000:]), epochs=6, batch_size=64, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
