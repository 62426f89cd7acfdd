"""A subclassed Keras model whose `__init__` takes its own arguments but no `**kwargs` (the way
most hand-written subclasses look) is cloned for the train-start checks. Keras' default
`get_config` records those arguments beside its base keys (`trainable`, `dtype`), and
`from_config` passed all of them back to the constructor, which refused them: `overfit-batch`
and `unused-parameters` failed with an internal-error warning and a traceback on every such
model. Now the constructor gets the keys it takes. Where the config cannot rebuild the model
(Keras 3.15 records the constructor's defaults, not the arguments given, so `hidden=24` comes
back as 32), the train-start checks are skipped with one INFO finding that says how to make
the model copyable, instead of two internal errors."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback
from mlcheck.integrations.keras.trainable import KerasTrainable


class _NoKwargs(keras.Model):
    def __init__(self, hidden=32, n_classes=10):
        super().__init__()
        self.hidden_layer = keras.layers.Dense(hidden, activation="relu")
        self.out = keras.layers.Dense(n_classes)

    def call(self, x, training=False):
        return self.out(self.hidden_layer(x))


class _WithKwargs(keras.Model):
    def __init__(self, hidden=32, n_classes=10, **kwargs):
        super().__init__(**kwargs)
        self.hidden_layer = keras.layers.Dense(hidden, activation="relu")
        self.out = keras.layers.Dense(n_classes)

    def call(self, x, training=False):
        return self.out(self.hidden_layer(x))


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x[:512] / 16.0).astype("float32"), y[:512]


def _fit(tmp_path, digits, model):
    x, y = digits
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    cb = MLCheckCallback(log_dir=str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    internal = [w for w in caught if "failed" in str(w.message) and "switched off" in str(w.message)]
    assert internal == []  # before: overfit-batch and unused-parameters failed with a traceback
    assert not [str(w.message) for w in caught if issubclass(w.category, MLCheckWarning)]
    return cb


@pytest.mark.parametrize("cls", [_NoKwargs, _WithKwargs])
def test_subclassed_model_is_cloned_for_the_train_start_checks(tmp_path, digits, cls):
    keras.utils.set_random_seed(0)
    model = cls()
    cb = _fit(tmp_path, digits, model)
    assert not [f for f in cb.findings if f.check == "overfit-batch"]  # it ran, and passed
    clone = KerasTrainable(model, digits).clone().model
    assert type(clone) is cls
    assert all(np.array_equal(a, b) for a, b in zip(clone.get_weights(), model.get_weights()))


@pytest.mark.parametrize("cls", [_NoKwargs, _WithKwargs])
def test_a_model_its_config_does_not_rebuild_is_skipped_with_one_note(tmp_path, digits, cls):
    keras.utils.set_random_seed(0)
    cb = _fit(tmp_path, digits, cls(hidden=24))
    (note,) = [f for f in cb.findings if f.check == "overfit-batch"]
    assert note.severity == Severity.INFO and "could not be copied" in note.message
    assert "unused-parameters" in note.message and "get_config()" in note.hint
