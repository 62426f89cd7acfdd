"""What says no to `train-val-gap` on every prefix of the overfitting runs it misses (issue 12, over29).

    .venv/bin/python benchmarks/reallogs/score.py --held-out ... --held-out-10 --runs > /tmp/runs.txt
    .venv/bin/python benchmarks/reallogs/miss_replay.py /tmp/runs.txt

Each missed run's copy in runs/ goes through `mlcheck.analyze.run` with `train-val-gap` alone (what
the scorer does). The check's `_judge` is wrapped: at every epoch it is called, the real check's own
tests (`_noisy_rise` or `_short_rise`, `_halved_rise`, `_early_rise`) and `_verdict` are asked again
on the same `RunState`, and the first one that says no is named (`blocker`):

- `too short: ...`: under 2 x patience + 2 validations, the shape test's step that failed (`few
  since lowest`, `a fall` (more falls than allowed), `under 10%`, `rise within the falls' noise`);
- `bar: noise` / `bar: 5% floor` / `bar: 2% of descent`: the stretch test's rise is under its bar
  (named by the term that set it); `UP guard`; `no trend`;
- `training-fall guard`: a test passed, but the training loss did not fall by 1% since the best
  epoch, or is not below the run's first;
- `metric hold (INFO)` / `standard-error guard (INFO)` / `early-stop guard (INFO)` /
  `raised-rate hold`: a test passed and the verdict was held;
- `warned`: a WARNING was given (then demoted, e.g. the rise passed).

Beside the blocker of the last prefix (what says no at the run's end), each run gets two overlays:
`reader` (the curve the check saw differs from the run file's `val_loss` column: length, values)
and `label question` (the last `patience` epochs average under 10% above the lowest stretch of
`patience` epochs: README rule 4's 10% holds only against one low epoch). Printed: one line per
run (its split, length, labelled minimum, the blocker at the end, the furthest any prefix got),
then the counts by class.
"""

from __future__ import annotations

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
from mlcheck.checks.curve import epoch_train_levels, mann_kendall_z, noise, rolling_mean, trend_drop
from mlcheck.checks.generalization import TrainValGap

HERE = Path(__file__).resolve().parent

#: how far each blocker lets a prefix get, for "the furthest any prefix got"
_DEPTH = {
    "reader": 0,
    "too short: few since lowest": 1,
    "too short: a fall": 1,
    "too short: under 10%": 2,
    "too short: rise within the falls' noise": 3,
    "bar: noise": 2,
    "bar: 5% floor": 2,
    "bar: 2% of descent": 2,
    "UP guard": 3,
    "no trend": 4,
    "training-fall guard": 5,
    "raised-rate hold": 6,
    "standard-error guard (INFO)": 6,
    "early-stop guard (INFO)": 6,
    "metric hold (INFO)": 6,
    "warned": 7,
}


def short_blocker(val: np.ndarray, check: TrainValGap, falls: int) -> str:
    """The first step of `TrainValGap._short_rise` that says no on this validation curve."""
    p = max(1, check.patience)
    i = int(np.argmin(val))
    after = val[i:]
    if len(after) < p + 1:
        return "too short: few since lowest"
    down = -np.diff(after)
    down = down[down >= 0]
    if len(down) > falls:
        return "too short: a fall"
    best, recent = float(val[i]), float(np.mean(val[-p:]))
    if not recent - best > check.short_min_rise * abs(best):
        return "too short: under 10%"
    return "too short: rise within the falls' noise"


def stretch_blocker(val: np.ndarray, epochs: np.ndarray, check: TrainValGap) -> str:
    """The first step of `TrainValGap._noisy_rise` that says no on this validation curve."""
    p = max(1, check.patience)
    sigma = noise(val)
    means = rolling_mean(val, p)
    earlier = means[: len(means) - p]
    i = int(np.argmin(earlier))
    if len(val) - i >= 4:
        sigma = max(sigma, noise(val[i:]))
    best, recent = float(earlier[i]), float(means[-1])
    bars = {
        "bar: noise": check.z * sigma * math.sqrt(2.0 / p),
        "bar: 5% floor": check.min_rise * abs(best),
        "bar: 2% of descent": check.min_rise_range * (float(val[0]) - best),
    }
    if recent - best <= max(bars.values()):
        return max(bars, key=bars.get)
    if float(np.min(val[-p:])) <= best + sigma * math.sqrt(2.0 / p):
        return "UP guard"
    climb, se = trend_drop(epochs[i:], -val[i:])
    if not climb > check.trend_z * se and not mann_kendall_z(val[i:]) > check.trend_z:
        return "no trend"
    return "passes"


