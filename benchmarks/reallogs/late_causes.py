"""What holds `train-val-gap` back, epoch by epoch, on the overfitting runs it calls late (issue 12).

    .venv/bin/python benchmarks/reallogs/late_causes.py             # every split, dev .. held-out-9
    .venv/bin/python benchmarks/reallogs/late_causes.py --max-lag 2 # hits later than +2 (default)

Each labelled overfitting run's copy in runs/ goes through `mlcheck.analyze.run` with
`train-val-gap` alone (what the scorer does, and it gives the scorer's hits and lags). The check's
`_judge` is wrapped to keep, at every epoch, the validation curve it saw and whether an accuracy-like
metric was at its best (which turns the early test off); for the epochs between the labelled minimum
and the first WARNING, the early and stretch tests' steps are replayed with the check's constants and
the first step that says no is named:

- early test (`_early_rise`): `metric at best`, `few since min` (under `early_epochs` epochs since the
  lowest), `fit noise undefined` (under 6 epochs from `patience` before the lowest), `GL under 5%`,
  `under z x fit noise`, `passes`;
- stretch test (`_noisy_rise`): `not 8 epochs yet`, `bar: noise` / `bar: min_rise` / `bar: range`
  (the term that set the bar the rise is under), `UP guard` (a recent epoch within the noise of the
  best), `no trend`, `passes` (a guard or the accuracy's hold kept it at INFO or silent).

Printed: each late hit with its lag and one line per epoch; then the counts of the early test's
blocker at +2 (the lag target) and of the stretch test's at the epoch before the hit.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

import mlcheck
from mlcheck.checks import generalization
from mlcheck.checks.curve import mann_kendall_z, noise, rolling_mean, trend_drop
from mlcheck.checks.generalization import TrainValGap

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "held-out", *(f"held-out-{k}" for k in range(2, 10)))


def early_blocker(val: np.ndarray, check: TrainValGap, metric_at_best: bool = False) -> str:
    """The first step of `TrainValGap._early_rise` that says no on this validation curve."""
    if metric_at_best:
        return "metric at best"
    k = max(1, check.early_epochs)
    m = int(np.argmin(val))
    if len(val) - 1 - m < k:
        return "few since min"
    if not bool(np.all(np.isfinite(val))) or not bool(np.all(val > 0)):
        return "no log"
    sigma = generalization._fit_noise(np.log(val)[max(0, m - max(1, check.patience)) :])
    if not math.isfinite(sigma):
        return "fit noise undefined"
    best = float(np.median(val[max(0, m - 1) : m + 2]))
    low = float(np.min(val[-k:]))
    if not low > best * (1.0 + check.min_rise):
        return "GL under 5%"
    if not math.log(low / best) > check.z * sigma:
        return "under z x fit noise"
    return "passes"


def stretch_blocker(val: np.ndarray, check: TrainValGap) -> str:
    """The first step of `TrainValGap._noisy_rise` that says no on this validation curve."""
    p = max(1, check.patience)
    if len(val) < 2 * p + 2:
        return "not 8 epochs yet"
    sigma = noise(val)
    if not math.isfinite(sigma):
        return "no noise"
    means = rolling_mean(val, p)
    earlier = means[: len(means) - p]
    i = int(np.argmin(earlier))
    if len(val) - i >= 4:
        sigma = max(sigma, noise(val[i:]))
    best, recent = float(earlier[i]), float(means[-1])
    bars = {
        "noise": check.z * sigma * math.sqrt(2.0 / p),
        "min_rise": check.min_rise * abs(best),
        "range": check.min_rise_range * (float(val[0]) - best),
    }
    if recent - best <= max(bars.values()):
        return "bar: " + max(bars, key=bars.get)
    if float(np.min(val[-p:])) <= best + sigma * math.sqrt(2.0 / p):
        return "UP guard"
    climb, se = trend_drop(np.arange(i, len(val), dtype=np.float64), -val[i:])
    if not climb > check.trend_z * se and not mann_kendall_z(val[i:]) > check.trend_z:
        return "no trend"
    return "passes"


def replay(run_id: str) -> tuple[int | None, dict[int, tuple[np.ndarray, bool]]]:
    """(the first WARNING's epoch, {epoch: (validation curve, metric at best)}) of one run."""
    seen: dict[int, tuple[np.ndarray, bool]] = {}
    judge = TrainValGap._judge

    def recording(self: TrainValGap, run, final: bool):  # noqa: ANN001 (RunState)
        val = np.asarray(run.val_loss.buckets(include_open=True)["mean"], dtype=np.float64)
        seen[len(val)] = (val.copy(), self._metric_at_best(run))
        return judge(self, run, final)

    TrainValGap._judge = recording
    try:
        result = mlcheck.analyze.run(str(HERE / "runs" / f"{run_id}.csv"), select=["train-val-gap"])
    finally:
        TrainValGap._judge = judge
    warned = [f.epoch for r in result.runs for f in r.findings if f.severity >= mlcheck.Severity.WARNING]
    return (min(warned) if warned else None), seen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-lag", type=int, default=2, help="list hits later than this (default 2)")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    check = TrainValGap()
    with open(HERE / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "overfitting" and r["split"] in SPLITS]
    at_target, before_hit = Counter(), Counter()
    for row in rows:
        fired, seen = replay(row["id"])
        onset = int(row["onset"])
        if fired is None or fired - onset <= args.max_lag:
            continue
        print(f"{row['split']:<11} {row['id']}  {row['epochs']} epochs, minimum at {onset}, hit at +{fired - onset}")
        for epoch in range(onset + 1, fired):
            if epoch not in seen:  # (epoch numbering other than 1..n: the run's own)
                continue
            val, at_best = seen[epoch]
            early, stretch = early_blocker(val, check, at_best), stretch_blocker(val, check)
            print(f"    +{epoch - onset}: early {early}; stretch {stretch}")
            if epoch - onset == args.max_lag:
                at_target[early] += 1
            before_hit_now = stretch
        if fired - 1 > onset and fired - 1 in seen:
            before_hit[before_hit_now] += 1
    print(f"\nearly test at +{args.max_lag}: {dict(at_target.most_common())}")
    print(f"stretch test at the epoch before the hit: {dict(before_hit.most_common())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
