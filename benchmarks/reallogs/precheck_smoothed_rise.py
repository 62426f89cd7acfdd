"""Pre-check of looser noise bars and rank trend tests for `train-val-gap`'s stretch test (issue 12,
held-out-8's misses with large smoothed rises; branch fa21).

    .venv/bin/python benchmarks/reallogs/score.py --held-out ... --held-out-8 --runs > /tmp/base.txt
    cd benchmarks/reallogs && ../../.venv/bin/python precheck_smoothed_rise.py /tmp/base.txt

`train-val-gap`'s `_noisy_rise` asks that the mean of the last p validations exceed the lowest mean
of p earlier ones by max(z x noise, min_rise x best, min_rise_range x the fall before it), that none
of the last p is as low as that best, and that a line fitted since the best climbs by trend_z standard
errors. Each candidate changes the bar or the trend test and is applied epoch by epoch to the copies
in runs/ with the verdict's training conditions (precheck_overfit.training_fell), through
precheck_overfit's report. "REF" is the test as main had it, so a candidate's healthy flags are read
against REF's (a healthy run REF flags is one main flags too, or one the check's later conditions
quiet; a candidate's flag not in REF's list would be a new false alarm). Mann-Kendall on overlapping
p-epoch means ("mk-means") is not sound at trend_z: the means are correlated and the test's variance
assumes independent values; it is listed to show what it would add."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np
import precheck_overfit as pre

from mlcheck.checks.curve import mann_kendall_z, noise, rolling_mean, trend_drop

P, Z, MIN_RISE, TREND_Z, MIN_RISE_RANGE = 3, 3.0, 0.05, 3.0, 0.02


def _line(v: np.ndarray, means: np.ndarray, i: int) -> bool:
    climb, se = trend_drop(np.arange(len(v))[i:], -v[i:])
    return bool(climb > TREND_Z * se)


TRENDS: dict[str, Callable[[np.ndarray, np.ndarray, int], bool]] = {
    "line": _line,
    "mk": lambda v, means, i: mann_kendall_z(v[i:]) > TREND_Z,
    "mk-means": lambda v, means, i: mann_kendall_z(means[i:]) > TREND_Z,
    "line-or-mk": lambda v, means, i: _line(v, means, i) or mann_kendall_z(v[i:]) > TREND_Z,
    "line-or-mk-means": lambda v, means, i: _line(v, means, i) or mann_kendall_z(means[i:]) > TREND_Z,
    "none": lambda v, means, i: True,
}


def stretch(bar_scale: float = 1.0, trend: str = "line") -> Callable:
    """The stretch test with its noise bar scaled by `bar_scale` (sqrt(2 / p): the standard deviation
    of a difference of two means of p epochs, where main's bar takes one epoch's) and its trend test
    one of TRENDS."""
    trend_test = TRENDS[trend]

    def rule(v: np.ndarray, t: np.ndarray, n: int) -> bool:
        if len(v) < 2 * P + 2:
            return False
        sigma = noise(v)
        means = rolling_mean(v, P)
        earlier = means[: len(means) - P]
        i = int(np.argmin(earlier))
        if len(v) - i >= 4:
            sigma = max(sigma, noise(v[i:]))
        best, recent = float(earlier[i]), float(means[-1])
        needed = max(bar_scale * Z * sigma, MIN_RISE * abs(best), MIN_RISE_RANGE * (float(v[0]) - best))
        if not recent - best > needed or float(np.min(v[-P:])) <= best:
            return False
        if not trend_test(v, means, i):
            return False
        return pre.training_fell(t, i + int(np.argmin(v[i : i + P])))

    return rule


ROOT2P = math.sqrt(2.0 / P)
CANDIDATES: dict[str, Callable] = {
    "REF stretch test as main has it": stretch(),
    "bar x sqrt(2/p)": stretch(ROOT2P),
    "trend by Mann-Kendall": stretch(1.0, "mk"),
    "trend by Mann-Kendall on p-means": stretch(1.0, "mk-means"),
    "bar x sqrt(2/p), Mann-Kendall": stretch(ROOT2P, "mk"),
    "bar x sqrt(2/p), Mann-Kendall on p-means": stretch(ROOT2P, "mk-means"),
    "KEPT bar x sqrt(2/p), line or Mann-Kendall": stretch(ROOT2P, "line-or-mk"),
    "bar x sqrt(2/p), line or Mann-Kendall on p-means": stretch(ROOT2P, "line-or-mk-means"),
    "bar x sqrt(2/p), no trend test": stretch(ROOT2P, "none"),
    "bar x 1/2, line trend": stretch(0.5),
}


if __name__ == "__main__":
    pre.CANDIDATES = CANDIDATES
    sys.exit(pre.main(sys.argv[1:]))
