"""Noise-aware statistics over a `Series`, shared by the curve checks.

The curve checks never compare single points. They look at bucket means, measure the noise of
a bucket mean from the curve itself (robustly, from second differences, so a linear trend does
not count as noise), and compare medians of several buckets, so one bad batch or one noisy
epoch moves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.base import Check
from mlcheck.findings import Severity
from mlcheck.series import Series

if TYPE_CHECKING:
    from mlcheck.findings import Finding
    from mlcheck.run import RunState

# 1.4826 * MAD estimates a normal standard deviation; second differences of white noise have
# variance 6 sigma^2.
_MAD_TO_STD = 1.4826
_SECOND_DIFF_VAR = 6.0

#: root causes that make a run's steps too large or its loss erratic, explaining `loss-divergence`
#: and `lr-too-high` when found first (`Check.explained_by`: those findings then say so)
UNSTABLE_STEP_CAUSES = frozenset(
    {
        "nonfinite-input",
        "output-loss-mismatch",
        "stale-gradients",
        "unshuffled-data",
        "loss-at-init:summed",  # a loss summed over the batch: its step is batch-size times too large
    }
)


@dataclass(frozen=True)
class Curve:
    """A curve at the resolution its `Series` keeps: one row per bucket.

    Attributes:
        x: step (or epoch) at the end of each bucket.
        mean: mean of the finite values in each bucket.
        max: largest value in each bucket.
        std: standard deviation within each bucket (0 for one-value buckets).
        n: values per bucket.
        width: values per bucket at the series' current resolution.
    """

    x: np.ndarray
    mean: np.ndarray
    max: np.ndarray
    std: np.ndarray
    n: np.ndarray
    width: int

    @classmethod
    def of(cls, series: Series, final: bool = False) -> Curve | None:
        """The curve of `series` (closed buckets, plus the open one when `final`), or None
        when it holds no finite value."""
        b = series.buckets(include_open=final)
        if len(b["mean"]) == 0:
            return None
        return cls(b["x1"], b["mean"], b["max"], b["std"], b["n"], series.width)

    def __len__(self) -> int:
        return len(self.mean)

    @property
    def values(self) -> int:
        """Number of finite values the curve summarises."""
        return int(self.n.sum())

    @property
    def span(self) -> float:
        return float(self.x[-1] - self.x[0]) if len(self.x) else 0.0

    def noise(self) -> float:
        """Robust standard deviation of one bucket mean around the local trend (nan when the
        curve has fewer than 4 buckets)."""
        return noise(self.mean)

    def window(self, points: int) -> int:
        """How many trailing buckets hold at least `points` values (at least 1)."""
        return max(1, min(len(self), math.ceil(points / max(1, self.width))))


def median(values: np.ndarray) -> float:
    """`np.median` of a 1-D float64 array, the same value (nan when empty or holding a NaN) at a
    fraction of its cost: np.median's general reduction costs ~15-50 us a call, a sort of the
    few hundred buckets a check reads ~2-5 us, and the step checks take several medians at each
    judgement."""
    v = np.sort(values)  # NaN sorts last
    n = len(v)
    if n == 0 or v[-1] != v[-1]:
        return math.nan
    h = n // 2
    # Python floats: the same IEEE double arithmetic, and no overflow warning (inf + -inf: nan)
    return float(v[h]) if n % 2 else 0.5 * (float(v[h - 1]) + float(v[h]))


def noise(values: np.ndarray) -> float:
    """Robust standard deviation of the noise in `values` from second differences (nan for
    fewer than 4 values)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 4:
        return math.nan
    d2 = v[2:] - 2.0 * v[1:-1] + v[:-2]
    return float(_MAD_TO_STD * median(np.abs(d2)) / math.sqrt(_SECOND_DIFF_VAR))


def spread(values: np.ndarray) -> float:
    """Robust standard deviation of `values` themselves, not of their noise: 1.4826 x their
    median absolute deviation (a curve's descent and noise together; nan when empty), which
    values far out, fewer than half of them, do not move."""
    v = np.asarray(values, dtype=np.float64)
    return float(_MAD_TO_STD * median(np.abs(v - median(v))))


