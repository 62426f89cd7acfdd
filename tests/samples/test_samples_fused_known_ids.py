"""The ids a loader's indices give are checked once for each loader's blocks of a hand-over run
(issue 15, rec26): one gather of the hashes, one comparison of every step's first and last rows
and one gather of the ids (`LoaderIndices.known_ids`), not a few numpy calls a block
(Lightning's `_cached_ids`, Keras' `_indexed_ids`). The blocks up to the first one that fails
either test take their ids from that check; that block and the later ones go their own way, as
before. `samples.csv`, the findings and the training are those of the per-block check."""

from __future__ import annotations

import numpy as np
import pytest
from test_samples_grouped_hand_overs import _findings, _lightning_fit
from test_samples_keras_indices import _digits, _torch_backend_only
from test_samples_keras_indices import _fit as _keras_fit

from mlcheck.checks.hashing import canonical_rows, fingerprints


def _watched(size):
    import torch

    from mlcheck.integrations.torch_samples import LoaderIndices

    data = torch.utils.data.TensorDataset(torch.zeros(size, 1))
    return LoaderIndices.watch(torch.utils.data.DataLoader(data, batch_size=4))


def _blocks(rng, size, steps):
    """Three blocks of `steps` steps of 4 rows each: their indices, and each step's first and
    last rows' places in its block (the firsts, then the lasts)."""
    positions = [rng.permutation(size)[: 4 * steps] for _ in range(3)]
    ends = np.arange(4, 4 * steps + 1, 4)
    checked = [np.concatenate([ends - 4, ends - 1]) for _ in positions]
    return positions, checked


@pytest.mark.parametrize("seed", range(4))
def test_known_ids_gives_each_blocks_ids_up_to_the_first_that_fails(seed):
    rng = np.random.default_rng(seed)
    size = 64
    source = _watched(size)
    source.hashes[:] = rng.integers(1, 2**63, size, dtype=np.uint64)
    source.known[:] = True
    positions, checked = _blocks(rng, size, steps=3)
    ends = np.concatenate([source.hashes[p[c]] for p, c in zip(positions, checked)])
    found = source.known_ids(positions, ends, checked)
    assert len(found) == 3
    assert all(np.array_equal(ids, source.hashes[p]) for ids, p in zip(found, positions))
    # a step's last row in the second block hashes to something else: the first block only
    changed = ends.copy()
    changed[len(checked[0]) + len(checked[1]) - 1] += np.uint64(1)
    found = source.known_ids(positions, changed, checked)
    assert len(found) == 1 and np.array_equal(found[0], source.hashes[positions[0]])
    # an index of the third block never hashed: the first two
    source.known[positions[2][5]] = False
    assert len(source.known_ids(positions, ends, checked)) == 2
    # one block, never hashed: none
    source.known[positions[0][0]] = False
    assert source.known_ids(positions[:1], ends[: len(checked[0])], checked[:1]) == []
    # the check changes nothing it was given
    assert source.trusted and source.known.sum() == size - 2


def _counting(monkeypatch, owner, name):
    """The calls to `owner.name` that returned ids (not None)."""
    calls = []
    original = getattr(owner, name)

    def counting(*args, **kwargs):
        ids = original(*args, **kwargs)
        calls.append(ids is not None)
        return ids

    monkeypatch.setattr(
        owner, name, staticmethod(counting) if isinstance(owner.__dict__[name], staticmethod) else counting
    )
    return calls


def test_lightning_checks_a_flushs_blocks_once_with_the_same_outputs(tmp_path, monkeypatch):
    import mlcheck.integrations.torch_samples as torch_samples

    monkeypatch.setattr(torch_samples.SampleCapture, "HOLD_BATCHES", 2)  # 10 + 4 blocks an epoch
    per_block = _counting(monkeypatch, torch_samples.SampleCapture, "_cached_ids")
    fused = []
    known_ids = torch_samples.LoaderIndices.known_ids
    monkeypatch.setattr(
        torch_samples.LoaderIndices, "known_ids", lambda self, *a: fused.append(len(a[0])) or known_ids(self, *a)
    )
    cb, weights = _lightning_fit(tmp_path / "fused")
    assert not any(per_block), per_block  # no block's ids from its own check
    assert sum(fused) >= 2 * (10 + 4), fused  # every later epoch's blocks, a few calls
    store = cb.monitor.run.samples
    assert store.get("train").column("epochs").min() == 3
    # the per-block check, as before
    monkeypatch.setattr(torch_samples.SampleCapture, "_known_ids", lambda self, blocks: None)
    reference, reference_weights = _lightning_fit(tmp_path / "per-block")
    assert any(per_block)
    csv = [(tmp_path / d / "mlcheck" / "samples.csv").read_bytes() for d in ("fused", "per-block")]
    assert csv[0] == csv[1]
    assert _findings(cb) == _findings(reference)
    assert all(np.array_equal(a, b) for a, b in zip(weights, reference_weights))


def test_keras_checks_a_runs_blocks_once_with_the_same_outputs(tmp_path, monkeypatch):
    import mlcheck.integrations.keras.samples as keras_samples

    _torch_backend_only()
    width = 256  # wide enough for the loader's indices (`PROBE_ABOVE`)
    monkeypatch.setattr(keras_samples.KerasSampleCapture, "HOLD_BATCHES", 2)  # 10 + 4 blocks an epoch
    checked = []  # each block's own check of ids hashed before: whether it gave them
    indexed_ids = keras_samples.KerasSampleCapture._indexed_ids

    def per_block(self, split, positions, *args):
        hashed_before = bool(self._sources[split].known[positions].all())
        ids = indexed_ids(self, split, positions, *args)
        if hashed_before:
            checked.append(ids is not None)
        return ids

    monkeypatch.setattr(keras_samples.KerasSampleCapture, "_indexed_ids", per_block)
    cb, weights = _keras_fit(tmp_path / "fused", width)
    assert not any(checked), checked  # no block's ids from its own check after the first epoch
    store = cb.monitor.run.samples
    assert store.get("train").column("epochs").min() == 4
    x = _digits(width)[0]
    assert sorted(store.get("val").ids.tolist()) == sorted(set(fingerprints(canonical_rows(x[600:])).tolist()))
    # the per-block check, as before: it gives the later epochs' ids
    monkeypatch.setattr(keras_samples.KerasSampleCapture, "_known_ids", lambda self, closed, prepared: {})
    reference, reference_weights = _keras_fit(tmp_path / "per-block", width)
    assert sum(checked) >= 3 * (10 + 4), checked
    csv = [(tmp_path / d / "mlcheck" / "samples.csv").read_bytes() for d in ("fused", "per-block")]
    assert csv[0] == csv[1]
    assert _findings(cb) == _findings(reference)
    assert all(np.array_equal(a, b) for a, b in zip(weights, reference_weights))
