"""What holds `train-val-gap` back between the labelled minimum and its WARNING, on every hit (issue 12).

    .venv/bin/python benchmarks/reallogs/late_causes.py              # every split, dev .. held-out-11
    .venv/bin/python benchmarks/reallogs/late_causes.py --max-lag 2  # list only hits later than +2
    .venv/bin/python benchmarks/reallogs/late_causes.py --epochs     # and one line per epoch

Each labelled overfitting run's copy in runs/ goes through `mlcheck.analyze.run` with
`train-val-gap` alone (what the scorer does: it gives the scorer's hits and lags). The check's
`_judge` is wrapped: at every epoch it is called, the check's own tests are asked again on its own
`RunState` in `_judge`'s order, and the first step that says no is named (`judged_blocker`):

- `waits: N validations` (a run configured for 8+ epochs that has fewer: the stretch test waits for
  its noise, the shape test is not asked), `waits: few since lowest` (the shape test's `patience`
  rises after the lowest, or the stretch test's lowest stretch not yet followed by a full recent
  one: the epochs any stretch test needs after the minimum);
- `short: a fall` / `short: under 10%` / `short: within the falls' noise`: the shape test's steps;
- `bar: noise` / `bar: 5% floor` / `bar: 2% of descent`: the stretch test's rise is under its bar,
  named by the term that set it; `UP guard`; `no trend`. Main asks 3-epoch stretches, then in runs of
  15 validations or more 5-epoch ones at z 3.21: the step the further of the two got to is named;
- `training-fall guard`, `metric hold (INFO)`, `standard-error guard (INFO)`, `early-stop guard
  (INFO)`, `raised-rate hold`: a test passed and its verdict was held or dropped.

Each hit is put in one class, the first that applies: `before the labelled minimum` (lag < 0);
`at target` (lag 0 to +2); `label question`
(the WARNING names a best epoch more than `patience` epochs from the labelled minimum: the minimum
the label names is not where a stretch-based detector sees the turn); `INFO first` (an accuracy hold
or a guard told it as INFO before the WARNING); `epochs the test needs` (the prefix before the hit
was held by `waits: ...`: no test could speak earlier; `8 validations` where the stretch test
waited for its noise, else `after the lowest`); else the blocker at the prefix before
the hit (`bar: noise`, `bar: 5% floor`, `UP guard`, `no trend`, ...). Printed: one line per hit with
its lag, the test that fired and the blockers it met, then the classes with their lags.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import statistics
import sys
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from statistics import NormalDist

import numpy as np

import mlcheck
from mlcheck.checks import generalization
from mlcheck.checks.curve import epoch_train_levels, mann_kendall_z, noise, rolling_mean, trend_drop
from mlcheck.checks.generalization import _LONG_STRETCH, TrainValGap

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "held-out", *(f"held-out-{k}" for k in range(2, 12)))

#: how far each blocker lets a prefix get (the further of the two stretch tests is named)
_DEPTH = {
    "waits: few since lowest": 0,
    "short: a fall": 1,
    "short: under 10%": 2,
    "short: within the falls' noise": 3,
    "bar: noise": 2,
    "bar: 5% floor": 2,
    "bar: 2% of descent": 2,
    "UP guard": 3,
    "no trend": 4,
    "passes": 5,
}


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


def stretch_blocker(val: np.ndarray, check: TrainValGap, p: int | None = None, z: float | None = None) -> str:
    """The first step of `TrainValGap._stretch_rise` with stretches of `p` epochs (default
    `patience`) at `z` noises (default the check's `z`) that says no on this validation curve."""
    p = max(1, check.patience) if p is None else p
    z = check.z if z is None else z
    if len(val) < 2 * p + 2:
        return "not 8 epochs yet"  # (for the 3-epoch stretches; `_judge` never asks them on fewer)
    # the stretch ending at the lowest epoch not yet followed by a full recent stretch: the rise is
    # measured from an older, higher stretch (the epochs a stretch test needs after the minimum)
    lowest_comparable = len(val) - 1 - int(np.argmin(val)) >= p
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
        "bar: noise": z * sigma * math.sqrt(2.0 / p),
        "bar: 5% floor": check.min_rise * abs(best),
        "bar: 2% of descent": check.min_rise_range * (float(val[0]) - best),
    }
    if recent - best <= max(bars.values()):
        return max(bars, key=bars.get) if lowest_comparable else "waits: few since lowest"
    if float(np.min(val[-p:])) <= best + sigma * math.sqrt(2.0 / p):
        return "UP guard"
    climb, se = trend_drop(np.arange(i, len(val), dtype=np.float64), -val[i:])
    if not climb > check.trend_z * se and not mann_kendall_z(val[i:]) > check.trend_z:
        return "no trend"
    return "passes"


