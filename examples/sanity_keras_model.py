"""A digits classifier in Keras, ready for a pre-flight check before training.

    mlcheck sanity examples/sanity_keras_model.py          # seconds: is it fit to train?
    python examples/sanity_keras_model.py                  # then train it

mlcheck imports this file to find the model: it finds the compiled model and the
`x_train`/`y_train` (and `x_val`/`y_val`) arrays by their names. Training lives under
`if __name__ == "__main__":`.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402


def load_data(seed: int = 0):
    """sklearn's 8x8 digits, pixels scaled to [0, 1], split 80/20."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = (x[order] / 16.0).astype("float32"), y[order].astype("int64")
    cut = int(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def build_model(hidden: int = 128, lr: float = 1e-3) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(10),  # logits: the loss below applies softmax itself
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


keras.utils.set_random_seed(0)
x_train, y_train, x_val, y_val = load_data()
model = build_model()


def train(epochs: int = 20, **fit_kwargs):
    return model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_data=(x_val, y_val), **fit_kwargs)


if __name__ == "__main__":
    train()
