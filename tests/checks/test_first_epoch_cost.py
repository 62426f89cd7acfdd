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


def test_unshuffled_end_judges_again_only_when_batches_came_since(digits):
    x, y = digits
    batches = [np.arange(i * 32, (i + 1) * 32) for i in range(5)]  # load_digits is shuffled
    # judged at the third batch; nothing since: the end does not simulate again
    check = CountedUnshuffled()
    monitor = Monitor([check], warn=False, default_sinks=False)
    _feed(monitor, x, y, batches[:3])
    assert check.judgements == 1
    monitor.close()
    assert check.judgements == 1 and monitor.findings == []
    # a fourth training batch (not due: 4 is judged, 5 is not) or new validation labels: judged at the end
    for extra in ("train", "val"):
        check = CountedUnshuffled()
        monitor = Monitor([check], warn=False, default_sinks=False)
        _feed(monitor, x, y, batches[:3])
        _feed(monitor, x, y, batches[4:5], split=extra, start=3)
        assert check.judgements == (2 if extra == "train" else 1)  # 4 batches: a power of two
        monitor.close()
        assert check.judgements == (2 if extra == "train" else 2), extra


def test_unshuffled_verdict_at_the_end_is_unchanged_when_not_judged_again(digits):
    x, y = digits
    order = np.argsort(y, kind="stable")
    batches = [order[i * 64 : (i + 1) * 64] for i in range(4)]  # sorted: one class a batch
    check = CountedUnshuffled()
    monitor = Monitor([check], warn=False, default_sinks=False)
    _feed(monitor, x, y, batches)  # judged at 3 and 4 batches
    monitor.close()
    assert check.judgements == 2
    assert [(f.check, f.step) for f in monitor.findings] == [("unshuffled-data", 3)]


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
