"""Sample ids in Keras without hashing every row every epoch (`KnownRows`): `model.fit` on arrays
gives the callback no indices, so each row's id is its content hash; the rows are hashed whole in
the first epoch, then recognised by a probe of their values (the first and last rows of every batch
still hashed whole). The ids, and so `samples.csv`, are those of hashing every row; rows that
change between epochs are hashed every epoch, as before."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.hashing import canonical_rows, fingerprints
from mlcheck.checks.samples import NoisyLabels, WeakSlice

EPOCHS = 4
BATCH = 32


WIDTH = 256  # digits at 16x16 (each value four times): wide enough to be looked up by a probe


def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return np.repeat(x[:800] / 16, WIDTH // 64, axis=1).astype(np.float32), y[:800].astype(np.int64)


def _fit(log_dir, data=None, *, callback=True):
    """(callback, final weights) of a Keras fit on digits, `shuffle=True`; `data` a PyDataset
    for the training rows (else the arrays)."""
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    x, y = _digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(shape=(WIDTH,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    callbacks = []
    if callback:
        checks = [*default_checks(), NoisyLabels(), WeakSlice()]
        callbacks = [MLCheckCallback(checks=checks, log_dir=log_dir, overfit_batch=False)]
    train = {"x": x[:600], "y": y[:600], "batch_size": BATCH, "shuffle": True} if data is None else {"x": data}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(**train, validation_data=(x[600:], y[600:]), epochs=EPOCHS, verbose=0, callbacks=callbacks)
    return (callbacks[0] if callbacks else None), [w.copy() for w in model.get_weights()]


def _whole_rows_hashed(monkeypatch):
    """Counts the rows `integrations.keras.samples` hashes whole (`WIDTH` values), not probes.
    The first pass's fingerprints are not taken (`PassFingerprints`, their own test file): the
    recording hashes the first epoch's rows itself, as these counts expect."""
    import mlcheck.integrations.keras.samples as keras_samples
    from mlcheck.live import LiveRun

    monkeypatch.setattr(LiveRun, "keep_pass_fingerprints", lambda self, keep=True: None)
    # the rows found by content, as these counts expect: on torch, `fit`'s arrays come with their
    # loader's indices, which take the probes' place (test_samples_keras_indices.py)
    monkeypatch.setattr(keras_samples.KerasSampleCapture, "watch_loader", lambda self, *args: None)

    rows: list[int] = []
    original = keras_samples.sample_ids

    def counting(inputs=None, indices=None):
        if inputs is not None and np.asarray(inputs).reshape(len(inputs), -1).shape[1] == WIDTH:
            rows.append(len(inputs))
        return original(inputs, indices)

    monkeypatch.setattr(keras_samples, "sample_ids", counting)
    return rows


def test_shuffled_rows_get_their_content_hash_ids_and_are_hashed_whole_once(tmp_path, monkeypatch):
    import mlcheck.integrations.keras.samples as keras_samples

    hashed = _whole_rows_hashed(monkeypatch)
    cb, weights = _fit(tmp_path / "probed")
    x, _ = _digits()
    store = cb.monitor.run.samples
    for split, rows in (("train", x[:600]), ("val", x[600:])):
        data = store.get(split)
        assert sorted(data.ids.tolist()) == sorted(set(fingerprints(canonical_rows(rows)).tolist()))
        assert data.column("epochs").min() == EPOCHS
    # 800 rows an epoch for 4 epochs (3,200 hashed whole before): each row once in the first
    # epoch, then the first and last row of each batch (19 + 7 batches an epoch) and the rows
    # whose probe another row shares (the middle 32 values of a 16x16 digit: about 40 rows)
    batches = (EPOCHS - 1) * (19 + 7)
    assert 800 <= sum(hashed) <= 800 + 2 * batches + 200, sum(hashed)  # was 3,200
    # the same samples.csv as hashing every row every epoch, and the same training
    monkeypatch.setattr(keras_samples, "PROBE_ABOVE", 10 * WIDTH)  # every row hashed whole
    before = len(hashed)
    _, plain_weights = _fit(tmp_path / "whole")
    assert sum(hashed[before:]) == EPOCHS * 800
    probed, whole = (tmp_path / d / "mlcheck" / "samples.csv" for d in ("probed", "whole"))
    assert probed.read_bytes() == whole.read_bytes()
    _, unwatched = _fit(tmp_path / "none", callback=False)
    assert all(np.array_equal(a, b) for a, b in zip(weights, unwatched))
    assert all(np.array_equal(a, b) for a, b in zip(plain_weights, unwatched))


@pytest.mark.parametrize("columns", ["all", "one"])
def test_rows_that_change_between_epochs_are_hashed_every_epoch(tmp_path, monkeypatch, columns):
    """Every epoch's rows are new rows (jitter on every value, or only on a value outside the
    probe, which the first and last rows' check catches): each gets its own content hash."""
    import keras

    x, y = _digits()
    seen: list[np.ndarray] = []

    class Jittered(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(0)

        def __len__(self):
            return 600 // BATCH

        def __getitem__(self, i):
            rows = x[i * BATCH : (i + 1) * BATCH].copy()
            noise = self.rng.uniform(0.01, 0.02, size=rows.shape).astype(np.float32)
            rows[:, :] += noise if columns == "all" else np.where(np.arange(WIDTH) == 1, noise, 0)
            seen.append(rows)
            return rows, y[i * BATCH : (i + 1) * BATCH]

    hashed = _whole_rows_hashed(monkeypatch)
    cb, _ = _fit(tmp_path, Jittered())
    train = cb.monitor.run.samples.get("train")
    expected = fingerprints(canonical_rows(np.concatenate(seen)))
    # Keras reads a batch more than it trains on (to learn the data's structure): a subset
    assert set(train.ids.tolist()) <= set(expected.tolist())
    assert train.size == EPOCHS * (600 // BATCH) * BATCH
    # every training row hashed whole every epoch; the validation rows (unchanged) once
    assert sum(hashed) >= EPOCHS * (600 // BATCH) * BATCH + 200


def test_rows_sharing_a_probe_get_their_own_hash_wherever_they_fall_in_a_block():
    # rows whose probe another row shares are hashed whole, one by one out of their batches (not
    # by concatenating the block): every id is still the row's content hash, epoch after epoch
    from mlcheck.integrations.keras.samples import PROBE_VALUES, KnownRows
    from mlcheck.samples import sample_ids

    rng = np.random.default_rng(0)
    rows = rng.random((300, 784)).astype(np.float32)
    middle = slice((784 - PROBE_VALUES) // 2, (784 + PROBE_VALUES) // 2)
    rows[1:40:2, middle] = rows[0:40:2, middle]  # 20 pairs of rows with one probe each
    known = KnownRows()
    for epoch in range(3):
        order = rng.permutation(len(rows))
        batches = [rows[order[i : i + 48]] for i in range(0, len(rows), 48)]
        for start in range(0, len(batches), 3):
            block = batches[start : start + 3]
            assert np.array_equal(known.ids(block, epoch), sample_ids(np.concatenate(block))), epoch
    assert known.trusted
