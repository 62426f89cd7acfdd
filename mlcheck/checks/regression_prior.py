"""The best constant prediction as a regression's baseline: the counterpart of the class prior.

A regression model that ignores its inputs predicts a constant. Under a mean squared error the
best constant is the targets' mean per output, and it scores their variance per output (mean over
the outputs); predicting all zeros (a ReLU or sigmoid output whose units died) scores the mean
squared target, E[y^2]. `loss-plateau` sets a stalled training loss against these levels, counted
over the first pass over the training targets (`TargetMoments`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.class_prior import FirstPass

if TYPE_CHECKING:
    from mlcheck.run import BatchObservation

#: Outputs per sample beyond which no per-output sums are kept (memory stays at a few MB: two
#: float64 vectors of this length).
MAX_OUTPUTS = 1 << 18


class TargetMoments(FirstPass):
    """Per-output sums and sums of squares of the training targets over the first epoch
    (`FirstPass`), with each sample's mean squared target and squared deviation from the running
    mean per output, summed with their squares: their spread gives the levels' standard errors."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.total: np.ndarray | None = None
        self.squares: np.ndarray | None = None
        # per sample: q0 = mean over outputs of y^2; qm = of (y - running mean)^2; their sums and sums of squares
        self.sums = [0.0, 0.0, 0.0, 0.0]
        self.usable = True  # False once the targets changed width, or are too wide

    def add(self, batch: BatchObservation, targets: np.ndarray) -> None:
        if not self.usable or not self.take(batch):
            return
        y = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1) if targets.ndim else None
        if y is None or not y.shape[1] or y.shape[1] > MAX_OUTPUTS:
            self.usable = False
            return
        y = y[np.isfinite(y).all(axis=1)]  # a non-finite target is nonfinite-input's business
        if not len(y):
            return
        if self.total is None:
            self.total, self.squares = np.zeros(y.shape[1]), np.zeros(y.shape[1])
        if y.shape[1] != self.total.size:
            self.usable = False  # sequences of varying length: no fixed outputs to average over
            return
        self.n += len(y)
        self.total += y.sum(axis=0)
        self.squares += np.square(y).sum(axis=0)
        q0 = np.square(y).mean(axis=1)
        qm = np.square(y - self.total / self.n).mean(axis=1)
        self.sums[0] += float(q0.sum())
        self.sums[1] += float(np.square(q0).sum())
        self.sums[2] += float(qm.sum())
        self.sums[3] += float(np.square(qm).sum())

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "n": self.n,
            "total": None if self.total is None else self.total.tolist(),
            "squares": None if self.squares is None else self.squares.tolist(),
            "sums": list(self.sums),
            "usable": self.usable,
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.n, self.sums, self.usable = int(state["n"]), [float(v) for v in state["sums"]], bool(state["usable"])
        self.total = None if state["total"] is None else np.asarray(state["total"], dtype=np.float64)
        self.squares = None if state["squares"] is None else np.asarray(state["squares"], dtype=np.float64)

    def levels(self) -> ConstantLevels | None:
        """The constant predictions' squared errors; None before two samples were counted."""
        if not self.usable or self.total is None or self.n < 2:
            return None
        n = self.n
        mean = self.total / n
        zeros = float(np.mean(self.squares / n))
        best = float(np.mean(np.maximum(self.squares / n - np.square(mean), 0.0)))
        return ConstantLevels(
            best=best,
            best_se=_standard_error(self.sums[2], self.sums[3], n),
            zeros=zeros,
            zeros_se=_standard_error(self.sums[0], self.sums[1], n),
            target_mean=float(np.mean(mean)),
            n=n,
            outputs=int(self.total.size),
            whole_pass=self.contiguous,
        )


def _standard_error(total: float, squares: float, n: int) -> float:
    """The standard error of a mean from the sum and sum of squares of its n values."""
    variance = max(squares / n - (total / n) ** 2, 0.0) * n / (n - 1)
    return math.sqrt(variance / n)


