"""Keras per-sample capture on wide rows (MNIST's 784 values): the loader's own CPU batches are
made numpy arrays with one `numpy()` each, not `to_numpy`'s `detach()`/`cpu()`/checks per batch,
and a block whose rows were all hashed before is not looked up twice (issue 15, rec32). Same
arrays (views of the batches), same ids."""

from __future__ import annotations

import types

import numpy as np
import pytest


def _backend():
    import mlcheck.integrations.keras.backend as backend

    if backend.name() != "torch":
        pytest.skip("the torch backend's conversions")
    return backend


def test_rec32_wide_cpu_batches_become_views_without_to_numpy(monkeypatch):
    import torch

    backend = _backend()
    batches = [torch.randn(64, 784), torch.randn(64, 784), torch.randn(17, 784)]
    assert sum(b.numel() for b in batches) >= backend.SPLIT_BELOW * len(batches)  # not joined first
    converted = []
    to_numpy = backend.to_numpy

    def counting(value):
        converted.append(1)
        return to_numpy(value)

    monkeypatch.setattr(backend, "to_numpy", counting)
    arrays = backend.split_to_numpy(batches)
    assert not converted  # one `to_numpy` per batch before
    for array, batch in zip(arrays, batches):
        assert type(array) is np.ndarray and array.dtype == np.float32
        assert array.ctypes.data == batch.data_ptr() and np.array_equal(array, batch.numpy())


def test_rec32_batches_numpy_cannot_take_still_go_through_to_numpy(monkeypatch):
    import torch

    backend = _backend()
    converted = []
    to_numpy = backend.to_numpy

    def counting(value):
        converted.append(1)
        return to_numpy(value)

    monkeypatch.setattr(backend, "to_numpy", counting)
    half = [torch.ones(64, 784, dtype=torch.float16), torch.zeros(64, 784, dtype=torch.float16)]
    arrays = backend.split_to_numpy(half)
    assert [a.dtype for a in arrays] == [np.float32, np.float32] and len(converted) == 2  # as before: float32
    graph = [torch.ones(64, 784, requires_grad=True), torch.ones(64, 784, requires_grad=True)]
    arrays = backend.split_to_numpy(graph)
    assert len(converted) == 4 and all(np.array_equal(a, np.ones((64, 784), np.float32)) for a in arrays)


class _Flags:
    """The `known` flags of a loader's data set, counting the lookups."""

    def __init__(self, size: int) -> None:
        self.values, self.reads = np.ones(size, bool), 0

    def __getitem__(self, at):
        self.reads += 1
        return self.values[at]


def test_rec32_a_block_prepared_with_its_edges_reads_no_known_flags():
    from mlcheck.integrations.keras.samples import KerasSampleCapture
    from mlcheck.samples import sample_ids

    rng = np.random.default_rng(0)
    data = rng.standard_normal((40, 300)).astype(np.float32)
    hashes = sample_ids(data)
    source = types.SimpleNamespace(hashes=hashes, known=_Flags(len(data)), trusted=True)
    capture = KerasSampleCapture.__new__(KerasSampleCapture)
    capture._sources = {"train": source}
    positions = rng.permutation(len(data))[:24]
    inputs = [data[positions[:8]], data[positions[8:16]], data[positions[16:]]]
    rows = [x.reshape(len(x), -1) for x in inputs]
    edges = sample_ids(np.stack([r[0] for r in rows] + [r[-1] for r in rows]))

    ids = capture._indexed_ids("train", positions, inputs, lambda: None, edges)
    assert np.array_equal(ids, hashes[positions]) and source.known.reads == 0  # one lookup before
    # without the edges (a block handed over alone) the flags still say whether to hash
    ids = capture._indexed_ids("train", positions, inputs, lambda: None)
    assert np.array_equal(ids, hashes[positions]) and source.known.reads == 1
