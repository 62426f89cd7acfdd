"""The first-stage probe of `train-val-overlap`: seeded positions instead of every value."""

from __future__ import annotations

import numpy as np

from mlcheck.checks.hashing import fingerprints, probe_positions
from mlcheck.checks.leakage import TrainValOverlap
from mlcheck.run import BatchObservation, RunState


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, 32, 32), dtype=np.float32)


def test_probe_positions_depend_on_the_row_length_only():
    a, b = probe_positions(3072, 256), probe_positions(3072, 256)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 256 and a.max() < 3072
    assert not np.array_equal(a, probe_positions(3073, 256))


def test_probe_fingerprints_match_exact_copies_and_nothing_else():
    x = _images(200, 0)
    copies = np.concatenate([x[::7], x[::7].astype(np.float64)])  # float64 copies count too
    full, probed = fingerprints(x), fingerprints(x, probe_values=256)
    assert len(np.unique(probed)) == len(x)  # distinct images, distinct probes
    assert np.isin(fingerprints(copies, probe_values=256), probed).all()
    assert not np.isin(probed, full).any()  # a probe is never a full-row fingerprint
    np.testing.assert_array_equal(fingerprints(x, probe_values=4096), full)  # short rows: every value

    # half the values changed: a different sample, told apart with probability 1 - 2**-256
    edited = x.copy()
    edited.reshape(len(x), -1)[:, ::2] += 1.0
    assert not np.isin(fingerprints(edited, probe_values=256), probed).any()


def _feed(check: TrainValOverlap, train: np.ndarray, val: np.ndarray) -> list:
    run, found = RunState(), []
    for start in range(0, len(train), 64):
        found += check.on_batch(BatchObservation(train[start : start + 64], None, "train", epoch=0), run)
    for start in range(0, len(val), 64):
        found += check.on_batch(BatchObservation(val[start : start + 64], None, "val", epoch=0), run)
    return found + list(check.on_end(run))


def test_overlap_with_a_probe_finds_the_copies_the_full_hash_finds():
    train, val = _images(640, 1), _images(128, 2)
    val[:32] = train[100:132]
    val[32:40] = 0.0  # blank images are skipped either way
    for probe in (None, 512):
        check = TrainValOverlap(probe_values=probe)
        found = _feed(check, train, val)
        assert check._overlap.matched == 32
        assert found and {f.check for f in found} == {"train-val-overlap"}
        assert found[-1].evidence["val_in_train"] == 32


def test_overlap_with_a_probe_stays_silent_on_distinct_samples():
    check = TrainValOverlap(probe_values=512)
    assert _feed(check, _images(640, 3), _images(128, 4)) == []
    assert check._overlap.matched == 0
