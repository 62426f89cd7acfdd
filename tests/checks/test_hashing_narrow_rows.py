"""Narrow rows (at most `_WIDEN_WORDS` 32-bit words: digits' 64 values, `KnownRows`' 32-value
probes, tabular rows) are widened to uint64 before the multilinear product, which then runs
without einsum's casting buffer (rec38, docs/benchmarks.md section 2b). The fingerprints must be
the integers of the mixed-dtype product they replace, modulo 2**64, bit for bit: the ids in
samples.csv and `train-val-overlap`'s sets depend on them."""

from __future__ import annotations

import numpy as np
import pytest

from mlcheck.checks import hashing
from mlcheck.checks.hashing import PROBE_BIT, canonical_rows, fingerprints, probe_fingerprints


def _reference(rows: np.ndarray, values: int, probe: bool) -> np.ndarray:
    """main aaaf59d's `_hash_rows`: one mixed-dtype product per block of 2**21 words."""
    rows = canonical_rows(rows)
    n = len(rows)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    nbytes = rows.dtype.itemsize * values
    if rows.dtype.itemsize % 4 == 0:
        words = rows.view(np.uint32)
    else:
        raw = rows.view(np.uint8)
        pad = (-raw.shape[1]) % 4
        if pad:
            raw = np.concatenate([raw, np.zeros((n, pad), dtype=np.uint8)], axis=1)
        words = raw.view(np.uint32)
    keys, tail = hashing._row_keys(words.shape[1], nbytes)
    h = np.einsum("ij,kj->ik", words, keys)
    h += tail
    out = (h[:, 0] & np.uint64(0xFFFFFFFF00000000)) | (h[:, 1] >> np.uint64(32))
    return out | PROBE_BIT if probe else out & np.uint64((1 << 63) - 1)


WIDTHS = [1, 2, 3, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 784]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool", "int16"])
def test_fingerprints_identical_to_the_mixed_dtype_product(width: int, dtype: str) -> None:
    rng = np.random.default_rng(width)
    # rows across a widened block's boundary (2**15 words), extreme values included
    n = 2 * hashing._WIDEN_BLOCK_WORDS // width + 3
    if dtype == "bool":
        x = rng.random((n, width)) < 0.5
    elif dtype.startswith("float"):
        x = rng.standard_normal((n, width)).astype(dtype)
        x[0] = np.finfo(np.float32).max
        x[1, 0] = np.nan
        x[2] = -0.0
    else:
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, size=(n, width), dtype=dtype, endpoint=True)
        x[0], x[1] = info.max, info.min
    assert np.array_equal(fingerprints(x), _reference(x, width, probe=False))
    assert np.array_equal(probe_fingerprints(x, 4 * width), _reference(x, 4 * width, probe=True))


def test_no_rows_and_one_row() -> None:
    assert fingerprints(np.zeros((0, 64), np.float32)).shape == (0,)
    one = np.arange(64, dtype=np.float32)[None]
    assert np.array_equal(fingerprints(one), _reference(one, 64, probe=False))


def test_narrow_rows_multiply_uint64_operands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The narrow rows' product reads two uint64 operands (no casting buffer); wide rows still
    read their uint32 words as they are (no widened copy of a large block)."""
    seen: list[tuple[np.dtype, ...]] = []
    einsum = np.einsum

    def spy(subscripts, *operands, **kwargs):
        seen.append(tuple(o.dtype for o in operands))
        return einsum(subscripts, *operands, **kwargs)

    monkeypatch.setattr(hashing.np, "einsum", spy)
    rng = np.random.default_rng(0)
    fingerprints(rng.standard_normal((100, 64)).astype(np.float32))
    assert seen and all(d == (np.uint64, np.uint64) for d in seen)
    seen.clear()
    fingerprints(rng.standard_normal((10, 784)).astype(np.float32))
    assert seen and all(d == (np.uint32, np.uint64) for d in seen)