def rolling_median(values: np.ndarray, k: int) -> np.ndarray:
    """Medians of every run of `k` consecutive values (length len(values) - k + 1)."""
    v = np.asarray(values, dtype=np.float64)
    k = max(1, min(k, len(v)))
    if k == 1:
        return v.copy()
    s = np.sort(np.lib.stride_tricks.sliding_window_view(v, k), axis=1)
    return 0.5 * (s[:, (k - 1) // 2] + s[:, k // 2])


def rolling_mean(values: np.ndarray, k: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    k = max(1, min(k, len(v)))
    c = np.concatenate(([0.0], np.cumsum(v)))
    return (c[k:] - c[:-k]) / k


def trend_drop(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(drop, standard error of drop): how much a least-squares line through (x, y) falls from
    the first x to the last. Positive when y decreases. (nan, nan) for fewer than 3 points."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 3 or x[-1] == x[0]:
        return math.nan, math.nan
    xc = x - x.mean()
    sxx = float(xc @ xc)
    slope = float(xc @ (y - y.mean())) / sxx
    resid = y - y.mean() - slope * xc
    se_slope = math.sqrt(float(resid @ resid) / max(1, len(x) - 2) / sxx)
    span = float(x[-1] - x[0])
    return -slope * span, se_slope * span


def mann_kendall_z(y: np.ndarray) -> float:
    """Mann-Kendall's statistic S of `y` (pairs that rise minus pairs that fall, in order) over its
    standard error under no trend, with the continuity correction and no tie correction: a rank
    test of a monotone rise (positive) or fall, which one wild value moves by its own pairs only,
    where a fitted line's error grows with the swing. 0.0 for fewer than 4 values. Assumes
    independent values (epochs, not overlapping means of them)."""
    v = np.asarray(y, dtype=np.float64)
    n = len(v)
    if n < 4:
        return 0.0
    s = float(np.sum(np.sign(v[None, :] - v[:, None])[np.triu_indices(n, 1)]))
    return (s - math.copysign(1.0, s) * (s != 0)) / math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)


def rising(series: Series, x0: float, x1: float, factor: float = 1.2) -> bool:
    """True when the learning rate logged in `series` grew by more than `factor` between x0
    and x1 (a warmup in progress): loss judgements wait for it to end."""
    if series.finite_count < 2:
        return False
    b = series.buckets(include_open=True)
    xs, ms = b["x1"], b["mean"]
    lo = ms[min(len(ms) - 1, int(np.searchsorted(xs, x0)))]
    hi = ms[min(len(ms) - 1, int(np.searchsorted(xs, x1)))]
    return bool(hi > factor * lo and hi > 0)


# The first values of a run (before any smoothing merges them) are its initial loss level.
_INITIAL_POINTS = 10


class TrainCurve:
    """Which training-loss curve a check judges: the step-level one when steps were logged,
    else the epoch-level one (e.g. `mlcheck analyze` on a Keras CSV). Remembers the initial
    level, which the bounded series forgets once it merges its first buckets."""

    def __init__(self) -> None:
        self.initial: float | None = None
        #: (the mean loss of the first 10 steps, its standard error) where the step-level curve
        #: starts at step 0 or 1, before any update (`class_prior.starts_trained`)
        self.start: tuple[float, float] | None = None

    def pick(self, run: RunState) -> tuple[Series, str]:
        if run.train_loss.finite_count >= 2:
            return run.train_loss, "step"
        return run.epoch_train_loss, "epoch"

    def initial_level(self, series: Series, unit: str, curve: Curve | None = None) -> float:
        """The loss level at the start: the median of the first 10 steps (or the first epoch).
        Cheap once known; call it on every step so it is taken before buckets merge."""
        if self.initial is not None:
            return self.initial
        curve = curve or Curve.of(series, final=True)
        if curve is None:
            return math.nan
        k = 1 if unit == "epoch" else curve.window(_INITIAL_POINTS)
        level = median(curve.mean[:k])
        if unit == "epoch" or (series.width == 1 and len(curve) >= _INITIAL_POINTS):
            self.initial = level
            if unit == "step" and series.buckets()["x0"][0] <= 1:  # logged from the first step
                first = curve.mean[:k]
                self.start = (float(first.mean()), float(first.std(ddof=1) / math.sqrt(len(first))))
        return level

    def state_dict(self) -> dict:
        return {"initial": self.initial, "start": self.start}

    def load_state_dict(self, state: dict) -> None:
        self.initial = state["initial"]
        start = state.get("start")  # absent from checkpoints written before it was kept
        self.start = None if start is None else (float(start[0]), float(start[1]))


def improving(series: Series, higher: bool, z: float = 3.0, tol: float = 0.02) -> bool:
    """True when an epoch-level curve improved significantly over its last half."""
    b = series.buckets(include_open=True)
    if len(b["mean"]) < 4:
        return False
    half = max(3, len(b["mean"]) // 2)
    x, y = b["x1"][-half:], b["mean"][-half:]
    drop, se = trend_drop(x, -y if higher else y)
    return bool(np.isfinite(drop) and drop > z * se and drop > tol * abs(median(y)))


def closing_on(buckets: Mapping[str, np.ndarray], level: float, horizon: float, z: float = 3.0) -> bool:
    """True when an epoch-level curve (lower is better) still falls, and fast enough to reach
    `level` by `horizon` (in the curve's x): its last half's least-squares fall beats `z`
    standard errors, and that pace, carried on from the last point to the horizon, covers the gap
    from the last value to `level`. A check has no expectation of its own for how fast a run of
    few updates should learn (one batch an epoch under `limit_train_batches`); the curve's own
    pace is the only one, so a verdict that it never got below `level` waits while the curve
    says it is on its way there."""
    means = buckets["mean"]
    if len(means) < 3 or not math.isfinite(level):
        return False
    half = max(3, len(means) // 2)
    x, y = buckets["x1"][-half:], means[-half:]
    drop, se = trend_drop(x, y)
    if not (np.isfinite(drop) and drop > z * se and drop > 0):
        return False  # not falling beyond its own scatter: the level it sits at is the evidence
    pace = drop / float(x[-1] - x[0])
    return bool(pace * max(0.0, horizon - float(x[-1])) >= float(y[-1]) - level)


def epoch_train_levels(run: RunState) -> Mapping[int, float]:
    """Training loss per epoch: the logged epoch means, or else the mean of the step-level
    buckets that fall inside each epoch (from `run.epoch_step`). Empty when neither exists.

    The step-level levels are computed when read (`StepEpochLevels`): a check reading a few
    epochs pays for those few, not for every epoch of the run at every epoch."""
    s = run.epoch_train_loss
    if s.finite_count:
        b = s.buckets(include_open=True)
        return {int(e): float(m) for e, m in zip(b["x1"], b["mean"])}
    if not run.epoch_step or not run.train_loss.finite_count:
        return {}
    return StepEpochLevels(run.train_loss.buckets(include_open=True), run.epoch_step)


class StepEpochLevels(Mapping):
    """Epoch -> the weighted mean of the step buckets whose end lies in (end of the previous
    epoch, end of this one]: which epochs hold a bucket is found for all epochs at once (two
    sorted searches), each level only when read, by the same `np.average` over the same buckets
    as a loop over every epoch would do (same values to the last bit)."""

    def __init__(self, buckets: Mapping[str, np.ndarray], epoch_step: Mapping[int, int]) -> None:
        self._mean, self._n = buckets["mean"], buckets["n"]
        self._cache: dict[int, float] = {}
        x1 = buckets["x1"]
        epochs = sorted(epoch_step)
        ends = np.fromiter(map(epoch_step.__getitem__, epochs), dtype=np.float64, count=len(epochs))
        previous = np.concatenate(([-math.inf], ends[:-1]))
        if len(x1) > 1 and not bool(np.all(x1[1:] >= x1[:-1])):  # steps went back: no sorted search
            inside = [np.flatnonzero((x1 > p) & (x1 <= e)) for p, e in zip(previous, ends)]
            self._rows: dict[int, object] = {k: r for k, r in zip(epochs, inside) if len(r)}
            return
        lo = np.searchsorted(x1, previous, "right")
        hi = np.searchsorted(x1, ends, "right")
        held = hi > lo
        kept = np.asarray(epochs)[held].tolist()
        self._rows = dict(zip(kept, map(slice, lo[held].tolist(), hi[held].tolist())))

    def __getitem__(self, epoch: int) -> float:
        rows = self._rows[epoch]
        if epoch not in self._cache:
            self._cache[epoch] = float(np.average(self._mean[rows], weights=self._n[rows]))
        return self._cache[epoch]

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def curve_minimums(checks: Iterable[Check], unit: str) -> dict[str, int]:
    """{check id: the fewest training-loss points it judges} for the loss-curve checks among
    `checks` (`LossCurveCheck.min_points`), e.g. {"loss-divergence": 22, "loss-plateau": 100}
    for a per-step curve at the defaults."""
    return {c.id: c.min_points(unit) for c in checks if isinstance(c, LossCurveCheck)}


def sig(value: float, digits: int = 4) -> float:
    """`value` rounded to `digits` significant digits, for evidence that reads well and does
    not depend on the last bits of floating-point summation."""
    if value is None or not math.isfinite(value) or value == 0:
        return value
    try:
        return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))
    except OverflowError:  # rounding up past the largest float (1.79e308): keep it as it is
        return value


def times(ratio: float) -> str:
    """`ratio` as a multiple in a sentence ("3.2" in "3.2x its best"): one decimal while it reads
    as a number (below 1000), in exponent form past it, so a loss that blew up 6e18-fold does not
    print nineteen digits ("5946035237633423360.0x")."""
    return f"{ratio:.1f}" if abs(ratio) < 1000 else f"{ratio:.3g}"


class Throttle:
    """Decides when a costly judgement is due: every `min_gap` values at first, then every
    1/`fraction` of the values seen, so a run of any length costs a few dozen judgements.
    Depends only on the number of values seen, so the live and the vectorised (`log_steps`)
    paths judge at the same points."""

    def __init__(self, min_gap: int = 32, fraction: int = 32) -> None:
        self.min_gap = min_gap
        self.fraction = fraction
        self.next = 0

    def due(self, total: int) -> bool:
        if total < self.next:
            return False
        self.next = total + max(self.min_gap, total // self.fraction)
        return True

    def state_dict(self) -> dict:
        return {"next": self.next}

    def load_state_dict(self, state: dict) -> None:
        self.next = state["next"]


def epoch_judgement_due(series: Series) -> bool:
    """Whether a judgement that reads every bucket of an epoch-level `series` is due now: at
    every epoch while each bucket holds one epoch (the first `capacity` epochs, 256 by default:
    nearly every real run), then when a bucket closes, every `width` epochs, as the step path
    judges at bucket ends (`Monitor._eval_point`). Such a judgement costs O(capacity), so the
    work per epoch stays bounded by the new data since the last one: a run of N epochs costs
    O(N) to record and about 256 + 128 log2(N / 256) judgements, instead of N (a 300,000-epoch
    Keras CSV: ~1,560 instead of 300,000). A finding comes at most `width - 1` epochs later than
    a judgement at every epoch would give it (under 1/128 of the run); the end-of-run judgement
    reads the open bucket too. Depends only on the values seen, so live and replayed runs judge
    at the same epochs."""
    return series.finite_count % series.width == 0


class TrainCurveCheck(Check):
    """Base of the checks that judge the training-loss curve. Keeps what the bounded series
    forgets or a resumed run must not repeat: the initial loss level, whether the check fired
    and when it judges next; all travel with a checkpoint (`Check.state_dict`)."""

    def reset(self) -> None:
        self._train = TrainCurve()
        self._throttle = Throttle()
        self._fired = False

    def on_step(self, run: RunState) -> Iterable[Finding]:
        """Judges the step-level curve, throttled (see `Throttle`); epoch-only logs are
        judged in `on_epoch` instead."""
        series, unit = self._train.pick(run)
        if unit != "step" or self._fired:
            return ()
        initial = self._train.initial_level(series, unit)
        if not self._throttle.due(series.finite_count):
            return ()
        curve = Curve.of(series)
        return () if curve is None else self._judge(run, curve, initial, unit)

    def _judge(self, run: RunState, c: Curve, initial: float, unit: str, final: bool = False) -> list[Finding]:
        raise NotImplementedError


class LossCurveCheck(TrainCurveCheck):
    """Base of the checks judged on the training-loss curve alone (`loss-divergence`,
    `loss-plateau`): steps through `TrainCurveCheck.on_step`, epoch-only logs at each epoch end,
    and the whole curve, open bucket included, at the end of the run."""

    def min_points(self, unit: str) -> int:
        """The fewest logged training-loss points (one per step for `unit` "step", per epoch for
        "epoch") at which this check judges the curve at all; `mlcheck analyze` and the
        callbacks name the checks a shorter log leaves without a judgement."""
        raise NotImplementedError

    #: Finding keys kept at their severity where the loss is one of several objectives
    #: (`RunInfo.several_objectives`): what no healthy objective does.
    OWN_FAILURES: frozenset[str] = frozenset({"negative", "runaway"})

    def on_step(self, run: RunState) -> Iterable[Finding]:
        return self._one_of_several(run, super().on_step(run))

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        series, unit = self._train.pick(run)
        if unit != "epoch" or not epoch_judgement_due(series):
            return ()
        return self._judge_whole(run, final=False)

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return self._judge_whole(run, final=True)

    def _judge_whole(self, run: RunState, final: bool) -> Iterable[Finding]:
        series, unit = self._train.pick(run)
        curve = Curve.of(series, final=True)
        if curve is None or self._fired:
            return ()
        return self._one_of_several(
            run, self._judge(run, curve, self._train.initial_level(series, unit, curve), unit, final)
        )

    def _one_of_several(self, run: RunState, found: Iterable[Finding]) -> Iterable[Finding]:
        """INFO for what the curve rules saw where the training loss is one of several
        optimizers' objectives (`RunInfo.several_objectives`): a GAN's generator loss rises and
        stalls as its discriminator learns, a healthy run's shape for such a loss."""
        if not run.info.several_objectives or not found:
            return found
        return [
            f
            if f.severity <= Severity.INFO or f.key in self.OWN_FAILURES
            else replace(
                f,
                severity=Severity.INFO,
                message=f"{f.message} (this loss is one of several optimizers' objectives, whose rise or "
                "stall may be another's progress, as a GAN's generator loss rises while its discriminator learns)",
                evidence={**f.evidence, "several_objectives": True},
            )
            for f in found
        ]
