"""h05 Keras (healthy): a small ResNet-style CNN (functional API: a stem conv, two residual blocks
with BatchNormalization and an `Add` skip, global average pooling) on 8x8 digits, Adam 1e-3."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report
from keras import layers

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h05_keras_resnet_cnn"


def block(h, filters):
    skip = h
    h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    return layers.ReLU()(layers.Add()([h, skip]))


if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    x = x.reshape(-1, 8, 8, 1)
    inp = keras.Input((8, 8, 1))
    h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(inp)))
    h = block(h, 16)
    h = block(h, 16)
    out = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400],
        y[:1400],
        validation_data=(x[1400:], y[1400:]),
        epochs=8,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
