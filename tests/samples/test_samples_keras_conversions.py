"""Keras per-sample capture: a step keeps references to its inputs, targets and predictions, and
the conversions to numpy run once per block of steps (`backend.concat_to_numpy`), not three per
step. `samples.csv`, the findings and the training are those of converting every step's tensors
one by one."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.samples import NoisyLabels, WeakSlice

EPOCHS = 3
BATCH = 32


def _fit(log_dir):
    """(callback, final weights) of a Keras fit on 600 digits with 5% of the labels moved to the
    next class, `shuffle=True`, validation on 200 more."""
    import keras
    from sklearn.datasets import load_digits

    from mlcheck.integrations.keras import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    x, y = (x[:800] / 16).astype(np.float32), y[:800].astype(np.int64)
    y[:600:20] = (y[:600:20] + 1) % 10
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(shape=(64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    cb = MLCheckCallback(checks=[*default_checks(), NoisyLabels(), WeakSlice()], log_dir=log_dir, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(
            x[:600],
            y[:600],
            batch_size=BATCH,
            shuffle=True,
            validation_data=(x[600:], y[600:]),
            epochs=EPOCHS,
            verbose=0,
            callbacks=[cb],
        )
    return cb, [w.copy() for w in model.get_weights()]


def _findings(cb):
    return [(f.check, f.severity, f.message, f.evidence) for f in cb.findings]


def test_steps_hold_references_and_blocks_convert_once_with_the_same_samples_csv(tmp_path, monkeypatch):
    import mlcheck.integrations.keras.backend as backend
    from mlcheck.integrations.keras.samples import KerasSampleCapture

    per_step = KerasSampleCapture.collect.__code__
    converted_in_collect = []
    to_numpy = backend.to_numpy

    def counting(value):
        if sys._getframe(1).f_code is per_step:
            converted_in_collect.append(1)
        return to_numpy(value)

    monkeypatch.setattr(backend, "to_numpy", counting)
    cb, weights = _fit(tmp_path / "blocks")
    assert not converted_in_collect  # three a step before: inputs, targets, predictions
    assert cb.monitor.run.samples.get("train").column("epochs").min() == EPOCHS

    # the reference: every step's tensors converted one by one, then concatenated
    def one_by_one(values):
        return np.concatenate([np.asarray(to_numpy(v)) for v in values])

    monkeypatch.setattr(backend, "concat_to_numpy", one_by_one)
    reference, reference_weights = _fit(tmp_path / "steps")
    blocks, steps = (tmp_path / d / "mlcheck" / "samples.csv" for d in ("blocks", "steps"))
    assert blocks.read_bytes() == steps.read_bytes()
    assert _findings(cb) == _findings(reference)
    assert all(np.array_equal(a, b) for a, b in zip(weights, reference_weights))


def test_concat_to_numpy_equals_converting_each_tensor():
    import torch

    import mlcheck.integrations.keras.backend as backend

    parts = [torch.arange(6, dtype=torch.float16).reshape(3, 2), torch.ones(1, 2, dtype=torch.float16)]
    joined = backend.concat_to_numpy(parts)
    assert joined.dtype == np.float32 and np.array_equal(joined, np.concatenate([p.float().numpy() for p in parts]))
    # mixed dtypes are promoted as numpy promotes them, not as torch.cat would
    mixed = backend.concat_to_numpy([torch.ones(2, dtype=torch.int32), torch.full((1,), 0.5, dtype=torch.float32)])
    assert mixed.dtype == np.float64 and mixed.tolist() == [1.0, 1.0, 0.5]
    grad = torch.ones(2, 3, requires_grad=True) * 2
    assert not backend.held(grad).requires_grad


def test_record14_small_input_batches_convert_once_per_block_with_the_same_samples_csv(tmp_path, monkeypatch):
    import mlcheck.integrations.keras.backend as backend
    from mlcheck.integrations.keras.samples import KerasSampleCapture

    if backend.name() != "torch":
        pytest.skip("other backends convert tensor by tensor, as before")
    callers = {KerasSampleCapture._hand_over.__code__, backend.split_to_numpy.__code__}
    converted = []
    hand_overs = []
    to_numpy, hand_over = backend.to_numpy, KerasSampleCapture._hand_over

    def counting(value):
        if sys._getframe(1).f_code in callers:
            converted.append(1)
        return to_numpy(value)

    def counted_hand_over(self, key, held):
        hand_overs.append(len(held))
        return hand_over(self, key, held)

    monkeypatch.setattr(backend, "to_numpy", counting)
    monkeypatch.setattr(KerasSampleCapture, "_hand_over", counted_hand_over)
    cb, weights = _fit(tmp_path / "joined")
    # the inputs of a block of 32 x 64 batches: one conversion (one per batch before)
    assert hand_overs and max(hand_overs) > 1 and len(converted) == len(hand_overs)
    monkeypatch.undo()

    def one_by_one(values):
        return [np.asarray(backend.to_numpy(v)) for v in values]

    monkeypatch.setattr(backend, "split_to_numpy", one_by_one)
    reference, reference_weights = _fit(tmp_path / "batches")
    joined, batches = (tmp_path / d / "mlcheck" / "samples.csv" for d in ("joined", "batches"))
    assert joined.read_bytes() == batches.read_bytes()
    assert _findings(cb) == _findings(reference)
    assert all(np.array_equal(a, b) for a, b in zip(weights, reference_weights))


def test_record14_split_to_numpy_equals_converting_each_tensor():
    torch = pytest.importorskip("torch")

    import mlcheck.integrations.keras.backend as backend

    small = [torch.arange(6, dtype=torch.float16).reshape(3, 2), torch.ones(1, 2, dtype=torch.float16)]
    shapes = [torch.zeros(2, 3), torch.zeros(2, 4)]  # rows of different layouts: one by one
    large = [torch.ones(backend.SPLIT_BELOW, 2), torch.zeros(1, 2)]  # large batches: one by one
    for parts in (small, shapes, large):
        arrays = backend.split_to_numpy(parts)
        expected = [np.asarray(backend.to_numpy(p)) for p in parts]
        assert [a.dtype for a in arrays] == [e.dtype for e in expected]
        assert all(np.array_equal(a, e) for a, e in zip(arrays, expected))
