"""`feature-leakage`'s reservoir grown in place (issue 13, branch cost29): while it fills, the
rows kept are not copied again at every batch. Compared with the code it replaced (kept here as
the reference) on random row streams, and pinned by a test that fails without it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck.checks.leakage import FeatureLeakage
from mlcheck.run import BatchObservation, RunState


class ConcatenatesAlways(FeatureLeakage):
    """`_add` as it was before cost29: the reservoir concatenated anew at every batch."""

    def _add(self, x, y, prints=None):
        from mlcheck.checks.hashing import fingerprints

        if prints is None:
            prints = fingerprints(x)
        if self._x is None:
            self._x = np.empty((0, x.shape[1]))
            self._y = np.empty(0, dtype=y.dtype)
            self._prints = np.empty(0, dtype=np.uint64)
        self._restore_prints()
        have = len(self._x)
        room = max(0, self.max_rows - have)
        if room:
            self._x = np.concatenate([self._x, x[:room]])
            self._y = np.concatenate([self._y, y[:room]])
            self._prints = np.concatenate([self._prints, prints[:room]])
        taken = min(room, len(x))
        rest = len(x) - taken
        if rest:
            ordinal = self._seen + taken + np.arange(1, rest + 1)
            if self._rng is None:
                self._rng = np.random.default_rng(0)
            slot = (self._rng.random(rest) * ordinal).astype(np.int64)
            hit = slot < self.max_rows
            self._x[slot[hit]] = x[taken:][hit]
            self._y[slot[hit]] = y[taken:][hit]
            self._prints[slot[hit]] = prints[taken:][hit]
        self._seen += len(x)


def _stream(rng):
    """Batches of a random tabular stream: sizes from 1 to a block of hundreds, a leaked column
    or none, classification or regression, a few NaN targets."""
    columns = int(rng.integers(2, 12))
    regression = bool(rng.random() < 0.3)
    for _ in range(int(rng.integers(1, 40))):
        n = int(rng.choice([1, 7, 32, 64, 300])) if rng.random() < 0.9 else int(rng.integers(500, 1500))
        x = rng.standard_normal((n, columns)).astype(rng.choice([np.float32, np.float64]))
        if regression:
            y = rng.standard_normal(n)
            y[rng.random(n) < 0.02] = np.nan
        else:
            y = rng.integers(0, int(rng.integers(2, 6)), n)
        if rng.random() < 0.3:
            x[:, 0] = y if regression else y.astype(x.dtype)
        yield x, y


def _feed(check, batches):
    run, findings = RunState(), []
    for step, (x, y) in enumerate(batches):
        findings += [
            f.evidence for f in check.on_batch(BatchObservation(step=step, split="train", inputs=x, targets=y), run)
        ]
    findings += [f.evidence for f in check.on_end(run)]
    return findings


@pytest.mark.parametrize("max_rows", [2048, 100])
def test_cost29_the_reservoir_keeps_the_old_rows_and_verdicts(max_rows):
    """Same rows, labels, fingerprints, draws and findings as concatenating, on 60 streams a size
    (a reservoir that fills, and one that never does)."""
    for seed in range(60):
        batches = list(_stream(np.random.default_rng(seed)))
        new, old = FeatureLeakage(max_rows=max_rows, min_rows=50), ConcatenatesAlways(max_rows=max_rows, min_rows=50)
        assert _feed(new, batches) == _feed(old, batches), seed
        if old._x is None:
            assert new._x is None
            continue
        for a, b in ((new._x, old._x), (new._y, old._y), (new._prints, old._prints)):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), seed
        assert new._seen == old._seen
        saved = new.state_dict()
        assert "_room" not in saved
        restored = FeatureLeakage(max_rows=max_rows, min_rows=50)
        restored.load_state_dict(saved)
        more = list(_stream(np.random.default_rng(1000 + seed)))[:5]
        if more and more[0][0].shape[1] == old._x.shape[1]:
            assert _feed(restored, more) == _feed(old, more), seed
            assert restored._x.tobytes() == old._x.tobytes()


def test_cost29_the_rows_kept_are_not_copied_again_at_each_batch():
    """Digits' training rows in batches of 32: once the reservoir has room for them, a batch
    writes its own rows only; the arrays holding the kept rows stay the same (were replaced by a
    concatenation of every row kept, ~1,400 x 64 float64, at each sampled batch)."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    check, run = FeatureLeakage(), RunState()
    held = set()
    for step, start in enumerate(range(0, 1792, 32)):
        batch = BatchObservation(step=step, split="train", inputs=x[start : start + 32], targets=y[start : start + 32])
        list(check.on_batch(batch, run))
        held.add(id(check._x.base if check._x.base is not None else check._x))
    # twice the rows kept at each reallocation, 64 to 2,048 (max_rows): 6 arrays, not 56
    assert len(held) <= 6
