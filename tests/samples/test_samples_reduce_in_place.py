"""`reduce_scores` reduces its own copy of the scores in place: the values and classes of the
reduction with a second copy and a second `argmax` (kept here as the reference), one copy less."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from mlcheck.samples import reduce_scores


def _reference(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, ...] | str:
    """`reduce_scores` before 2026-12-05 (rec35): the label's column set in a copy, two argmaxes."""
    out = np.asarray(scores, np.float64)
    y = np.asarray(targets)
    out = out[:, None] if out.ndim == 1 else out
    if out.ndim != 2 or y.ndim == 0 or out.shape[0] != y.shape[0]:
        return "shape"
    if y.ndim == 2 and y.shape[1] == out.shape[1] > 1:
        y = y.argmax(axis=1)
    y = y.reshape(len(y), -1)[:, 0]
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        return "regression"
    labels = y.astype(np.int64)
    if out.shape[1] == 1:
        p1 = out[:, 0]
        p1 = p1 if ((p1 >= 0) & (p1 <= 1)).all() else 1 / (1 + np.exp(-p1))
        probs = np.stack([1 - p1, p1], axis=1)
    elif (out >= 0).all() and (np.abs(out.sum(axis=1) - 1.0) <= 1e-3 + 1e-5).all():
        probs = out
    else:
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
    safe = np.clip(labels, 0, probs.shape[1] - 1)
    rows = np.arange(len(labels))
    others = probs.copy()
    others[rows, safe] = -1.0
    other_class = others.argmax(axis=1)
    return labels, probs[rows, safe], probs.argmax(axis=1), np.maximum(others[rows, other_class], 0.0), other_class


def _cases(seed: int):
    rng = np.random.default_rng(seed)
    n, c = 257, int(rng.integers(2, 12))
    labels = rng.integers(0, c, n)
    logits = rng.normal(0, 3, (n, c)).astype(np.float32)
    yield logits, labels  # logits: the softmax path
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    yield (e / e.sum(axis=1, keepdims=True)).astype(np.float32), labels  # probabilities, as float32
    yield (e / e.sum(axis=1, keepdims=True)), labels.astype(np.float64)  # float64 probabilities, float labels
    ties = np.round(rng.random((n, c)) * 2).astype(np.float32)  # many ties, among them with the label
    yield ties / np.maximum(ties.sum(axis=1, keepdims=True), 1), labels
    yield np.full((n, c), 1.0 / c, np.float32), labels  # every class tied
    hard = np.eye(c, dtype=np.float32)[rng.integers(0, c, n)]  # one-hot predictions, labels one-hot
    yield hard, np.eye(c)[labels]
    bad = logits.copy()
    bad[rng.random(n) < 0.2, int(rng.integers(0, c))] = np.nan
    bad[rng.random(n) < 0.1, int(rng.integers(0, c))] = np.inf
    bad[rng.random(n) < 0.1] = -np.inf
    yield bad, labels  # NaN and infinite logits: all-NaN rows
    yield bad, np.where(rng.random(n) < 0.3, -100, labels)  # an ignore index among the labels
    yield rng.normal(0, 2, (n, 1)).astype(np.float32), rng.integers(0, 2, n)  # one logit column
    yield rng.random(n).astype(np.float32), rng.integers(0, 2, n)  # one probability column
    p1 = rng.random(n).astype(np.float32)
    p1[:5] = np.nan
    yield p1, rng.integers(0, 2, n)  # NaN in one column: the sigmoid path


@pytest.mark.parametrize("seed", range(8))
def test_reduce_scores_gives_the_reference_values_and_classes(seed):
    for scores, targets in _cases(seed):
        before = scores.copy()
        got, want = reduce_scores(scores, targets), _reference(scores, targets)
        assert len(got) == len(want) == 5
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            assert np.array_equal(g, w, equal_nan=True)
        assert np.array_equal(scores, before, equal_nan=True)  # the caller's scores untouched


def test_reduce_scores_leaves_float64_scores_untouched():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    kept = probs.copy()
    _, true_prob, predicted, other_prob, other_class = reduce_scores(probs, np.array([1, 2]))
    assert np.array_equal(probs, kept)
    assert true_prob.tolist() == [0.2, 0.8] and predicted.tolist() == [0, 2]
    assert other_prob.tolist() == [0.7, 0.1] and other_class.tolist() == [0, 0]


def test_reduce_scores_makes_one_float64_copy_of_the_scores():
    # 10,000 x 200 float32 probabilities: 16 MB as float64 (wide rows, so that the per-row
    # columns, 80 KB each, stay small beside it). The reference held a second copy (its `others`)
    # beside the first: a peak of over 2 copies; in place, one and the per-row columns.
    rng = np.random.default_rng(0)
    scores = rng.random((10_000, 200)).astype(np.float32)
    scores /= scores.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 200, len(scores))
    copy = scores.size * 8
    for reduce, bound in ((_reference, None), (reduce_scores, 1.5 * copy)):
        tracemalloc.start()
        reduce(scores, labels)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if bound is None:
            assert peak >= 2 * copy  # the reference's two copies: what the bound below tells apart
        else:
            assert peak < bound
