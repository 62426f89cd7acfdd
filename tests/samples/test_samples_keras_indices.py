"""Keras sample ids from the data set indices of `fit`'s own loader (issue 15, rec17): on the torch
backend `fit` draws its arrays by index through a `DataLoader` it makes every epoch
(`ArrayDataAdapter.get_torch_dataloader`), whose batch sampler the capture watches as Lightning's
does (`LoaderIndices`); a row's id is then the hash its index gave in the first epoch, after the
check of each batch's first and last rows, not a probe of every row found again (wide rows) or
every row hashed again (narrow rows) each epoch. `samples.csv`, the findings and the training are
those of finding the rows by content (`KnownRows`, whose own tests switch the indices off)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.hashing import canonical_rows, fingerprints
from mlcheck.checks.samples import NoisyLabels, WeakSlice

EPOCHS = 4
BATCH = 32


def _torch_backend_only():
    import mlcheck.integrations.keras.backend as backend

    if backend.name() != "torch":  # JAX and TensorFlow iterate arrays without a DataLoader
        pytest.skip("fit draws its arrays through a torch DataLoader on the torch backend only")


def _digits(width):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return np.repeat(x[:800] / 16, width // 64, axis=1).astype(np.float32), y[:800].astype(np.int64)


def _fit(log_dir, width, *, callback=True, train=None):
    """(callback, final weights) of a Keras fit on digits rows of `width` values, `shuffle=True`;
    `train`: fit's training data (a torch DataLoader) instead of the arrays."""
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    x, y = _digits(width)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(shape=(width,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    callbacks = []
    if callback:
        checks = [*default_checks(), NoisyLabels(), WeakSlice()]
        callbacks = [MLCheckCallback(checks=checks, log_dir=log_dir, overfit_batch=False)]
    data = {"x": x[:600], "y": y[:600], "batch_size": BATCH, "shuffle": True} if train is None else {"x": train}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(**data, validation_data=(x[600:], y[600:]), epochs=EPOCHS, verbose=0, callbacks=callbacks)
    return (callbacks[0] if callbacks else None), [w.copy() for w in model.get_weights()]


def _hashed_rows(monkeypatch):
    """(rows hashed whole, rows' probes hashed) by `integrations.keras.samples`, each a list of
    call sizes. The first pass's fingerprints are not taken: the recording hashes the first
    epoch's rows itself, as these counts expect."""
    import mlcheck.integrations.keras.samples as keras_samples
    from mlcheck.live import LiveRun

    monkeypatch.setattr(LiveRun, "keep_pass_fingerprints", lambda self, keep=True: None)
    whole: list[int] = []
    probes: list[int] = []
    original = keras_samples.sample_ids

    def counting(inputs=None, indices=None):
        if inputs is not None:
            width = np.asarray(inputs).reshape(len(inputs), -1).shape[1]
            (probes if width == keras_samples.PROBE_VALUES else whole).append(len(inputs))
        return original(inputs, indices)

    monkeypatch.setattr(keras_samples, "sample_ids", counting)
    return whole, probes


def _by_content(monkeypatch):
    """The capture's path without the loader's indices (main's before rec17): rows found by content."""
    import mlcheck.integrations.keras.samples as keras_samples

    monkeypatch.setattr(keras_samples.KerasSampleCapture, "watch_loader", lambda self, *args: None)


def test_rec17_keras_ids_come_from_fits_loader_indices(tmp_path, monkeypatch):
    """256 values a row: each row's probe was hashed and looked up every epoch after the first.
    Now each row is hashed whole once, then only each batch's first and last rows are (the
    check), and no probe is taken at all."""
    import mlcheck.integrations.keras.samples as keras_samples

    _torch_backend_only()
    width = 256
    whole, probes = _hashed_rows(monkeypatch)
    found = []
    known_rows = keras_samples.KnownRows.ids
    monkeypatch.setattr(
        keras_samples.KnownRows, "ids", lambda self, *a, **k: found.append(1) or known_rows(self, *a, **k)
    )
    cb, weights = _fit(tmp_path / "indexed", width)
    x, _ = _digits(width)
    store = cb.monitor.run.samples
    for split, rows in (("train", x[:600]), ("val", x[600:])):
        data = store.get(split)
        assert sorted(data.ids.tolist()) == sorted(set(fingerprints(canonical_rows(rows)).tolist()))
        assert data.column("epochs").min() == EPOCHS
    batches = (EPOCHS - 1) * (19 + 7)  # after the first epoch: 19 training and 7 validation batches an epoch
    assert 800 <= sum(whole) <= 800 + 2 * batches, sum(whole)
    assert not probes and not found, (probes, found)  # no probe, no lookup by content
    # the same samples.csv and findings as finding the rows by content, and the same training
    _by_content(monkeypatch)
    before = len(probes)
    reference, content_weights = _fit(tmp_path / "content", width)
    assert found and sum(probes[before:]) > 0  # the reference took the path without the indices
    indexed, content = (tmp_path / d / "mlcheck" / "samples.csv" for d in ("indexed", "content"))
    assert indexed.read_bytes() == content.read_bytes()
    assert [(f.check, f.severity, f.message, f.evidence) for f in cb.findings] == [
        (f.check, f.severity, f.message, f.evidence) for f in reference.findings
    ]
    _, unwatched = _fit(tmp_path / "none", width, callback=False)
    assert all(np.array_equal(a, b) for a, b in zip(weights, unwatched))
    assert all(np.array_equal(a, b) for a, b in zip(content_weights, unwatched))


def test_rec17_narrow_rows_are_hashed_whole_and_their_loaders_let_go(tmp_path, monkeypatch):
    """64 values a row: hashing every row costs what the indices do, so the rows are hashed whole
    every epoch, as before, and the loaders are not watched after the first epoch's hand-over."""
    import mlcheck.integrations.keras.samples as keras_samples

    _torch_backend_only()
    whole, probes = _hashed_rows(monkeypatch)
    watched: list[str] = []
    watch = keras_samples.KerasSampleCapture.watch_loader

    def counting(self, split, *args):
        watch(self, split, *args)
        watched.append(split if split in self._sources else "")

    monkeypatch.setattr(keras_samples.KerasSampleCapture, "watch_loader", counting)
    cb, _ = _fit(tmp_path, 64)
    assert sum(whole) == EPOCHS * 800 and not probes
    # the first epoch's loaders only (and the next training one, made as the first epoch's pass ends)
    assert watched[:1] == ["train"] and sum(map(bool, watched)) <= 4 and not any(watched[4:]), watched
    assert not cb._samples._sources


def test_rec17_rows_that_change_under_their_index_are_found_by_content(tmp_path):
    """A torch `DataLoader` given to `fit` whose data set jitters one value of each row every
    time it is read (outside the middle values a probe reads): the first and last rows' check
    turns the indices off and each epoch's rows get their own content hash, as before."""
    import torch

    _torch_backend_only()
    x, y = _digits(256)
    seen: list[np.ndarray] = []

    class Jittered(torch.utils.data.Dataset):
        def __init__(self):
            self.rng = np.random.default_rng(0)

        def __len__(self):
            return 600

        def __getitem__(self, i):
            row = x[i].copy()
            row[1] += self.rng.uniform(0.01, 0.02)
            seen.append(row)
            return row, y[i]

    loader = torch.utils.data.DataLoader(Jittered(), batch_size=BATCH, shuffle=True)
    cb, _ = _fit(tmp_path, 256, train=loader)
    train = cb.monitor.run.samples.get("train")
    expected = set(fingerprints(canonical_rows(np.stack(seen))).tolist())
    assert set(train.ids.tolist()) <= expected  # Keras reads a batch more than it trains on
    assert train.size == EPOCHS * 600  # every epoch's rows are new rows
    assert type(loader.batch_sampler) is torch.utils.data.BatchSampler  # its class given back


def test_rec17_a_fit_that_raises_gives_its_loaders_sampler_back(tmp_path):
    """A training step that raises in the second epoch: `on_train_end` never comes, and the
    `DataLoader` given to `fit` gets its batch sampler's own class back all the same."""
    import keras
    import torch

    from mlcheck.integrations.keras import MLCheckCallback

    _torch_backend_only()
    x, y = _digits(256)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x[:600]), torch.from_numpy(y[:600])),
        batch_size=BATCH,
        shuffle=True,
    )
    calls = [0]

    class FailsLater(keras.layers.Layer):
        def call(self, inputs):
            calls[0] += 1
            if calls[0] > 25:  # inside the second epoch's training steps (19 a epoch)
                raise RuntimeError("boom")
            return inputs

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(256,)), FailsLater(), keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(checks=[*default_checks(), NoisyLabels(), WeakSlice()], log_dir=tmp_path, overfit_batch=False)
    with warnings.catch_warnings(), pytest.raises(RuntimeError, match="boom"):
        warnings.simplefilter("ignore")
        model.fit(loader, epochs=3, verbose=0, callbacks=[cb])
    assert type(loader.batch_sampler) is torch.utils.data.BatchSampler
    assert type(loader.batch_sampler.sampler) is torch.utils.data.RandomSampler