def short_blocker(val: np.ndarray, check: TrainValGap, falls: int) -> str:
    """The first step of `TrainValGap._short_rise` that says no on this validation curve."""
    p = max(1, check.patience)
    after = val[int(np.argmin(val)) :]
    if len(after) < p + 1:
        return "waits: few since lowest"
    down = -np.diff(after)
    if int(np.sum(down >= 0)) > falls:
        return "short: a fall"
    if not float(np.mean(val[-p:])) - float(np.min(val)) > check.short_min_rise * abs(float(np.min(val))):
        return "short: under 10%"
    return "short: within the falls' noise"


def _long_z(check: TrainValGap) -> float:
    return NormalDist().inv_cdf(1.0 - NormalDist().cdf(-check.z) / 2.0)


def standard_blocker(check: TrainValGap, run, val: np.ndarray, final: bool) -> str:  # noqa: ANN001
    """Why `_judge`'s standard test (stretch, shape or waiting) said no at this prefix."""
    p = max(1, check.patience)
    if len(val) >= 2 * p + 2:
        said = stretch_blocker(val, check)
        if len(val) >= 3 * _LONG_STRETCH and _LONG_STRETCH > p:
            longer = stretch_blocker(val, check, _LONG_STRETCH, _long_z(check))
            said = max((said, longer), key=lambda b: _DEPTH.get(b, 0))
        return said
    if final or not check._noise_measurable_later(run):
        known = final or run.info.max_epochs is not None
        return short_blocker(val, check, check.short_max_falls if known else 0)
    return f"waits: {2 * p + 2} validations"


def judged_blocker(check: TrainValGap, run, final: bool) -> tuple[str, str, str]:  # noqa: ANN001
    """(the blocker of this prefix, the early test's step, the test that would speak) on the check's
    own `RunState`, in `_judge`'s order."""
    b = run.val_loss.buckets(include_open=True)
    epochs, val = b["x1"], b["mean"]
    p = max(1, check.patience)
    standard, which = None, "-"
    if len(val) >= 2 * p + 2:
        standard = check._stretch_rise(epochs, val, p, check.z)
        which = "stretch3"
        if standard is None and len(val) >= 3 * _LONG_STRETCH and _LONG_STRETCH > p:
            standard, which = check._stretch_rise(epochs, val, _LONG_STRETCH, _long_z(check)), "stretch5"
    elif final or not check._noise_measurable_later(run):
        known = final or run.info.max_epochs is not None
        standard, which = check._short_rise(val, check.short_max_falls if known else 0), "shape"
    if standard is None:
        standard, which = check._halved_rise(run, epochs, val), "halved"
    at_best = check._metric_at_best(run)
    early = check._early_rise(val) if not at_best else None
    early_said = early_blocker(val, check, at_best)
    if early is None and standard is None:
        return standard_blocker(check, run, val, final), early_said, "-"
    train = epoch_train_levels(run)
    verdicts = [
        (v, name)
        for v, name in (
            (check._verdict(run, epochs, train, early, True), "early"),
            (check._verdict(run, epochs, train, standard, False), which),
        )
        if v
    ]
    if not verdicts:
        return "training-fall guard", early_said, "-"
    verdicts.sort(key=lambda v: v[0][-1] is not None)
    ((_, best, recent, _), best_epoch, _, _, _, held), name = verdicts[0]
    if generalization._raised_rate(run, best_epoch) is not None and check._metric_below_first(run, best_epoch):
        return "raised-rate hold", early_said, name
    if isinstance(held, generalization._Unresolved):
        return "standard-error guard (INFO)", early_said, name
    if held is not None:
        return "metric hold (INFO)", early_said, name
    if check._early_stop_guard(run, b, best, recent) is not None:
        return "early-stop guard (INFO)", early_said, name
    return "warned", early_said, name


