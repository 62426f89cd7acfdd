"""Where each of a batch of values stands in a sorted key array: the one lookup behind the
sample-id rows of `mlcheck.samples.SplitSamples`, the fingerprint sets of
`mlcheck.checks.hashing` and the Keras adapter's probe table."""

from __future__ import annotations

import numpy as np


def find_sorted(keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, found) of `queries` in `keys`, a 1-D array sorted ascending.

    `found[i]` is whether `queries[i]` is in `keys`; where it is, `keys[positions[i]]` equals it
    (the first of equal keys). Elsewhere a position is a valid index of `keys` (or 0 when `keys`
    is empty) that means nothing: read `positions[found]`.
    """
    if len(keys) == 0:
        return np.zeros(len(queries), np.intp), np.zeros(len(queries), bool)
    # one binary search per query in the queries' own order: sorting them first (to search from
    # where the last search ended) cost more than it saved at a block's size
    at = np.searchsorted(keys, queries)
    np.minimum(at, len(keys) - 1, out=at)  # past the last key: compare with the last key
    return at, keys[at] == queries
