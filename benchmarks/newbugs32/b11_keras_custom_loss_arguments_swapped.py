"""b11 Keras: a custom loss written `def loss(y_pred, y_true)`: Keras calls it as
`loss(y_true, y_pred)`, so `categorical_crossentropy(y_true, y_pred)` inside scores the one-hot
labels as the prediction and the model's probabilities as the target: -sum(p log(clip(onehot))),
about 16 x (1 - p_true) (log of Keras' 1e-7 clip) instead of -log p_true."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, quiet, report, wine

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b11_keras_custom_loss_arguments_swapped"


def smoothed_cce(y_pred, y_true):  # BUG: Keras passes (y_true, y_pred)
    return keras.losses.categorical_crossentropy(y_true, y_pred)


if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = wine()
    y1 = keras.utils.to_categorical(y, 3)
    model = keras.Sequential(
        [
            keras.Input((13,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), loss=smoothed_cce, metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:140], y1[:140], validation_data=(x[140:], y1[140:]), epochs=30, batch_size=16, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
