"""h06 Keras (healthy): MNIST 5k as `(N, 28, 28, 1)` into a small channels-last CNN with
`Dropout(0.25)`, Adam."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, mnist, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h06_keras_mnist_cnn"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = mnist()
    x = x.reshape(-1, 28, 28, 1)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.25),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:4000], y[:4000], validation_data=(x[4000:], y[4000:]), epochs=4, batch_size=64, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
