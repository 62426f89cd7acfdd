"""Classifies the overfitting runs `train-val-gap` misses by cause, from their curves.

    .venv/bin/python benchmarks/reallogs/score.py --held-out ... --held-out-9 --runs > /tmp/runs.txt
    .venv/bin/python benchmarks/reallogs/miss_causes.py /tmp/runs.txt

Reads the `--runs` lines of `score.py` (overfitting runs without HIT) and replays, on each run's
whole validation curve, the steps of `TrainValGap._noisy_rise` (the stretch test) with the
check's default constants, naming the first step that stops it:

- too short: under 2 x patience + 2 epochs, the stretch test does not apply (the shape tests do);
- reader problem: empty or non-finite validation losses in the run file;
- label question: the last `patience` epochs average less than 10% above the lowest stretch of
  `patience` epochs (README rule 4's 10%, applied to stretch means instead of the one lowest
  epoch): the labelled minimum is one low epoch of a noisy curve;
- rise under the noise bar: 10% or more above the lowest stretch, but not above
  max(z x noise x sqrt(2 / p), 5%, 2% of the descent);
- recent epoch back at best: one of the last `patience` epochs is as low as the best stretch;
- no trend since the lowest stretch: neither the fitted line nor Mann-Kendall reaches `trend_z`;
- other: the stretch test passes on the whole curve; a later guard (training loss, metric held,
  raised rate) keeps it from a WARNING.
"""

from __future__ import annotations

import csv
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from mlcheck.checks.curve import mann_kendall_z, noise, rolling_mean, trend_drop
from mlcheck.checks.generalization import TrainValGap

HERE = Path(__file__).resolve().parent


def val_curve(run_id: str) -> np.ndarray:
    with open(HERE / "runs" / f"{run_id}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["val_loss"]) if r.get("val_loss") not in (None, "") else math.nan for r in rows])


def cause(v: np.ndarray, check: TrainValGap) -> tuple[str, dict]:
    p = max(1, check.patience)
    n = len(v)
    if not bool(np.all(np.isfinite(v))):
        return "reader problem", {}
    if n < 2 * p + 2:
        return "too short", {}
    sigma = noise(v)
    means = rolling_mean(v, p)
    earlier = means[: n - p]
    i = int(np.argmin(earlier))
    if n - i >= 4:
        sigma = max(sigma, noise(v[i:]))
    best, recent = float(earlier[i]), float(means[-1])
    needed = max(
        check.z * sigma * math.sqrt(2.0 / p), check.min_rise * abs(best), check.min_rise_range * (float(v[0]) - best)
    )
    facts = {"rise": round((recent - best) / abs(best), 3), "needed": round(needed / abs(best), 3)}
    if recent < 1.10 * best:
        return "label question", facts
    if recent - best <= needed:
        return "rise under the noise bar", facts
    if float(np.min(v[-p:])) <= best:
        return "recent epoch back at best", facts
    climb, se = trend_drop(np.arange(i, n, dtype=float), -v[i:])
    facts["trend_z"] = round(climb / se, 2) if se > 0 else None
    facts["mk_z"] = round(mann_kendall_z(v[i:]), 2)
    if not climb > check.trend_z * se and not facts["mk_z"] > check.trend_z:
        return "no trend since the lowest stretch", facts
    return "other", facts


def main(argv: list[str]) -> int:
    check = TrainValGap()
    counts: Counter[str] = Counter()
    for line in Path(argv[0]).read_text().splitlines():
        parts = line.split()
        if len(parts) < 5 or not line.startswith("  ") or parts[1] != "overfitting" or parts[2] == "HIT":
            continue
        run_id = parts[-1]
        why, facts = cause(val_curve(run_id), check)
        counts[why] += 1
        print(f"{parts[0]:<11} {run_id:<70} {len(val_curve(run_id)):>4}  {why}  {facts}")
    print(dict(counts.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
