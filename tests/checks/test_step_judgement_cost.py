"""The step checks' judgements: the same verdicts from cheaper arithmetic (issue 13, per-step
cost). Each judgement of the step-level curve took several `np.median` calls (~15-50 us each)
and two copies of the same buckets; `curve.median` and the shared copy give the same values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcheck import Monitor
from mlcheck.checks.curve import median, noise
from mlcheck.run import RunInfo
from mlcheck.series import Series


@pytest.mark.parametrize("seed", range(4))
def test_median_equals_numpy_median(seed):
    rng = np.random.default_rng(seed)
    for trial in range(3000):
        n = int(rng.integers(0, 40))
        values = rng.standard_normal(n) * 10.0 ** int(rng.integers(-5, 300))
        if n and trial % 4 == 1:
            values[rng.integers(0, n)] = np.nan
        if n and trial % 4 == 2:
            values[rng.integers(0, n)] = np.inf
            values[rng.integers(0, n)] = -np.inf
        if trial % 4 == 3:
            values = np.round(values) * 0 + rng.integers(0, 3, n)  # ties
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning) if n == 0 else _nothing():
            expected = float(np.median(values))
        got = median(values)
        assert got == expected or (math.isnan(got) and math.isnan(expected)), (values, got, expected)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_buckets_without_an_open_bucket_are_one_copy():
    s = Series(capacity=8)
    for step in range(12):  # 12 values: buckets merged once, width 2, no open bucket
        s.add(step, 1.0 / (step + 1))
    assert s._n == 0
    assert s.buckets(include_open=True) is s.buckets()  # the checks read both at one judgement
    s.add(12, 0.05)  # an open bucket: its own arrays, one value longer
    assert len(s.buckets(include_open=True)["mean"]) == len(s.buckets()["mean"]) + 1


def test_step_judgements_of_a_healthy_run_take_no_numpy_median(monkeypatch):
    """A 450-step healthy run through the default checks: every step judgement (and the final
    one) without `np.median`; a regression to it would cost ~0.1-0.3 ms a judgement."""
    calls = []
    real = np.median
    monkeypatch.setattr(np, "median", lambda *a, **k: calls.append(1) or real(*a, **k))
    monitor = Monitor(info=RunInfo(task="classification", num_classes=10, total_steps=450), default_sinks=False)
    rng = np.random.default_rng(0)
    for step in range(450):
        loss = 2.3 * math.exp(-step / 150) + 0.05 + 0.05 * float(rng.random())
        monitor.log_step(step, loss=loss, lr=1e-3, update_ratio=1e-3 if step % 25 == 0 else None)
    assert monitor.findings == []
    assert calls == []
    assert 0.0 < noise(monitor.run.train_loss.buckets()["mean"]) < 0.05