def replay(run_id: str) -> dict:
    """One run through the check: its first WARNING and INFO epochs, the best epoch the WARNING
    names, and (epoch, blocker, early step, test) at every prefix judged."""
    seen: list[tuple[int, str, str, str]] = []
    judge = TrainValGap._judge

    def recording(self: TrainValGap, run, final: bool):  # noqa: ANN001 (RunState)
        epochs = run.val_loss.buckets(include_open=True)["x1"]
        if len(epochs):
            seen.append((int(epochs[-1]), *judged_blocker(self, run, final)))
        return judge(self, run, final)

    TrainValGap._judge = recording
    try:
        result = mlcheck.analyze.run(str(HERE / "runs" / f"{run_id}.csv"), select=["train-val-gap"])
    finally:
        TrainValGap._judge = judge
    findings = [f for r in result.runs for f in r.findings]
    warned = [f for f in findings if f.severity >= mlcheck.Severity.WARNING]
    first = min(warned, key=lambda f: f.epoch) if warned else None
    infos = [f.epoch for f in findings if f.severity < mlcheck.Severity.WARNING and f.epoch is not None]
    return {
        "fired": first.epoch if first is not None else None,
        "best_epoch": (first.evidence or {}).get("best_epoch") if first is not None else None,
        "info": min(infos) if infos else None,
        "seen": seen,
    }


def classify(onset: int, fired: int, best_epoch: int | None, info: int | None, before: list[str], p: int) -> str:
    """The class of one hit (module docstring): what held it back between the minimum and the hit."""
    if fired < onset:
        return "before the labelled minimum"
    if fired - onset <= 2:
        return "at target (0 to +2)"
    if best_epoch is not None and abs(int(best_epoch) - onset) > p:
        return "label question"
    if info is not None and info < fired:
        return "INFO first (accuracy hold or guard)"
    if not before or before[-1].startswith("waits"):
        # no test could speak earlier: the stretch test's 8 validations, or the epochs a stretch (or
        # the shape test's `patience` rises) needs after the lowest
        counted = any(b.startswith("waits: ") and b.endswith("validations") for b in before)
        return "epochs the test needs: " + ("8 validations" if counted else "after the lowest")
    return before[-1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-lag", type=int, default=-(10**9), help="list only hits later than this")
    p.add_argument("--epochs", action="store_true", help="print the blockers epoch by epoch")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    check = TrainValGap()
    with open(HERE / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "overfitting" and r["split"] in SPLITS]
    lags: dict[str, list[int]] = defaultdict(list)
    at_target: Counter[str] = Counter()
    early_by_class: dict[str, Counter[str]] = defaultdict(Counter)
    blocker_epochs: Counter[str] = Counter()
    for row in rows:
        got = replay(row["id"])
        onset, fired = int(row["onset"]), got["fired"]
        if fired is None:
            continue
        window = [s for s in got["seen"] if onset < s[0] < fired]
        before = [s[1] for s in window]
        blocker_epochs.update(before)
        cls = classify(onset, fired, got["best_epoch"], got["info"], before, max(1, check.patience))
        for epoch, _, early, _ in window:
            if epoch - onset == 2:
                at_target[early] += 1
                early_by_class[cls][early] += 1
        fired_by = next((s[3] for s in got["seen"] if s[0] == fired), "?")
        lags[cls].append(fired - onset)
        if fired - onset <= args.max_lag:
            continue
        print(
            f"{row['split']:<11} {row['id']:<64} {row['epochs']:>4} ep, min {onset:>4}, +{fired - onset:<4} "
            f"by {fired_by:<8} best {got['best_epoch']}  [{cls}]"
        )
        if args.epochs:
            for epoch, blocker, early, _ in window:
                print(f"    +{epoch - onset}: {blocker}; early {early}")
    total = sum(len(v) for v in lags.values())
    print(f"\n{total} hits by class: class | hits | median lag | lags | the early test's step at +2")
    for cls, v in sorted(lags.items(), key=lambda kv: -len(kv[1])):
        spread = ", ".join(f"{lag:+d} x{n}" for lag, n in sorted(Counter(v).items()))
        print(f"  {cls} | {len(v)} | {statistics.median(v):+g} | {spread} | {dict(early_by_class[cls].most_common())}")
    every = [lag for v in lags.values() for lag in v]
    if every:
        print(f"all: median +{statistics.median(every):g}, {sum(lag <= 2 for lag in every)} at <= +2")
    print(f"blockers, epoch by epoch between the minimum and the hit: {dict(blocker_epochs.most_common())}")
    print(f"the early test's step at +2: {dict(at_target.most_common())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
