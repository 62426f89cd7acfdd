"""b07 Keras: `SparseCategoricalCrossentropy(from_logits=True)` on a model whose last layer is
`Dense(10, activation="softmax")`: the probabilities are softmaxed a second time, so the loss
cannot fall below ln(1 + 9/e) = 1.46 and its gradients shrink as the model grows confident."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b07_keras_from_logits_on_softmax"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # BUG: the output is softmax already
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        y[:1400],
        validation_data=(x[1400:], y[1400:]),
        epochs=15,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
