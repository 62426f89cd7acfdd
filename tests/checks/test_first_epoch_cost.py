"""A run's fixed costs that no verdict needs (issue 13, short runs): work paid once a run, in
its first epoch or at its end, whose result is known already. Each test pins that the work is
skipped and that the verdict stays what it was."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import Monitor
from mlcheck.checks import base
from mlcheck.checks.base import default_checks
from mlcheck.checks.data import UnshuffledData
from mlcheck.checks.leakage import FeatureLeakage
from mlcheck.run import BatchObservation, RunState


class CountedUnshuffled(UnshuffledData):
    """unshuffled-data, counting its judgements (each one simulates 400 random batches)."""

    def reset(self) -> None:
        super().reset()
        self.judgements = 0

    def _against_own_mix(self, history):
        self.judgements += 1
        return super()._against_own_mix(history)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


def _feed(monitor, x, y, rows, split="train", start=0):
    for i, r in enumerate(rows):
        monitor.log_batch(x[r], y[r], split=split, step=start + i, epoch=0, index=start + i)


def test_unshuffled_end_tests_the_training_mix_again_only_when_training_batches_came_since(digits):
    x, y = digits
    batches = [np.arange(i * 32, (i + 1) * 32) for i in range(5)]  # load_digits is shuffled
    # judged at the third batch; nothing since, or validation labels alone (as in every run
    # that validates: its batches come after the first training judgement): the end does not
    # simulate the training batches' mix again
    for extra, due, at_end in ((None, 1, 1), ("val", 1, 1), ("train", 2, 2)):
        check = CountedUnshuffled()
        monitor = Monitor([check], warn=False, default_sinks=False)
        _feed(monitor, x, y, batches[:3])
        if extra is not None:
            _feed(monitor, x, y, batches[3:4], split=extra, start=3)  # 4 training batches: judged
        assert check.judgements == due, extra
        monitor.close()
        assert check.judgements == at_end and monitor.findings == [], extra
    # a fifth training batch is not due (5 is no power of two): the end judges it
    _feed(monitor := Monitor([check := CountedUnshuffled()], warn=False, default_sinks=False), x, y, batches)
    assert check.judgements == 2
    monitor.close()
    assert check.judgements == 3


def _sorted_findings(digits, check):
    x, y = digits
    order = np.argsort(y, kind="stable")
    monitor = Monitor([check], warn=False, default_sinks=False)
    _feed(monitor, x, y, [order[i * 64 : (i + 1) * 64] for i in range(4)])  # one class a batch
    # validation labels after the last judgement, as a validating run brings them
    _feed(monitor, x, y, [np.arange(1500, 1532)], split="val", start=4)
    monitor.close()
    return monitor.findings


def test_unshuffled_verdicts_are_those_of_a_check_that_judges_every_time(digits):
    class EveryTime(UnshuffledData):
        def _judge(self, val=None):
            self._mix_clear_at = -1  # never remembered
            return super()._judge(val)

    found = _sorted_findings(digits, CountedUnshuffled())
    assert [(f.check, f.step) for f in found] == [("unshuffled-data", 3)]
    again = _sorted_findings(digits, EveryTime())
    assert [(f.message, f.evidence, f.step) for f in found] == [(f.message, f.evidence, f.step) for f in again]


def test_default_checks_read_no_signature_after_the_first_run(monkeypatch):
    """Every run builds the default checks (~30): each class's constructor signature is read
    once a process (each `inspect.signature` costs tens of microseconds), not once a run."""
    default_checks()
    calls = []
    real = inspect.signature

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(base.inspect, "signature", counted)
    checks = default_checks()
    assert len(checks) > 20 and calls == []
    # arguments given are still checked, naming the argument
    with pytest.raises(TypeError, match="min_batches must be a number"):
        UnshuffledData(min_batches="3")
    with pytest.raises(ValueError, match="z must be >= 0"):
        UnshuffledData(z=-1.0)


def test_checks_built_with_their_defaults_bind_no_arguments(monkeypatch):
    """A check built with no argument has none to check: its constructor does not bind the
    (empty) arguments to its signature, ~0.1 ms a check with a dozen parameters, every run."""
    default_checks()
    binds = []  # the arguments bound, past `self`
    real = inspect.Signature.bind

    def counted(self, *args, **kwargs):
        binds.append((args[1:], kwargs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(inspect.Signature, "bind", counted)
    checks = default_checks()
    # the layer checks hand their `patience` on to their base class's constructor: bound there
    assert len(checks) > 20 and [b for b in binds if b == ((), {})] == []
    binds.clear()
    assert UnshuffledData(min_batches=5).min_batches == 5 and binds == [((), {"min_batches": 5})]  # checked
    with pytest.raises(TypeError, match="min_batches must be a number"):
        UnshuffledData(min_batches="3")
    with pytest.raises(TypeError):  # a wrong call: Python's own error, as before
        UnshuffledData(1, 2, 3, 4, 5, 6, 7, 8, 9)


def test_a_run_builds_and_resets_its_checks_without_seeding_a_generator(monkeypatch):
    """Building and resetting the default checks (each run does both) seeds no numpy generator:
    `feature-leakage` seeds its reservoir's when a row first competes for a slot."""
    calls = []
    real = np.random.default_rng

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(np.random, "default_rng", counted)
    monitor = Monitor(warn=False, default_sinks=False)
    for check in monitor.checks:
        check.reset()
    assert calls == []
    leak = next(c for c in monitor.checks if isinstance(c, FeatureLeakage))
    assert "_rng" in leak.state_dict()  # still per-run state, saved as it is (None until seeded)