@dataclasses.dataclass(frozen=True)
class ConstantLevels:
    """The mean squared (or absolute) error of a constant prediction on the training targets counted.

    Attributes:
        best: that of the best constant, the targets' mean per output: their variance per output,
            averaged over the outputs.
        best_se: its standard error over the samples counted (each sample's squared deviation
            averaged over its outputs: correlated outputs, such as neighbouring pixels, count once).
        zeros: that of predicting all zeros: the mean squared target, E[y^2].
        zeros_se: its standard error.
        target_mean: the targets' mean (over samples, then outputs).
        n: samples counted.
        outputs: values per sample.
        whole_pass: the first pass was seen whole (every batch, in order), not a sample of batches.
        absolute: the levels are mean absolute errors (an MAE loss: the best constant is the
            targets' median per output, and `best` their mean absolute deviation from it), not
            squared ones.
    """

    best: float
    best_se: float
    zeros: float
    zeros_se: float
    target_mean: float
    n: int
    outputs: int
    whole_pass: bool
    absolute: bool = False

    def scaled(self, factor: float) -> ConstantLevels:
        """The levels of a loss `factor` times larger (summed over that many rows)."""
        return dataclasses.replace(
            self,
            best=self.best * factor,
            best_se=self.best_se * factor,
            zeros=self.zeros * factor,
            zeros_se=self.zeros_se * factor,
        )

    def nearest(self, level: float) -> tuple[str, float, float]:
        """(which constant, its loss, its standard error) nearest to `level`: the targets' mean or
        all zeros."""
        if abs(level - self.zeros) < abs(level - self.best):
            return "zeros", self.zeros, self.zeros_se
        return "mean", self.best, self.best_se


#: Target values kept per split of a regression's first pass (an absolute error's best constant,
#: the median, needs the values, not sums): 2^18 float64 values, 2 MB (also in a checkpoint); a
#: larger first pass is not judged against a constant.
MAX_KEPT_VALUES = 1 << 18


class KeptTargets(FirstPass):
    """The training or validation targets of the first epoch (`FirstPass`), kept as values
    (at most `MAX_KEPT_VALUES`): an absolute error's best constant is the targets' median per
    output, and its loss their mean absolute deviation from it."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[np.ndarray] = []
        self.kept = 0
        self.usable = True  # False once the targets changed width or outgrew the cap

    def add(self, batch: BatchObservation, targets: np.ndarray) -> None:
        if not self.usable or not self.take(batch):
            return
        y = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1) if targets.ndim else None
        if y is None or not y.shape[1]:
            self.usable = False
            return
        y = y[np.isfinite(y).all(axis=1)]
        if self.parts and y.shape[1] != self.parts[0].shape[1] or self.kept + y.size > MAX_KEPT_VALUES:
            self.usable, self.parts = False, []
            return
        self.parts.append(y)
        self.kept += y.size

    def values(self) -> np.ndarray | None:
        """The kept targets, (samples, outputs); None where unusable or fewer than two."""
        if not self.usable or not self.parts:
            return None
        y = np.concatenate(self.parts)
        return y if len(y) >= 2 else None

    def state_dict(self) -> dict:
        y = self.values()
        return {**super().state_dict(), "values": None if y is None else y.tolist(), "usable": self.usable}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.usable = bool(state["usable"])
        self.parts = [] if state["values"] is None else [np.asarray(state["values"], dtype=np.float64)]
        self.kept = sum(p.size for p in self.parts)


def absolute_levels(train: np.ndarray, whole_pass: bool) -> ConstantLevels:
    """The mean absolute errors of constant predictions on the training targets `train`
    (samples, outputs): the best constant, their median per output, and all zeros."""
    best, best_se = constant_error(train, np.median(train, axis=0), absolute=True)
    zeros, zeros_se = constant_error(train, np.zeros(train.shape[1]), absolute=True)
    return ConstantLevels(
        best=best,
        best_se=best_se,
        zeros=zeros,
        zeros_se=zeros_se,
        target_mean=float(np.mean(train)),
        n=len(train),
        outputs=int(train.shape[1]),
        whole_pass=whole_pass,
        absolute=True,
    )


def constant_error(targets: np.ndarray, constant: np.ndarray, absolute: bool) -> tuple[float, float]:
    """(the mean error, its standard error) of predicting `constant` (one value per output) for
    every row of `targets`: absolute or squared, averaged over the outputs per sample first
    (correlated outputs count once)."""
    diff = targets - constant[None, :]
    per_sample = (np.abs(diff) if absolute else np.square(diff)).mean(axis=1)
    n = len(per_sample)
    se = float(per_sample.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return float(per_sample.mean()), se
