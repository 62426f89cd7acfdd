"""user38: a `slice_by=` (or `batch_to_arrays=`) function that cannot take the one argument each
callback calls it with.

A Keras user reads "a function of a batch (x, y)" and writes `slice_by=lambda x, y: ...`. Before,
the callback took it, the first recorded batch raised `TypeError: <lambda>() missing 1 required
positional argument: 'y'` inside the sample capture, which was switched off with an internal
warning: `weak-slice`, the one check the user had turned on, then judged nothing, and the fit
ended "no problems found". Now the callback refuses such a function when it is built, naming
the argument and how it is called. Keras also handed the function backend tensors (torch
tensors on the torch backend, though `fit` was given numpy arrays), so a numpy-minded key
`(x[:, 0] > 0).astype(int)` raised `AttributeError` at the first batch, with the same result;
now it gets numpy arrays on every backend, and a real fit runs `weak-slice` with no internal
warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcheck import MLCheckInternalWarning
from mlcheck.checks.base import default_checks
from mlcheck.checks.samples import WeakSlice

keras = pytest.importorskip("keras")

from mlcheck.integrations.keras import MLCheckCallback as KerasCallback  # noqa: E402


def _two_arguments(x, y):
    return (x[:, 0] > 0).astype(int)


def test_user38_a_slice_by_of_two_arguments_is_refused_when_the_callback_is_built():
    with pytest.raises(TypeError, match=r"slice_by must be a function of one batch .*one argument.*'y'"):
        KerasCallback(checks=[*default_checks(), WeakSlice()], slice_by=_two_arguments)
    lightning = pytest.importorskip("mlcheck.integrations.lightning")
    with pytest.raises(TypeError, match=r"slice_by must be a function of one batch"):
        lightning.MLCheckCallback(slice_by=_two_arguments)
    with pytest.raises(TypeError, match=r"batch_to_arrays must be a function of the batch .*one argument"):
        lightning.MLCheckCallback(batch_to_arrays=_two_arguments)
    # what each callback calls with one argument is taken: defaults, *args, builtins without a signature
    KerasCallback(slice_by=lambda xy, scale=2: xy[0][:, 0] > 0)
    KerasCallback(slice_by=lambda *xy: xy[0][0][:, 0] > 0)
    lightning.MLCheckCallback(slice_by=len, batch_to_arrays=lambda batch: batch)


def test_user38_a_one_argument_slice_by_runs_weak_slice_in_a_real_keras_fit(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(480, 8)).astype("float32")
    y = (x[:, 1] + 0.3 * rng.normal(size=480) > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = KerasCallback(
        log_dir=tmp_path, checks=[*default_checks(), WeakSlice()], slice_by=lambda xy: (xy[0][:, 0] > 0).astype(int)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x[:384], y[:384], validation_data=(x[384:], y[384:]), epochs=3, callbacks=[cb], verbose=0)
    internal = [str(w.message) for w in caught if issubclass(w.category, MLCheckInternalWarning)]
    assert internal == []  # before: AttributeError: 'Tensor' object has no attribute 'astype', recording off
