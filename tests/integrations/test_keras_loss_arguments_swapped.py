"""`output-loss-mismatch` key `arguments-swapped` (batch 32's b11): a Keras custom loss written
`def loss(y_pred, y_true)` around `categorical_crossentropy`, where Keras calls `loss(y_true,
y_pred)`, so the one-hot labels are scored as the prediction. Named at train start by an exact
identity: on the first batch the custom loss equals the built-in with its arguments swapped,
sample by sample, and not the built-in in the right order. Controls, silent: the same wrapper
with the arguments in Keras' order, and a custom loss of another form (label-smoothed)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import load_wine

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback

pytestmark = pytest.mark.filterwarnings("ignore")


def swapped_cce(y_pred, y_true):  # the bug: Keras passes (y_true, y_pred)
    return keras.losses.categorical_crossentropy(y_true, y_pred)


def right_cce(y_true, y_pred):
    return keras.losses.categorical_crossentropy(y_true, y_pred)


def smoothed_cce(y_true, y_pred):
    return keras.losses.categorical_crossentropy(y_true, y_pred, label_smoothing=0.1)


@pytest.mark.parametrize("loss", [swapped_cce, right_cce, smoothed_cce], ids=lambda f: f.__name__)
def test_newbugs32_b11_keras_custom_loss_arguments_swapped(tmp_path, loss):
    x, y = load_wine(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    rows = np.random.default_rng(0).permutation(len(y))
    x, y1 = x[rows], keras.utils.to_categorical(y[rows], 3)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((13,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=tmp_path, checks=["output-loss-mismatch"])
    model.fit(
        x[:140], y1[:140], validation_data=(x[140:], y1[140:]), epochs=2, batch_size=16, verbose=0, callbacks=[cb]
    )
    found = [f for f in cb.findings if f.check == "output-loss-mismatch"]
    if loss is not swapped_cce:
        assert found == [], [f.format() for f in found]
        return
    (f,) = found  # was: silent
    assert f.key == "arguments-swapped" and f.severity is Severity.WARNING and f.step == 0
    assert f.evidence["builtin"] == "categorical_crossentropy"
    # -sum(p log clip(onehot)) ~ 16.1 x (1 - p_true) against -log p_true ~ ln 3 at init
    assert f.evidence["loss_value"] > 4 * f.evidence["right_order_value"]
    assert "def swapped_cce(y_true, y_pred)" in f.hint
