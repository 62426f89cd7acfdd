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


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y


def test_user32_unshuffled_data_says_its_classes_are_those_of_the_sampled_batches(tmp_path):
    """Sorted digits with `shuffle=False`: the message said "(3 classes so far)" of a 10-class data
    set; the classes counted are those of the batches the check sampled, and it says so."""
    x, y = _digits()
    order = np.argsort(y, kind="stable")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(log_dir=tmp_path / "logs", overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x[order], y[order], epochs=3, batch_size=32, shuffle=False, verbose=0, callbacks=[cb])
    (found,) = [f for f in cb.findings if f.check == "unshuffled-data"]
    said = f"({found.evidence['classes']} classes in the {found.evidence['batches']} batches sampled so far)"
    assert said in found.message


def test_user32_an_overflowing_loss_leads_its_origin_hint_with_the_learning_rate(tmp_path):
    """A regression of the digit's value under SGD at 2.0 (examples/buggy_keras_diverging.py): the
    squared error of finite but huge outputs is Inf. `nonfinite-origin` named the code after the
    last layer and led its hint with clamps and epsilons ("lower the learning rate if its inputs
    had grown huge" last), though the training loss had grown 1e21x before it."""
    x, y = _digits()
    order = np.random.default_rng(0).permutation(len(x))  # the example's split
    x, y = x[order], y[order].astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(2.0), "mse")
    cb = MLCheckCallback(log_dir=tmp_path / "logs", overfit_batch=False, stop_on="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x[:1437], y[:1437], validation_data=(x[1437:], y[1437:]), epochs=2, batch_size=32, verbose=0, callbacks=[cb]
        )
    (origin,) = [f for f in cb.findings if f.check == "nonfinite-origin"]
    assert origin.evidence["cause"] == "overflow"
    assert origin.hint.startswith("Lower the learning rate")
    assert "training loss had grown from" in origin.message
