"""Pre-check of candidate overfitting rules on every labelled run's per-epoch curves (issue 12).

    .venv/bin/python benchmarks/reallogs/score.py --held-out --held-out-2 --held-out-3 --held-out-4 \
        --held-out-5 --held-out-6 --held-out-7 --runs > /tmp/base.txt
    .venv/bin/python benchmarks/reallogs/precheck_overfit.py /tmp/base.txt

Each candidate is applied epoch by epoch to the copies in runs/ (every split of manifest.csv, dev to
held-out-7; ambiguous runs left out), with the conditions `train-val-gap` puts on every verdict (the
training loss fell by 1% since the validation minimum and is below its first epoch's value). Printed
per split: overfitting runs it fires on (and its median lag), those mlcheck missed (from the scorer's
`--runs` lines given), those it would catch earlier than mlcheck, mlcheck with the rule added
(hits, median lag), and healthy runs it fires on (named). A rule is worth implementing only if it
fires on no healthy run of any split and adds hits or cuts lag. The curves are those of the copies:
the check itself (accuracy holds, early stopping, regression rows) can only make a rule quieter.
"""

from __future__ import annotations

import csv
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
P = 3  # train-val-gap's patience
SHORT = 2 * P + 2  # under this many validations the check judges by shape


def read(run_id: str) -> tuple[np.ndarray, np.ndarray]:
    with open(HERE / "runs" / f"{run_id}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return np.array([float(r["loss"]) for r in rows]), np.array([float(r["val_loss"]) for r in rows])


def training_fell(t: np.ndarray, m: int) -> bool:
    """train-val-gap's `_verdict` conditions: fell 1% since the best epoch, below the first value."""
    return bool(t[-1] < 0.99 * t[m] and t[-1] < t[0])


def short_shape(v: np.ndarray, t: np.ndarray, n: int) -> bool:
    """main's short-run rule (for reference): p rises in a row after the minimum, last p 10% up."""
    if n >= SHORT or len(v) < P + 1:
        return False
    m = int(np.argmin(v))
    after = v[m:]
    return (
        len(after) >= P + 1
        and bool(np.all(np.diff(after) > 0))
        and float(np.mean(v[-P:])) > 1.1 * v[m]
        and training_fell(t, m)
    )


def short_relaxed(margin_z: float, dips: int, longer: int = SHORT) -> Callable:
    """The short-run rule with `dips` epochs after the minimum allowed to fall: every one of the last p
    epochs above the minimum, their mean 10% above it and above it by `margin_z` x the epoch-to-epoch
    noise before the minimum (median |log difference| of the epochs before it, none when there are
    fewer than 2), and the last epoch not below the first of the last p (no falling tail). Applied to
    runs of fewer than `longer` epochs (SHORT: the check's short regime)."""

    def rule(v: np.ndarray, t: np.ndarray, n: int) -> bool:
        if n >= longer or len(v) < P + 1:
            return False
        m = int(np.argmin(v))
        after = v[m:]
        if len(after) < P + 1:
            return False
        if int(np.sum(np.diff(after) <= 0)) > dips:
            return False
        recent = v[-P:]
        best = float(v[m])
        if not float(np.min(recent)) > best or not float(np.mean(recent)) > 1.1 * best:
            return False
        if not recent[-1] >= recent[0]:
            return False
        if margin_z > 0 and m >= 2:
            noise = float(np.median(np.abs(np.diff(np.log(v[: m + 1])))))
            if not np.log(float(np.mean(recent)) / best) > margin_z * noise:
                return False
        return training_fell(t, m)

    return rule


def short_falls_noise(falls: int, z: float) -> Callable:
    """The short-run rule as implemented (fold19): at most `falls` epochs after the minimum fell; the
    last p average 10% above the minimum, and each of them lies above it by more than `z` x the noise
    the falls show (a fall between two epochs is the difference of two noisy values: noise = the
    largest fall / sqrt(2)). Runs of fewer than SHORT epochs."""

    def rule(v: np.ndarray, t: np.ndarray, n: int) -> bool:
        if n >= SHORT or len(v) < P + 1:
            return False
        m = int(np.argmin(v))
        after = v[m:]
        if len(after) < P + 1:
            return False
        down = -np.diff(after)
        down = down[down >= 0]
        if len(down) > falls:
            return False
        recent = v[-P:]
        best = float(v[m])
        if not float(np.mean(recent)) > 1.1 * best:
            return False
        if len(down) and not float(np.min(recent)) - best > z * float(np.max(down)) / np.sqrt(2):
            return False
        return training_fell(t, m)

    return rule


def never_below_first(rise: float, share: float, all_above: bool = True) -> Callable:
    """(b): the validation loss never better than its first validation (lowest at epoch 1), p epochs
    or more since, the mean of the last p `rise` above it (and each of them above it), while the
    training loss fell to `share` of its first value or below."""

    def rule(v: np.ndarray, t: np.ndarray, n: int) -> bool:
        if len(v) < P + 1 or int(np.argmin(v)) != 0:
            return False
        recent = v[-P:]
        if all_above and not float(np.min(recent)) > v[0]:
            return False
        if not float(np.mean(recent)) > (1 + rise) * v[0]:
            return False
        return bool(t[-1] <= share * t[0]) and training_fell(t, 0)

    return rule


def rises_while_halved(dips: int, share: float, first_only: bool, ref_next: bool = False) -> Callable:
    """The short-run shape at any length: the validation loss rose at each of p or more epochs after its
    lowest (`dips` of them may fall), the last p all above it and 10% above on average, while the
    training loss fell to `share` of its value at the minimum (`ref_next`: at the epoch after it) or
    below; `first_only`: only where the lowest validation is the first one ((b), never better than
    its first)."""

    def rule(v: np.ndarray, t: np.ndarray, n: int) -> bool:
        if len(v) < P + 1:
            return False
        m = int(np.argmin(v))
        if first_only and m != 0:
            return False
        after = v[m:]
        if len(after) < P + 1 or int(np.sum(np.diff(after) <= 0)) > dips:
            return False
        recent = v[-P:]
        if not float(np.min(recent)) > v[m] or not float(np.mean(recent)) > 1.1 * v[m]:
            return False
        ref = t[m + 1] if ref_next else t[m]
        return bool(t[-1] <= share * ref) and training_fell(t, m)

    return rule


CANDIDATES: dict[str, Callable] = {
    "KEPT (b) rises from the first, train 1/2 of first": rises_while_halved(0, 0.5, True),
    "KEPT short, 1 fall, last p above min by 3 x fall/sqrt2": short_falls_noise(1, 3.0),
    "short, 2 falls, last p above min by 3 x fall/sqrt2": short_falls_noise(2, 3.0),
    "rises, any length, train 1/2 of min": rises_while_halved(0, 0.5, False),
    "rises, first-lowest, train 1/2 of second": rises_while_halved(0, 0.5, True, True),
    "rises 1 dip, any length, train 1/2": rises_while_halved(1, 0.5, False),
    "rises 1 dip, first-lowest, train 1/2": rises_while_halved(1, 0.5, True),
    "rises, any length, train 3/4": rises_while_halved(0, 0.75, False),
    "short (main's, reference)": short_shape,
    "short, 1 dip": short_relaxed(0.0, 1),
    "short, 1 dip, 2 noise": short_relaxed(2.0, 1),
    "short, 2 dips": short_relaxed(0.0, 2),
    "short, 1 dip, to 12 epochs": short_relaxed(0.0, 1, longer=13),
    "(b) never below first, +10%, train 1/2": never_below_first(0.10, 0.5),
    "(b) never below first, +5%, train 1/2": never_below_first(0.05, 0.5),
    "(b) never below first, +0%, train 1/2": never_below_first(0.0, 0.5),
    "(b) never below first, +0%, train 1/10": never_below_first(0.0, 0.1),
    "(b) never below first, +10%, train 3/4": never_below_first(0.10, 0.75),
}


def first_fire(rule: Callable, t: np.ndarray, v: np.ndarray) -> int | None:
    n = len(v)
    for k in range(2, n + 1):
        if rule(v[:k], t[:k], n):
            return k
    return None


def mlcheck_runs(path: str) -> dict[str, tuple[bool, int | None]]:
    """run id -> (hit, lag) from score.py's `--runs` lines."""
    out = {}
    line = re.compile(r"^\s+(\S+)\s+(\S+)\s+(HIT|-)\s+lag\s+(\S+)\s+(\S+)")
    for text in Path(path).read_text().splitlines():
        if got := line.match(text):
            lag = got.group(4)
            out[got.group(5)] = (got.group(3) == "HIT", None if lag == "None" else int(lag))
    return out


def main(argv: list[str]) -> int:
    base = mlcheck_runs(argv[0]) if argv else {}
    with open(HERE / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] in ("overfitting", "healthy")]
    splits = list(dict.fromkeys(r["split"] for r in rows))
    curves = {r["id"]: read(r["id"]) for r in rows}
    for name, rule in CANDIDATES.items():
        print(f"== {name}")
        totals = [0, 0, 0, 0, 0]
        for split in splits:
            over = [r for r in rows if r["split"] == split and r["label"] == "overfitting"]
            healthy = [r for r in rows if r["split"] == split and r["label"] == "healthy"]
            lags, new, earlier, both = [], [], [], []
            for r in over:
                t, v = curves[r["id"]]
                at = first_fire(rule, t, v)
                lag = None if at is None else at - int(r["onset"])
                hit, mlag = base.get(r["id"], (False, None))
                if lag is not None:
                    lags.append(lag)
                    if not hit:
                        new.append(f"{r['id']} {lag:+d}")
                    elif mlag is not None and lag < mlag:
                        earlier.append(f"{r['id']} {mlag:+d}->{lag:+d}")
                if hit or lag is not None:
                    got = [x for x in (lag, mlag if hit else None) if x is not None]
                    both.append(min(got) if got else 0)
            flagged = [r["id"] for r in healthy if first_fire(rule, *curves[r["id"]]) is not None]
            med = f"{statistics.median(lags):+g}" if lags else "-"
            bmed = f"{statistics.median(both):+g}" if both else "-"
            print(
                f"  {split:10s} overfitting {len(lags)}/{len(over)} lag {med}; new {len(new)}, earlier "
                f"{len(earlier)}; with mlcheck {len(both)}/{len(over)} lag {bmed}; "
                f"healthy {len(flagged)}/{len(healthy)}"
            )
            for x in new:
                print(f"      new: {x}")
            for x in earlier:
                print(f"      earlier: {x}")
            for x in flagged:
                print(f"      HEALTHY FLAGGED: {x}")
            totals = [a + b for a, b in zip(totals, (len(lags), len(new), len(earlier), len(flagged), len(over)))]
        print(
            f"  all: fires on {totals[0]}/{totals[4]} overfitting, new {totals[1]}, earlier {totals[2]}, "
            f"healthy {totals[3]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
