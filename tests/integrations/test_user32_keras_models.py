"""user32: a researcher's own Keras models, each a real fit.

A functional model with two outputs (a dict or a list of them) and `loss_weights`: the validation
per-row losses (`train-val-gap`'s guard on small validation sets) read `y_pred.shape` of the
test step's `compute_loss`, which is a dict or list there; the fit printed an AttributeError
traceback and an `MLCheckInternalWarning` ("observing validation losses failed ... switched
off") on a healthy run. Several outputs' losses are summed by their weights, so one class score a
row does not give them: the observation now stands aside silently.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from mlcheck import MLCheckWarning  # noqa: E402
from mlcheck.findings import MLCheckInternalWarning  # noqa: E402
from mlcheck.integrations.keras import MLCheckCallback  # noqa: E402


def _two_output_data(n: int = 240) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 6)).astype("float32")
    target = (150 + 60 * x[:, 0] + 20 * x[:, 1] + 10 * rng.standard_normal(n)).astype("float32")  # in the hundreds
    return x, target, (target > 150).astype("int64")


@pytest.mark.parametrize("outputs", ["dict", "list"])
def test_user32_a_two_output_model_with_loss_weights_fits_without_an_internal_warning(tmp_path, outputs):
    x, reg, cls = _two_output_data()
    keras.utils.set_random_seed(0)
    inp = keras.Input((6,))
    h = keras.layers.Dense(16, activation="relu")(inp)
    out_reg = keras.layers.Dense(1, name="progression")(h)
    out_cls = keras.layers.Dense(1, activation="sigmoid", name="high")(h)
    if outputs == "dict":
        model = keras.Model(inp, {"progression": out_reg, "high": out_cls})
        model.compile(
            "adam",
            loss={"progression": "mse", "high": "binary_crossentropy"},
            loss_weights={"progression": 1e-4, "high": 1.0},
        )
        ys, val_ys = {"progression": reg[:192], "high": cls[:192]}, {"progression": reg[192:], "high": cls[192:]}
    else:
        model = keras.Model(inp, [out_reg, out_cls])
        model.compile("adam", loss=["mse", "binary_crossentropy"], loss_weights=[1e-4, 1.0])
        ys, val_ys = [reg[:192], cls[:192]], [reg[192:], cls[192:]]
    cb = MLCheckCallback(log_dir=tmp_path / "logs", overfit_batch=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x[:192], ys, validation_data=(x[192:], val_ys), epochs=4, batch_size=32, verbose=0, callbacks=[cb])
    internal = [str(w.message) for w in caught if issubclass(w.category, MLCheckInternalWarning)]
    assert internal == []
    assert [f for f in cb.findings if f.severity.value != "info"] == []
    assert not [w for w in caught if issubclass(w.category, MLCheckWarning)]