def test_feature_leakage_reservoir_seeded_late_keeps_the_same_rows_and_verdict(digits):
    """The reservoir seeded at its first competing row draws what a generator seeded at reset
    draws (same seed, first draw at the same row): the same rows kept, the same scores, and a
    checkpoint taken before and after the seeding resumes to the same reservoir."""

    class SeededAtReset(FeatureLeakage):
        def reset(self):
            super().reset()
            self._rng = np.random.default_rng(0)

    x, y = digits
    leaked = np.column_stack([x, y.astype(np.float32)])  # a copied label: an ERROR finding
    results = []
    for cls in (FeatureLeakage, SeededAtReset):
        monitor = Monitor([check := cls(max_rows=400)], warn=False, default_sinks=False)
        for i in range(0, 1792, 64):
            monitor.log_batch(leaked[i : i + 64], y[i : i + 64], split="train", step=i // 64, epoch=0)
        monitor.close()
        results.append((check._x.copy(), check._y.copy(), check.scores()[0], monitor.findings))
    (x1, y1, s1, f1), (x2, y2, s2, f2) = results
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2) and np.array_equal(s1, s2)
    assert [(f.check, f.step, f.message, f.evidence) for f in f1] == [
        (f.check, f.step, f.message, f.evidence) for f in f2
    ]
    assert [f.check for f in f1] == ["feature-leakage"]
    # checkpoints: before any draw (no generator saved) and after (the generator's state)
    run = RunState()
    for rows in (300, 900):
        first = FeatureLeakage(max_rows=400)
        list(first.on_batch(BatchObservation(leaked[:rows], y[:rows], step=0, epoch=0), run))
        assert (first.state_dict()["_rng"] is None) == (rows <= 400)
        resumed = FeatureLeakage(max_rows=400)
        resumed.load_state_dict(first.state_dict())
        more = BatchObservation(leaked[rows : rows + 500], y[rows : rows + 500], step=1, epoch=0)
        for check in (first, resumed):
            list(check.on_batch(more, run))
        assert np.array_equal(first._x, resumed._x) and np.array_equal(first._y, resumed._y), rows


def _value_keys_by_argsort(x):
    """`_value_keys` as it was before cost20: an argsort of every column and a scatter of the
    ranks (the reference the binary search must match key for key)."""
    z = x.T.copy()
    m, n = z.shape
    order = np.argsort(z, axis=1)
    ordered = np.sort(z, axis=1)
    new = np.empty(ordered.shape, dtype=bool)
    new[:, 0] = True
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new[:, 1:])
    shifted = np.cumsum(new, axis=None).reshape(m, n) - 1
    start = shifted[:, 0].copy()
    width = np.diff(np.append(start, shifted[-1, -1] + 1))
    keys = np.empty_like(shifted)
    order += (np.arange(m) * n)[:, None]
    keys.ravel()[order.ravel()] = shifted.ravel()
    return keys, ordered[new], start, width


def test_cost20_feature_leakage_scores_sort_each_column_once_and_argsort_none(digits, monkeypatch):
    """`feature-leakage`'s judgement sorted every column twice (to count its distinct values,
    then again in `_value_keys`) and argsorted it once more to scatter the ranks: on digits'
    17-level pixels the argsort alone was 4.4 M of the 7.1 M instructions of `_value_keys`. The
    keys now come from one sort and a binary search per column; they are the argsort's key for
    key (ties, -0.0 beside 0.0, one row, one column), and so are the scores."""
    from mlcheck.checks import leakage

    rng = np.random.default_rng(0)
    x, y = digits
    arrays = [x[:512].astype(np.float64), x[:1].astype(np.float64), x[:5, :1].astype(np.float64)]
    for _ in range(60):
        a = rng.normal(size=(int(rng.integers(1, 300)), int(rng.integers(1, 12)))).round(int(rng.integers(0, 3)))
        a[rng.random(a.shape) < 0.1] = -0.0
        a[rng.random(a.shape) < 0.1] = 0.0
        arrays.append(a * rng.choice([1.0, -1.0, 1e30]))
    for a in arrays:
        want = _value_keys_by_argsort(a)
        for got in (leakage._value_keys(a), leakage._value_keys(a, np.sort(a.T, axis=1))):
            assert all(np.array_equal(g, w) and g.dtype == w.dtype for g, w in zip(got, want))

    leaked = np.column_stack([x, y]).astype(np.float64)  # a copied label: feature 64
    check = FeatureLeakage()
    check._x, check._y, check._task = leaked, y, "classification"
    sorts = []
    real_sort = np.sort

    def counted_sort(a, *args, **kwargs):
        sorts.append(np.shape(a))
        return real_sort(a, *args, **kwargs)

    def no_argsort(*args, **kwargs):
        raise AssertionError("np.argsort called in scores()")

    monkeypatch.setattr(np, "sort", counted_sort)
    monkeypatch.setattr(np, "argsort", no_argsort)
    scores, baseline = check.scores()
    monkeypatch.undo()
    assert sum(len(s) == 2 for s in sorts) == 1  # the columns sorted once: (features, rows)
    assert int(np.argmax(scores)) == 64 and scores[64] == 1.0 and baseline > 0
