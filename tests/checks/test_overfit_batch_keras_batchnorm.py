"""`overfit-batch` on Keras models with BatchNormalization (batch 35's h05): the one-batch fit's
eval-mode loss reads the layers' moving statistics, which Keras' momentum 0.99 leaves 37% at their
initial (0, 1) after 100 steps, so a residual CNN that fits its batch in training mode was called
unable to fit it (a false ERROR on a healthy model). A try that misses its target is judged again
with the moving statistics set to the batch's own (PreciseBN); a model that cannot fit (its
inputs multiplied by 0, every sample the same) keeps its ERROR."""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import pytest
from keras import layers
from sklearn.datasets import load_digits

from mlcheck import MLCheckWarning
from mlcheck.findings import Severity
from mlcheck.integrations.keras import MLCheckCallback
from mlcheck.integrations.keras.trainable import KerasTrainable

assert os.environ.get("KERAS_BACKEND", "torch") == "torch"


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)[:320], y[order][:320]


def block(h, filters):
    skip = h
    h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(h))
    return layers.ReLU()(layers.Add()([h, skip]))


def resnet(blind=False):
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    h = layers.Lambda(lambda t: t * 0.0)(inp) if blind else inp  # a wiring bug: the image never reaches the net
    h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(h)))
    h = layers.GlobalAveragePooling2D()(block(block(h, 16), 16))
    model = keras.Model(inp, layers.Dense(10, activation="softmax")(h))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def overfit_findings(model, x, y):
    cb = MLCheckCallback(log_dir=None, checks=["overfit-batch"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    return [f for f in cb.findings if f.check == "overfit-batch" and f.severity >= Severity.WARNING]


def test_residual_batchnorm_cnn_fits_its_batch(digits):
    assert overfit_findings(resnet(), *digits) == []


def test_inputs_zeroed_still_cannot_fit(digits):
    (f,) = overfit_findings(resnet(blind=True), *digits)
    assert f.severity == Severity.ERROR


def test_refresh_sets_the_moving_statistics_to_the_batch(digits):
    x, y = digits
    model = resnet()
    trainable = KerasTrainable(model)
    bn = next(layer for layer in model.layers if isinstance(layer, layers.BatchNormalization))
    assert trainable.refresh_batch_norm((x[:16], y[:16]))
    conv = model.layers[1]
    mean = keras.ops.convert_to_numpy(conv(x[:16])).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), mean, rtol=1e-4, atol=1e-6)
    assert bn.momentum == 0.99  # put back
    dense = keras.Sequential([keras.Input((64,)), layers.Dense(10, activation="softmax")])
    dense.compile("adam", "sparse_categorical_crossentropy")
    assert not KerasTrainable(dense).refresh_batch_norm((x[:16].reshape(16, 64), y[:16]))
