"""Keras parity for `dead-units`' `symmetric` (batch 23's b06 on Keras): every `Dense` of an MLP
initialised to one constant (`kernel_initializer="ones"` or `Constant(0.05)`), so the hidden
units start equal, get equal gradients and stay equal: the MLP acts as one of width 1.

Before, only the Lightning callback read the weights (`integrations/torch_symmetry.py`); the
Keras callback now reads each `Dense`/`ConvND` kernel at train start and the kernels that were
symmetric again at the first epoch's end (`integrations/keras/symmetry.py`: units are a Keras
kernel's columns). Healthy: Glorot (Keras' default) and a zero-initialised output layer (its
units are pulled apart by the targets at the first step) stay silent, with every check on.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import MLCheckWarning, Severity


def _fit(tmp_path, monkeypatch, init, checks, conv=False):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:480]
    x, y = (x[order] / 16.0).astype(np.float32), y[order]
    keras.utils.set_random_seed(0)
    kernel = {"ones": "ones", "constant": keras.initializers.Constant(0.05)}.get(init, "glorot_uniform")
    head = "zeros" if init == "zero-head" else kernel
    if conv:
        x = x.reshape(-1, 8, 8, 1)
        body = [keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer=kernel)]
        body.append(keras.layers.Flatten())
    else:
        body = [keras.Input((64,)), keras.layers.Dense(32, activation="relu", kernel_initializer=kernel)]
    model = keras.Sequential(
        [
            *body,
            keras.layers.Dense(32, activation="relu", kernel_initializer=kernel, name="hidden"),
            keras.layers.Dense(10, kernel_initializer=head, name="head"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(True))
    cb = MLCheckCallback(log_dir=None, checks=checks, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    return model, cb.findings


@pytest.mark.parametrize("init", ["ones", "constant"])
def test_keras_constant_init_units_that_stay_equal_are_named(tmp_path, monkeypatch, init):
    model, findings = _fit(tmp_path, monkeypatch, init, ["dead-units"])
    told = [f for f in findings if f.key == "symmetric"]
    (f,) = told  # before: none on Keras
    assert f.check == "dead-units" and f.severity is Severity.WARNING and f.epoch == 0, f.format()
    # the two hidden layers; the output layer's units are pulled apart by the targets
    first = model.layers[0].name
    assert f.evidence == {"layers": [first, "hidden"], "units": [32, 32]}, f.format()


def test_keras_constant_init_convolution_is_named(tmp_path, monkeypatch):
    model, findings = _fit(tmp_path, monkeypatch, "constant", ["dead-units"], conv=True)
    (f,) = [f for f in findings if f.key == "symmetric"]
    assert f.evidence["layers"][:1] == [model.layers[0].name] and f.evidence["units"][:1] == [8], f.format()


@pytest.mark.parametrize("init", ["glorot", "zero-head"])
def test_keras_random_init_and_zero_head_stay_silent(tmp_path, monkeypatch, init):
    _, findings = _fit(tmp_path, monkeypatch, init, None)
    assert [f for f in findings if f.key == "symmetric"] == []
    assert [f for f in findings if f.severity is not Severity.INFO] == [], [f.format() for f in findings]
