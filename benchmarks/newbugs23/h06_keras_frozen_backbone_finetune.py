"""h06 Keras (healthy): a conv backbone pretrained on digits 0-4, then frozen
(`backbone.trainable = False`) under a new head for all ten digits."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h06_keras_frozen_backbone_finetune"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    x = x.reshape(-1, 8, 8, 1)
    backbone = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="backbone",
    )
    pre = keras.Sequential([backbone, keras.layers.Dense(5, activation="softmax")])
    pre.compile("adam", "sparse_categorical_crossentropy")
    keep = y[:1400] < 5
    pre.fit(x[:1400][keep], y[:1400][keep], epochs=5, batch_size=32, verbose=0)

    backbone.trainable = False
    model = keras.Sequential(
        [backbone, keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=10, batch_size=32, verbose=0, callbacks=[cb]
    )
    report(NAME, cb.findings)