def judged_blocker(check: TrainValGap, run, final: bool) -> str:  # noqa: ANN001 (RunState)
    """What the real check says no with at this prefix (its own methods on its own `RunState`)."""
    b = run.val_loss.buckets(include_open=True)
    epochs, val = b["x1"], b["mean"]
    p = max(1, check.patience)
    long_enough = len(val) >= 2 * p + 2
    if long_enough:
        standard = check._noisy_rise(epochs, val)
    else:
        known = final or run.info.max_epochs is not None
        falls = check.short_max_falls if known else 0
        standard = check._short_rise(val, falls)
    if standard is None:
        standard = check._halved_rise(run, epochs, val)
    early = check._early_rise(val) if not check._metric_at_best(run) else None
    if early is None and standard is None:
        return stretch_blocker(val, epochs, check) if long_enough else short_blocker(val, check, falls)
    train = epoch_train_levels(run)
    verdicts = [
        v for v in (check._verdict(run, epochs, train, r, e) for r, e in ((early, True), (standard, False))) if v
    ]
    if not verdicts:
        return "training-fall guard"
    verdicts.sort(key=lambda v: v[-1] is not None)
    (_, best, recent, _), best_epoch, _, _, _, held = verdicts[0]
    if generalization._raised_rate(run, best_epoch) is not None and check._metric_below_first(run, best_epoch):
        return "raised-rate hold"
    if isinstance(held, generalization._Unresolved):
        return "standard-error guard (INFO)"
    if held is not None:
        return "metric hold (INFO)"
    if check._early_stop_guard(run, b, best, recent) is not None:
        return "early-stop guard (INFO)"
    return "warned"


def file_curve(run_id: str) -> np.ndarray:
    with open(HERE / "runs" / f"{run_id}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["val_loss"]) if r.get("val_loss") not in (None, "") else math.nan for r in rows])


def label_question(val: np.ndarray, p: int = 3) -> bool:
    """The last `p` epochs average under 10% above the lowest earlier stretch of `p` epochs."""
    if len(val) < 2 * p:
        return float(np.mean(val[-p:])) < 1.10 * float(np.min(val))
    means = rolling_mean(val, p)
    return float(means[-1]) < 1.10 * float(np.min(means[: len(means) - p]))


def replay(run_id: str) -> tuple[list[tuple[int, str]], np.ndarray]:
    """([(validations seen, blocker)] for every prefix the check judged, the last curve it saw)."""
    seen: list[tuple[int, str]] = []
    last: list[np.ndarray] = [np.array([])]
    judge = TrainValGap._judge

    def recording(self: TrainValGap, run, final: bool):  # noqa: ANN001 (RunState)
        val = np.asarray(run.val_loss.buckets(include_open=True)["mean"], dtype=np.float64)
        seen.append((len(val), judged_blocker(self, run, final)))
        last[0] = val.copy()
        return judge(self, run, final)

    TrainValGap._judge = recording
    try:
        mlcheck.analyze.run(str(HERE / "runs" / f"{run_id}.csv"), select=["train-val-gap"])
    finally:
        TrainValGap._judge = judge
    return seen, last[0]


def misses(runs_txt: str) -> list[tuple[str, str]]:
    """(split, run id) of each overfitting run without HIT in `score.py --runs` output."""
    found = []
    for line in Path(runs_txt).read_text().splitlines():
        parts = line.split()
        if len(parts) < 5 or not line.startswith("  ") or parts[1] != "overfitting" or parts[2] == "HIT":
            continue
        found.append((parts[0], parts[-1]))
    return found


def main(argv: list[str]) -> int:
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    with open(HERE / "manifest.csv", newline="") as fh:
        onset = {r["id"]: r["onset"] for r in csv.DictReader(fh)}
    at_end: Counter[str] = Counter()
    furthest: Counter[str] = Counter()
    overlays: Counter[str] = Counter()
    for split, run_id in misses(argv[0]):
        seen, val = replay(run_id)
        file_val = file_curve(run_id)
        reader = len(val) != len(file_val) or not np.allclose(val, file_val, equal_nan=True)
        end = "reader" if not seen else seen[-1][1]
        deepest = max((b for _, b in seen), key=_DEPTH.__getitem__, default="reader")
        question = bool(len(val)) and label_question(val)
        at_end[end] += 1
        furthest[deepest] += 1
        overlays["reader"] += reader
        overlays["label question"] += question
        flags = ("reader " if reader else "") + ("label-question" if question else "")
        print(
            f"{split:<11} {run_id:<68} {len(file_val):>4} min {onset.get(run_id, '?'):>4}  "
            f"{end:<28} {deepest:<28} {flags}"
        )
    print(f"\nat the end: {dict(at_end.most_common())}")
    print(f"furthest any prefix got: {dict(furthest.most_common())}")
    print(f"overlays: {dict(overlays)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
