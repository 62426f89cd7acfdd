"""`find_sorted`, the sorted-key lookup of sample rows, fingerprint sets and the Keras probe table."""

import numpy as np
import pytest

from mlcheck.sorted_keys import find_sorted


def test_empty_keys_find_nothing():
    at, found = find_sorted(np.empty(0, np.uint64), np.array([0, 5, 2**64 - 1], np.uint64))
    assert found.tolist() == [False, False, False] and at.shape == (3,)
    at, found = find_sorted(np.empty(0, np.uint64), np.empty(0, np.uint64))
    assert at.shape == found.shape == (0,)


def test_hits_and_misses_below_between_and_beyond_the_keys():
    keys = np.array([10, 20, 30], np.uint64)
    queries = np.array([5, 10, 15, 30, 31, 2**64 - 1, 20], np.uint64)
    at, found = find_sorted(keys, queries)
    assert found.tolist() == [False, True, False, True, False, False, True]
    assert keys[at[found]].tolist() == [10, 30, 20]
    assert ((at >= 0) & (at < len(keys))).all()  # every position indexes the keys, hit or not
    assert find_sorted(keys, np.empty(0, np.uint64))[1].shape == (0,)


def test_equal_keys_give_the_first_of_them():
    keys = np.array([1, 4, 4, 4, 9], np.uint64)
    at, found = find_sorted(keys, np.array([4, 9, 3], np.uint64))
    assert found.tolist() == [True, True, False] and at[:2].tolist() == [1, 4]


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_agrees_with_isin_on_random_ids(n):
    rng = np.random.default_rng(n)
    keys = np.unique(rng.integers(0, 3 * n, n).astype(np.uint64))
    queries = rng.integers(0, 3 * n, 4 * n).astype(np.uint64)
    at, found = find_sorted(keys, queries)
    assert np.array_equal(found, np.isin(queries, keys))
    assert np.array_equal(keys[at[found]], queries[found])
