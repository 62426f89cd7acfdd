"""h05 Keras (healthy): a functional model with two inputs, the 8x8 digit image through a small
Conv2D branch and four standardised summary features (ink, row and column spread, symmetry)
through a Dense branch, concatenated; one-hot labels with `CategoricalCrossentropy(label_smoothing=0.1)`."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h05_keras_multi_input_label_smoothing"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    img = x.reshape(-1, 8, 8, 1)
    im = img[..., 0]
    feats = np.stack(
        [im.sum((1, 2)), im.sum(2).std(1), im.sum(1).std(1), np.abs(im - im[:, :, ::-1]).sum((1, 2))], axis=1
    )
    feats = ((feats - feats[:1400].mean(0)) / feats[:1400].std(0)).astype("float32")
    y1 = keras.utils.to_categorical(y, 10)
    a = keras.Input((8, 8, 1), name="image")
    b = keras.Input((4,), name="summary")
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(a)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    g = keras.layers.Dense(16, activation="relu")(b)
    h = keras.layers.Concatenate()([h, g])
    h = keras.layers.Dense(64, activation="relu")(h)
    out = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model([a, b], out)
    model.compile(
        keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"]
    )
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        {"image": img[:1400], "summary": feats[:1400]},
        y1[:1400],
        validation_data=({"image": img[1400:], "summary": feats[1400:]}, y1[1400:]),
        epochs=10,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
