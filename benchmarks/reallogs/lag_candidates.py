"""Candidate rules for telling overfitting earlier, replayed offline on every prefix (issue 12, over32).

    .venv/bin/python benchmarks/reallogs/score.py --held-out ... --held-out-11 --runs > /tmp/runs.txt
    .venv/bin/python benchmarks/reallogs/lag_candidates.py /tmp/runs.txt
    .venv/bin/python benchmarks/reallogs/lag_candidates.py /tmp/runs.txt --short   # over35's short-run rules

Each labelled overfitting and healthy run's copy in runs/ (`epoch,loss,val_loss[,accuracy-like]`)
is cut at every prefix of 4 validations or more and each candidate is asked whether it fires there;
its first firing is combined with main's first WARNING (the scorer's `--runs` lines: overfitting
lags, and which healthy runs main flags). The candidates share `train-val-gap`'s training
conditions (the training loss 1% below its value at the best epoch and below its first) and are a
numpy replay, not the check: no YOLO, raised-rate, early-stopping or standard-error handling, so
healthy firings are over-counted if anything. Printed per candidate: the combined median lag and
count at <= +2 (hits at or after the minimum), hits earlier than main, new hits, firings before
the labelled minimum that main does not already make, and healthy runs fired that main leaves
silent (named).

The candidates (their bars' sources in `CANDIDATES`):
- `cusum`: a one-sided CUSUM (Page 1954) of the validation loss above the lowest 3-epoch stretch,
  in units of the plateau's own scatter (`noise` of the curve, and of the part since the stretch
  where it has 4 points: what the stretch test measures), reference k and decision interval h;
  for a normal, independent in-control series the average run length before a false alarm is about
  338 epochs at (k, h) = (0.5, 4), 938 at (0.5, 5) and 2,073 at (1, 3) (Siegmund's approximation,
  one-sided);
- `last-k`: the mean of the last k epochs (k = 2, 3) above the lowest 3-epoch stretch by z x the
  noise of that difference (sqrt(1/k + 1/3) epoch noises), each of them above the stretch (UP), the
  noise measured on the residuals of the descent (a parabola through the log of the curve up to the
  stretch, 6 points or more, as the early test does) or, where that is undefined, not decided;
- `+ acc`: the same rule where an accuracy-like validation metric's last 3 epochs all lie below
  its value at the rule's best epoch by its noise and two validation samples (`_fallen`);
- `binomial turn`: two epochs after the lowest, both 5% above it (Prechelt's GL5), and the
  accuracy in both below its value at the lowest by z x the binomial standard error of a difference
  of two accuracies on n samples (n from the metric's resolution, known where it is 1/1000 or
  coarser): a noise for the first epochs that does not come from the descent;
- `early test ... t quantile`: the early test where its fit has 4 or 5 points (it asks 6), at the
  Student t quantile of z's tail for the fit's residual degrees of freedom;
- `acc-witness`: main's 3-epoch stretch test at z 2 (one-sided 2.3%) where an accuracy-like
  validation metric's last 3 epochs all lie below its value at the best stretch by its noise and two
  validation samples: two witnesses, the second independent of the loss's noise.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

import numpy as np

from mlcheck.checks.curve import noise, rolling_mean
from mlcheck.checks.generalization import TrainValGap, _fit_noise, _resolution

HERE = Path(__file__).resolve().parent
_CHECK = TrainValGap()
_P = 3  # the check's `patience`: stretches of 3 epochs
_TRAIN_FALL = 0.01  # the check's `min_train_fall`


def read(run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(training loss, validation loss, an accuracy-like validation metric or None) of one run."""
    with open(HERE / "runs" / f"{run_id}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))

    def column(name: str) -> np.ndarray:
        return np.array([float(r[name]) if r.get(name) not in (None, "") else math.nan for r in rows])

    metric = next((k for k in rows[0] if k.startswith("val_") and k != "val_loss"), None) if rows else None
    return column("loss"), column("val_loss"), column(metric) if metric else None


def _stretch(val: np.ndarray) -> tuple[int, float]:
    """(index of the lowest epoch of the lowest 3-epoch stretch that a full stretch follows, its mean)."""
    means = rolling_mean(val, _P)
    earlier = means[: len(means) - _P]
    i = int(np.argmin(earlier))
    return i + int(np.argmin(val[i : i + _P])), float(earlier[i])


def _trained(train: np.ndarray, best_at: int) -> bool:
    now = float(train[-1])
    return now < float(train[best_at]) * (1.0 - _TRAIN_FALL) and now < float(train[0])


def _plateau_noise(val: np.ndarray, best_at: int) -> float:
    sigma = noise(val)
    if len(val) - best_at >= 4:
        sigma = max(sigma, noise(val[best_at:]))
    return sigma


def cusum(k: float, h: float) -> Callable:
    def rule(train: np.ndarray, val: np.ndarray, metric: np.ndarray | None) -> bool:
        if len(val) < 2 * _P:
            return False
        best_at, best = _stretch(val)
        sigma = _plateau_noise(val, best_at)
        if not math.isfinite(sigma) or sigma <= 0 or not _trained(train, best_at):
            return False
        s = 0.0
        for v in val[best_at + _P :]:  # after the best stretch
            s = max(0.0, s + (float(v) - best) / sigma - k)
        return s > h

    return rule


def last_k(k: int, z: float) -> Callable:
    def rule(train: np.ndarray, val: np.ndarray, metric: np.ndarray | None) -> bool:
        if len(val) < _P + k + 1 or not bool(np.all(val > 0)):
            return False
        means = rolling_mean(val, _P)
        earlier = means[: len(means) - k]
        i = int(np.argmin(earlier))
        best_at, best = i + int(np.argmin(val[i : i + _P])), float(earlier[i])
        sigma = _fit_noise(np.log(val[: i + _P]))  # the descent's residuals, in log units
        if not math.isfinite(sigma) or not _trained(train, best_at):
            return False
        recent = val[-k:]
        if not float(np.min(recent)) > best:
            return False
        return math.log(float(np.mean(recent)) / best) > z * sigma * math.sqrt(1.0 / k + 1.0 / _P)

    return rule


def _fallen(metric: np.ndarray | None, best_at: int) -> bool:
    """An accuracy-like metric whose last 3 epochs all lie below its value at `best_at` by its
    noise and two validation samples (the floor `train-val-gap`'s early test puts on a fall)."""
    if metric is None or len(metric) < 4 or not bool(np.all(np.isfinite(metric))):
        return False
    floor = float(metric[best_at]) - max(noise(metric), 2.0 * _resolution(metric))
    return bool(np.all(metric[-_P:] < floor))


def witnessed(rule: Callable) -> Callable:
    def both(train: np.ndarray, val: np.ndarray, metric: np.ndarray | None) -> bool:
        if len(val) < 2 * _P or not rule(train, val, metric):
            return False
        return _fallen(metric, _stretch(val)[0] if len(val) >= 2 * _P else int(np.argmin(val)))

    return both


def binomial_turn(z: float, gl: float = 0.05) -> Callable:
    def rule(train: np.ndarray, val: np.ndarray, metric: np.ndarray | None) -> bool:
        if metric is None or not bool(np.all(np.isfinite(metric))):
            return False
        m = int(np.argmin(val))
        if len(val) - 1 - m < 2 or not bool(np.all(val[-2:] > val[m] * (1.0 + gl))):
            return False
        step = _resolution(metric)
        if step < 1e-3 or float(np.max(metric)) > 1.0:  # the set's size unknown (or a percentage)
            return False
        n = round(1.0 / step)
        a = float(metric[m])
        se = math.sqrt(2.0 * a * (1.0 - a) / n)  # two independent accuracies on n samples
        return _trained(train, m) and bool(np.all(metric[-2:] < a - z * se))

    return rule


def early_t(min_points: int, witness: bool = False) -> Callable:
    """`train-val-gap`'s early test (GL5 in each of the last 2 epochs, above z x the fit noise of the
    log around a parabola from `patience` before the lowest) with the fit allowed on `min_points`
    points (the check asks 6) and z the Student t quantile of the same one-sided tail (0.135%) for
    the fit's n - 3 residual degrees of freedom (19.2 for 2, 8.9 for 3, 6.4 for 4)."""
    from scipy.stats import t as student

    tail = NormalDist().cdf(-_CHECK.z)

    def rule(train: np.ndarray, val: np.ndarray, metric: np.ndarray | None) -> bool:
        m = int(np.argmin(val))
        if len(val) - 1 - m < 2 or not bool(np.all(val > 0)):
            return False
        if metric is not None and len(metric) >= 2 and float(metric[-1]) >= float(np.nanmax(metric[:-1])):
            return False  # the accuracy at its best: the early test is off
        part = np.log(val[max(0, m - _P) :])
        if len(part) < min_points:
            return False
        x = np.arange(len(part), dtype=np.float64)
        resid = part - np.polyval(np.polyfit(x, part, 2), x)
        dof = len(part) - 3
        sigma = math.sqrt(float(resid @ resid) / dof)
        best = float(np.median(val[max(0, m - 1) : m + 2]))
        low = float(np.min(val[-2:]))
        if not low > best * 1.05 or not math.log(low / best) > float(student.ppf(1.0 - tail, dof)) * sigma:
            return False
        return _trained(train, m) and (not witness or _fallen_k(metric, m, 2))

    return rule


def _fallen_k(metric: np.ndarray | None, best_at: int, k: int) -> bool:
    if metric is None or len(metric) < 4 or not bool(np.all(np.isfinite(metric))):
        return False
    floor = float(metric[best_at]) - max(noise(metric), 2.0 * _resolution(metric))
    return bool(np.all(metric[-k:] < floor))


def acc_witness(z: float) -> Callable:
    def rule(train: np.ndarray, val: np.ndarray, metric: np.ndarray | None) -> bool:
        if metric is None or len(val) < 2 * _P + 2 or not bool(np.all(np.isfinite(metric))):
            return False
        x = np.arange(1, len(val) + 1, dtype=np.float64)
        found = _CHECK._stretch_rise(x, val, _P, z)
        if found is None or not _trained(train, found[0]):
            return False
        return _fallen(metric, found[0])

    return rule


_SHORT = 10  # issue 12's short runs: "8-10 epochs must be judged too"


def short_descent(k: int, z: float, train_witness: bool = False, max_len: float = _SHORT) -> Callable:
    """Over35, the short-run class: a prefix of at most `_SHORT` validations whose last `k` epochs
    each lie above the lowest and whose mean lies above the best level (the early test's median of
    the lowest and its neighbours) by 5% (GL5) and by `z` x the noise of that difference, the
    noise the early test's (the log loss's scatter around a parabola from `patience` before the
    lowest, 6 points or more) times sqrt(1/k + 1/3). z 2.33 is a one-sided 1% under normal noise.
    `train_witness`: the training loss also fell at each epoch since the lowest (issue 12's second
    witness: the model still fits its training set closer while validation rises). `max_len`: the
    longest prefix it is asked of (over38's `--long` asks it of longer runs too)."""

    def rule(train: np.ndarray, val: np.ndarray, metric: np.ndarray | None) -> bool:
        if len(val) > max_len or not bool(np.all(val > 0)):
            return False
        m = int(np.argmin(val))
        if len(val) - 1 - m < k:
            return False
        sigma = _fit_noise(np.log(val[max(0, m - _P) :]))
        if not math.isfinite(sigma) or not _trained(train, m):
            return False
        best = float(np.median(val[max(0, m - 1) : m + 2]))
        recent = float(np.mean(val[-k:]))
        if not float(np.min(val[-k:])) > float(val[m]) or not recent > 1.05 * best:
            return False
        if train_witness and not bool(np.all(np.diff(train[m:]) < 0)):
            return False
        return math.log(recent / best) > z * sigma * math.sqrt(1.0 / k + 1.0 / _P)

    return rule


def short_shape(witness: bool = False) -> Callable:
    """Over35: the check's shape test for runs under 8 validations (`_short_rise`: 3 rises after the
    lowest, one fall allowed when the rise stands z x clear of it, 10% on average), asked of
    prefixes of 8 to `_SHORT` validations too, with the training loss falling at each epoch since
    the lowest (a second witness: the model still fits its training set closer), and where
    `witness`, the accuracy fallen as `_fallen` asks."""

    def rule(train: np.ndarray, val: np.ndarray, metric: np.ndarray | None) -> bool:
        if not 2 * _P + 2 <= len(val) <= _SHORT:
            return False
        found = _CHECK._short_rise(val, 1)
        if found is None or not _trained(train, found[0]):
            return False
        if not bool(np.all(np.diff(train[found[0] :]) < 0)):
            return False
        return not witness or _fallen(metric, found[0])

    return rule


CANDIDATES: dict[str, Callable] = {
    "cusum k0.5 h4 (ARL0 338)": cusum(0.5, 4.0),
    "cusum k0.5 h5 (ARL0 938)": cusum(0.5, 5.0),
    "cusum k1 h3 (ARL0 2073)": cusum(1.0, 3.0),
    "cusum k0.5 h5 + acc": witnessed(cusum(0.5, 5.0)),
    "cusum k1 h3 + acc": witnessed(cusum(1.0, 3.0)),
    "last-2 z3, descent noise": last_k(2, 3.0),
    "last-3 z3, descent noise": last_k(3, 3.0),
    "last-2 z3 + acc": witnessed(last_k(2, 3.0)),
    "acc-witness z2 (stretch test)": acc_witness(2.0),
    "binomial turn at +2, z2": binomial_turn(2.0),
    "binomial turn at +2, z3": binomial_turn(3.0),
    "control: early test on 6+ points, t quantile": early_t(6),
    "early test on 5+ points, t quantile": early_t(5),
    "early test on 4+ points, t quantile": early_t(4),
    "early test on 5+ points, t quantile + acc": early_t(5, witness=True),
}

SHORT_CANDIDATES: dict[str, Callable] = {
    "short (<= 10 validations): last 2, z 2.33 (1%), early-test noise": short_descent(2, 2.33),
    "short: last 3, z 2.33 (1%)": short_descent(3, 2.33),
    "short: last 2, z 3 (0.135%)": short_descent(2, 3.0),
    "short: last 2, z 2.33 + acc": witnessed(short_descent(2, 2.33)),
    "short: last 2, z 2.33, training falling each epoch since the lowest": short_descent(2, 2.33, True),
    "short: last 2, z 3, training falling each epoch since the lowest": short_descent(2, 3.0, True),
    "short: last 3, z 3, training falling each epoch since the lowest": short_descent(3, 3.0, True),
    "short: the shape test on 8-10 validations, training falling each epoch": short_shape(),
    "short: the same + acc": short_shape(witness=True),
}

# over38: the short-run early test (kept in the check for runs of 10 validations or fewer) asked of
# longer prefixes too: does its two-witness bar stay silent on healthy runs past 10 validations?
LONG_CANDIDATES: dict[str, Callable] = {
    f"last 3, z 3, training falling each epoch, prefixes <= {n}": short_descent(3, 3.0, True, n)
    for n in (10, 12, 15, 20, 30, math.inf)
}


def first_firing(rule: Callable, train: np.ndarray, val: np.ndarray, metric: np.ndarray | None) -> int | None:
    """The 1-based epoch of the first prefix (4 validations or more) the rule fires on, or None."""
    good = np.isfinite(val) & np.isfinite(train)
    for t in range(4, len(val) + 1):
        if not bool(np.all(good[:t])):
            return None  # gaps and non-finite values: left to the check's readers
        if rule(train[:t], val[:t], metric[:t] if metric is not None else None):
            return t
    return None


def main_lines(runs_txt: str) -> dict[str, tuple[str, str, int | None]]:
    """{run id: (label, HIT or -, lag)} from `score.py --runs` output."""
    got = {}
    for line in Path(runs_txt).read_text().splitlines():
        parts = line.split()
        if line.startswith("  ") and len(parts) >= 6 and parts[1] in ("overfitting", "healthy"):
            got[parts[5]] = (parts[1], parts[2], None if parts[4] == "None" else int(parts[4]))
    return got


def main(argv: list[str]) -> int:
    candidates = SHORT_CANDIDATES if "--short" in argv else LONG_CANDIDATES if "--long" in argv else CANDIDATES
    argv = [a for a in argv if a not in ("--short", "--long")]
    main_said = main_lines(argv[0])
    with open(HERE / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["id"] in main_said]
    curves = {r["id"]: read(r["id"]) for r in rows}
    base = [main_said[r["id"]][2] for r in rows if main_said[r["id"]][:2] == ("overfitting", "HIT")]
    early, soon = sum(lag <= 2 for lag in base), sum(lag <= 4 for lag in base)
    print(f"main: {len(base)} hits, median {statistics.median(base):+g}, {early} at <= +2, {soon} at <= +4")
    print("candidate | hits | at <= +4 | median lag | at 0..+2 | at <= +2 | earlier | new | before the minimum", end="")
    print(" | healthy fired")
    for name, rule in candidates.items():
        lags, earlier, new, before, healthy = [], 0, [], [], []
        for r in rows:
            label, said, lag = main_said[r["id"]]
            fired = first_firing(rule, *curves[r["id"]])
            if label == "healthy":
                if fired is not None and said != "HIT":
                    healthy.append(f"{r['split']} {r['id']} @{fired}")
                continue
            onset = int(r["onset"])
            mine = fired - onset if fired is not None else None
            if mine is not None and mine < 0 and not (lag is not None and lag < 0):
                before.append(f"{r['id']} {mine:+d}")
            if said == "HIT" and lag is not None:
                best = min(lag, mine) if mine is not None else lag
                earlier += mine is not None and mine < lag
            elif mine is not None:
                best = mine
                new.append(f"{r['id']} {mine:+d}")
            else:
                continue
            lags.append(best)
        print(
            f"{name} | {len(lags)} | {sum(lag <= 4 for lag in lags)} | {statistics.median(lags):+g} | "
            f"{sum(0 <= lag <= 2 for lag in lags)} | "
            f"{sum(lag <= 2 for lag in lags)} | {earlier} | {len(new)} | {len(before)} | {len(healthy)}"
        )
        for what, items in (("new", new), ("before", before), ("healthy", healthy)):
            if items:
                print(f"    {what}: {'; '.join(items)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
