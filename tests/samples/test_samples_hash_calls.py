"""The per-sample recording hashes rows in as few calls as the rows allow (issue 15, record12):
Keras hashes the batches the live core's pass did not fingerprint in one call (`fill_ids`), and
only where the rows are hashed whole at all; Lightning hashes the first and last rows of every
step of a flush's blocks in one call (`SampleCapture._hash_ends`). A row's hash is its own, so
`samples.csv`, the findings, the TensorBoard events and the training are those of hashing batch
by batch (the fits of `test_samples_grouped_hand_overs`)."""

from __future__ import annotations

import numpy as np
import pytest
import test_samples_grouped_hand_overs as grouped_fits
from test_samples_grouped_hand_overs import HOLD_BATCHES, _keras_fit, _lightning_fit, _same_outputs

import mlcheck.samples as samples
from mlcheck.samples import fill_ids, sample_ids


def _torch_backend_only():
    import mlcheck.integrations.keras.backend as backend

    if backend.name() != "torch":  # the other backends' recording is not what these count
        pytest.skip("the Keras per-sample recording is measured on the torch backend")


def _rows_by_content(monkeypatch):
    """Keras finds the rows by their content here (`KnownRows`, the first pass's fingerprints), as
    these tests count: on torch, `fit`'s arrays come with their loader's indices, which take its
    place (test_samples_keras_indices.py)."""
    import mlcheck.integrations.keras.samples as keras_samples

    monkeypatch.setattr(keras_samples.KerasSampleCapture, "watch_loader", lambda self, *args: None)


def _count_calls(monkeypatch, modules, log):
    """Counts the calls of `sample_ids` from each of `modules` that hash rows into `log` (not
    those that take the data set indices, as the live core's hand-over does)."""

    def counting(inputs=None, indices=None):
        log[-1] += indices is None
        return sample_ids(inputs, indices)

    for module in modules:
        monkeypatch.setattr(module, "sample_ids", counting)


def test_record12_keras_hashes_the_batches_the_pass_left_in_one_call(tmp_path, monkeypatch):
    import mlcheck.integrations.keras.samples as keras_samples

    _torch_backend_only()
    _rows_by_content(monkeypatch)

    monkeypatch.setattr(keras_samples.KerasSampleCapture, "HOLD_BATCHES", 64)  # one block a split and epoch
    # past the first epochs the live core's pass looks at one training batch in 100: 6 epochs of
    # 19 batches reach the 100th
    monkeypatch.setattr(grouped_fits, "EPOCHS", 6)
    calls: list[int] = []  # hashing calls per hand-over
    taken: list[int] = []  # batches the pass had fingerprinted, per hand-over that asked
    hand_over, take = keras_samples.KerasSampleCapture._hand_over, samples.PassFingerprints.take

    def counting_hand_over(self, *args):
        calls.append(0)
        return hand_over(self, *args)

    def counting_take(self, *args):
        found = take(self, *args)
        taken.append(0 if found is None else sum(f is not None for f in found))
        return found

    monkeypatch.setattr(keras_samples.KerasSampleCapture, "_hand_over", counting_hand_over)
    monkeypatch.setattr(samples.PassFingerprints, "take", counting_take)
    _count_calls(monkeypatch, (keras_samples, samples), calls)
    grouped = _keras_fit(tmp_path / "grouped")
    assert len(calls) == 2 * 6, calls
    # after the first epoch the pass fingerprints a sampled batch of the 19: the others
    # were hashed one call each (19 calls and more); now all of them in one, the checked ends in one
    assert any(0 < n < 19 for n in taken[2:]), taken
    assert max(calls[2:]) <= 3, calls
    # the reference: no fingerprints from the pass, every block's rows hashed whole
    monkeypatch.setattr(keras_samples.KerasSampleCapture, "_pass_ids", lambda self, *args: None)
    one_by_one = _keras_fit(tmp_path / "one")
    _same_outputs(tmp_path, grouped, one_by_one)


def test_record12_lightning_hashes_a_flushs_step_ends_in_one_call(tmp_path, monkeypatch):
    import mlcheck.integrations.torch_samples as torch_samples

    monkeypatch.setattr(torch_samples.SampleCapture, "HOLD_BATCHES", HOLD_BATCHES)  # 14 blocks an epoch
    calls: list[int] = []  # hashing calls per flush
    flush = torch_samples.SampleCapture.flush

    def counting_flush(self, *args, **kwargs):
        calls.append(0)
        return flush(self, *args, **kwargs)

    monkeypatch.setattr(torch_samples.SampleCapture, "flush", counting_flush)
    _count_calls(monkeypatch, (torch_samples, samples), calls)
    grouped = _lightning_fit(tmp_path / "grouped")
    later = [n for n in calls[1:] if n]  # the flushes after the first epoch's (the ids learnt)
    # 14 blocks, each checking its steps' first and last rows against the loader's indices:
    # 14 calls a flush before, one now
    assert later and max(later) == 1, calls
    # the reference: each block's ends hashed on their own
    monkeypatch.setattr(torch_samples.SampleCapture, "_hash_ends", lambda self, blocks: None)
    del calls[:]
    one_by_one = _lightning_fit(tmp_path / "one")
    assert max(calls[1:]) >= 14, calls
    _same_outputs(tmp_path, grouped, one_by_one)


