"""b10 Keras: the model is built in a loop that puts `BatchNormalization()` after every Dense
layer, the softmax output included: the "probabilities" are re-centred and re-scaled, some are
negative, and sparse_categorical_crossentropy clips and renormalises them."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from _common import log_dir, quiet, report, wine

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b10_keras_batchnorm_after_softmax"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = wine()
    layers = [keras.Input((13,))]
    for units, act in [(32, "relu"), (16, "relu"), (3, "softmax")]:
        layers += [
            keras.layers.Dense(units, activation=act),
            keras.layers.BatchNormalization(),
        ]  # BUG: also after the output
    model = keras.Sequential(layers)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=30, batch_size=16, verbose=0, callbacks=[cb])
    report(NAME, cb.findings)
