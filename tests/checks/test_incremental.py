"""The cheap, incremental summaries give the values of the full recomputation they replace."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcheck.checks.curve import epoch_train_levels
from mlcheck.run import RunState
from mlcheck.series import Series


def _full_levels(run: RunState) -> dict[int, float]:
    """The former `epoch_train_levels`: every epoch recomputed from a mask over the buckets."""
    b = run.train_loss.buckets(include_open=True)
    out: dict[int, float] = {}
    previous = -math.inf
    for epoch in sorted(run.epoch_step):
        end = run.epoch_step[epoch]
        inside = (b["x1"] > previous) & (b["x1"] <= end)
        if inside.any():
            out[epoch] = float(np.average(b["mean"][inside], weights=b["n"][inside]))
        previous = end
    return out


@pytest.mark.parametrize("seed", range(6))
def test_epoch_train_levels_equal_the_full_recomputation_on_random_curves(seed):
    rng = np.random.default_rng(seed)
    run = RunState(capacity=16)  # small: buckets merge many times
    step = 0
    for epoch in range(int(rng.integers(5, 200))):
        n = int(rng.integers(1, 60))
        losses = np.exp(-np.arange(step, step + n) / 500) + 0.1 * rng.random(n)
        losses[rng.random(n) < 0.02] = np.nan  # non-finite values are counted, never averaged
        for k, value in enumerate(losses):
            run.train_loss.add(step + k, float(value))
        step += n
        if rng.random() < 0.9:  # some epochs end without a step recorded
            run.note_epoch_step(epoch, step - 1)
        levels = epoch_train_levels(run)
        expected = _full_levels(run)
        assert dict(levels) == expected  # same epochs, same values to the last bit
        if expected:
            assert max(levels) == max(expected) and levels[min(levels)] == expected[min(expected)]


def test_epoch_train_levels_when_steps_go_back():
    run = RunState(capacity=16)
    for x, v in [(0, 1.0), (1, 0.9), (2, 0.8), (1, 0.7), (3, 0.6), (4, 0.5)]:
        run.train_loss.add(x, v)
    run.note_epoch_step(0, 1)
    run.note_epoch_step(1, 4)
    assert dict(epoch_train_levels(run)) == _full_levels(run)


def _added_one_by_one(xs: np.ndarray, values: np.ndarray, width: int, capacity: int) -> Series:
    s = Series(capacity, width)
    for x, v in zip(xs.tolist(), values.tolist()):
        s.add(x, v)
    return s


@pytest.mark.parametrize("seed", range(6))
def test_series_extend_in_pieces_equals_adding_one_by_one(seed):
    """`extend` fed in pieces that end anywhere inside a bucket (epochs cut the step stream so in
    `mlcheck analyze`) keeps the open bucket exactly as `add` would."""
    rng = np.random.default_rng(seed)
    n = 5000
    xs = np.arange(n, dtype=np.float64)
    values = rng.standard_normal(n).cumsum()
    values[rng.random(n) < 0.01] = np.inf
    width = int(rng.integers(1, 9))
    reference = _added_one_by_one(xs, values, width, 32)
    s = Series(32, width)
    cuts = np.sort(rng.choice(np.arange(1, n), size=200, replace=False))
    for a, b in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [n]))):
        s.extend(xs[a:b], values[a:b])
    got, want = s.buckets(include_open=True), reference.buckets(include_open=True)
    assert s.width == reference.width and s.total == reference.total and s.nonfinite == reference.nonfinite
    for name in ("n", "x0", "x1", "min", "max", "last"):
        np.testing.assert_array_equal(got[name], want[name])
    # closed buckets filled whole are averaged by numpy (pairwise), the open one by Welford:
    # equal to rounding
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-12)
    np.testing.assert_allclose(got["m2"], want["m2"], rtol=1e-9, atol=1e-9)