def test_record12_fill_ids_equals_hashing_each_batch():
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(n, 3, 4)).astype(np.float32) for n in (5, 1, 7, 2, 4)]
    expected = np.concatenate([sample_ids(b) for b in batches])
    for pattern in range(32):  # which batches come with their ids already
        found = [
            expected[sum(len(b) for b in batches[:i]) :][: len(batches[i])] if pattern >> i & 1 else None
            for i in range(5)
        ]
        assert np.array_equal(fill_ids(found, batches), expected), pattern
    # batches of other dtypes or widths are hashed one by one, as `sample_ids` hashes each
    mixed = [batches[0], batches[1].astype(np.float64), rng.integers(0, 9, size=(3, 12)), rng.normal(size=(2, 5))]
    assert np.array_equal(fill_ids([None] * 4, mixed), np.concatenate([sample_ids(b) for b in mixed]))


def test_record12_store_rows_of_known_ids():
    """All ids known (each epoch after a split's first) takes the short path: the rows are those
    `rows()` looks up, a repeated id is still told, and the sums count it each time."""
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 2**63, 250, dtype=np.uint64)
    labels = rng.integers(0, 10, 250)
    store = samples.SplitSamples()
    store.add(samples.SampleOutputs("train", 0, ids, labels, np.full(250, 0.5, np.float32), labels))
    seen = np.ones(250)
    for epoch in range(1, 40):
        rows = rng.permutation(250)[: rng.integers(1, 250)]
        if epoch % 3 == 0:
            rows = np.concatenate([rows, rows[:5]])  # an id twice in the block
        got, repeated = store._rows_of(ids[rows], labels[rows])
        assert got.dtype == np.intp and np.array_equal(got, store.rows(ids[rows]))
        assert repeated == (epoch % 3 == 0) and store.size == 250
        store.add(
            samples.SampleOutputs("train", epoch, ids[rows], labels[rows], np.ones(len(rows), np.float32), labels[rows])
        )
        np.add.at(seen, store.rows(ids[rows]), 1)
    assert np.array_equal(store.column("epochs"), seen)


def _wide_keras_fit(log_dir):
    """(callback, final weights) of a Keras fit on 600 digits scaled up to 16 x 16 (256 values a
    row: ids read from the rows' probes), validation on 200 more."""
    import warnings

    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    x, y = grouped_fits._digits()
    x = np.kron(x.reshape(-1, 8, 8), np.ones((2, 2), np.float32)).reshape(len(x), 256)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(shape=(256,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    cb = MLCheckCallback(checks=grouped_fits._checks(), log_dir=log_dir, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(
            x[:600], y[:600], batch_size=32, validation_data=(x[600:], y[600:]), epochs=3, verbose=0, callbacks=[cb]
        )
    return cb, [w.copy() for w in model.get_weights()]


def test_record12_keras_hashes_a_runs_probes_in_one_call(tmp_path, monkeypatch):
    import mlcheck.integrations.keras.samples as keras_samples

    _torch_backend_only()
    _rows_by_content(monkeypatch)

    monkeypatch.setattr(keras_samples.KerasSampleCapture, "HOLD_BATCHES", HOLD_BATCHES)  # 10 + 4 blocks an epoch
    calls: list[int] = []  # hashing calls per run of hand-overs
    blocks: list[int] = []
    run = keras_samples.KerasSampleCapture._hand_over_closed

    def counting_run(self, *args, **kwargs):
        calls.append(0)
        blocks.append(len(self._closed))
        return run(self, *args, **kwargs)

    monkeypatch.setattr(keras_samples.KerasSampleCapture, "_hand_over_closed", counting_run)
    _count_calls(monkeypatch, (keras_samples, samples), calls)
    grouped = _wide_keras_fit(tmp_path / "grouped")
    later = [(n, b) for n, b in zip(calls, blocks) if b >= 4][1:]  # the runs after the first epoch's
    # each block hashed its probes and its batches' first and last rows: two calls a block before
    # (8 and 20 a run); one each for the run now
    assert len(later) == 2 and all(n <= 3 for n, _ in later), list(zip(calls, blocks))
    monkeypatch.setattr(keras_samples.KerasSampleCapture, "_prepare", lambda self, closed: {})
    reference = _wide_keras_fit(tmp_path / "one")
    csv = [(tmp_path / d / "mlcheck" / "samples.csv").read_bytes() for d in ("grouped", "one")]
    assert csv[0] == csv[1]
    assert grouped_fits._findings(grouped[0]) == grouped_fits._findings(reference[0])
    assert all(np.array_equal(a, b) for a, b in zip(grouped[1], reference[1]))
