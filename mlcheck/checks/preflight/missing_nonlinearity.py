"""`missing-nonlinearity`: is a model with several weight matrices linear end to end?"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.preflight.harness import (
    SMALL_BATCH,
    inputs_unfit,
    kept_random_state,
    skipped,
    small_batch,
)
from mlcheck.findings import Finding, Severity

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext

#: Least pairs of samples whose midpoints must all be affine before the check fires.
MIN_PAIRS = 4
#: Outputs closer than this to 0 or 1 are not turned into logits (their logit is rounding).
_PROBABILITY_EDGE = 1e-6


@register
class MissingNonlinearity(Check):
    """The model has several weight matrices but no non-linearity between them: it computes
    a linear (affine) function of its input, like a single layer.

    What it does:
        On a model with at least two weight matrices (parameters of two or more dimensions:
        dense kernels, convolution kernels), takes pairs of real training samples x1, x2 and
        tests, in inference mode (dropout off, BatchNorm on its running statistics, both
        affine), whether f((x1 + x2) / 2) = (f(x1) + f(x2)) / 2, which holds for every affine
        f and for almost no other. It fires when every pair agrees to `tol` of the difference
        between the pair's outputs. A final softmax, log-softmax or sigmoid is looked through:
        the test also runs on the outputs' logits (log-probabilities centred per row, or
        log(p / (1 - p))), so softmax(W2 W1 x) is caught; a model with one weight matrix
        (logistic regression, a linear probe) is linear on purpose and never judged.

    Why it matters:
        Stacked linear layers collapse into one: W2 (W1 x) = (W2 W1) x. The extra layers cost
        compute and parameters and add nothing; the model can only draw linear decision
        boundaries. The run trains normally and reaches the accuracy of a linear model, so no
        curve shows the bug (DeepCrime's "remove activation function"; DeepDiagnosis' "change
        the activation").

    How to fix:
        Put an activation (ReLU, GELU, tanh) after every hidden layer: `nn.ReLU()` between the
        `nn.Linear`s, `activation="relu"` on Keras' hidden `Dense`/`Conv` layers (their
        default is linear). If the model is meant to be linear, use one layer, or suppress
        missing-nonlinearity.

    Example:
        model = keras.Sequential([
            keras.layers.Dense(128),  # activation defaults to None: linear
            keras.layers.Dense(128),
            keras.layers.Dense(10),
        ])

    Use instead:
        model = keras.Sequential([
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ])

    Args:
        batch_size: training samples paired up. Default 16.
        tol: the largest departure from the midpoint, relative to the difference between the
            pair's outputs, that counts as linear. Default 1e-3: float32 rounding through a few
            layers stays below ~1e-5 (BatchNorm in eval mode included), while a ReLU, tanh or
            GELU network departs by 1e-2 or more on real inputs.
    """

    id = "missing-nonlinearity"
    family = "pre-flight"
    severity = Severity.WARNING
    consumes = frozenset({Signal.PREFLIGHT, Signal.TRAIN_START})

    def __init__(self, batch_size: int = SMALL_BATCH, tol: float = 1e-3):
        self.batch_size, self.tol = batch_size, tol
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        matrices = [name for name, p in t.parameters().items() if np.ndim(p) >= 2]
        if len(matrices) < 2:
            return []  # one weight matrix (or none): linear on purpose, or nothing to stack
        with kept_random_state(t):
            batch = small_batch(t, self.batch_size)
            if batch is None:
                return [skipped(self, "there is no training data")]
            x, y = t.to_numpy(batch)
            unfit = inputs_unfit(x, 2 * MIN_PAIRS)
            if unfit is not None:
                return [skipped(self, unfit)]
            n = len(x)
            partner = (np.arange(n) + n // 2) % n
            mid = ((x.astype(np.float64) + x[partner]) / 2).astype(x.dtype)
            out = np.asarray(t.forward(t.from_numpy(np.concatenate([x, mid]), _targets(y))), dtype=np.float64)
        out = out.reshape(2 * n, -1)
        departure = min(_departure(view[:n], view[n:], partner) for view in _views(out))
        if not departure < self.tol:
            return []
        return [
            self.finding(
                f"The model is linear in its input: {len(matrices)} weight matrices with no "
                "non-linearity between them compute what a single layer could.",
                evidence={
                    "weight_matrices": matrices[:8],
                    "pairs": n,
                    "largest_departure": float(f"{departure:.3g}"),
                    "tol": self.tol,
                },
                hint="Add an activation (ReLU, GELU) after each hidden layer (Keras layers default to "
                "activation=None); if a linear model is intended, use one layer or suppress "
                "missing-nonlinearity.",
            )
        ]


def _targets(y: np.ndarray | None) -> np.ndarray | None:
    """Targets for the doubled batch (forward ignores them; some Trainables need them)."""
    return None if y is None else np.concatenate([y, y])


def _views(out: np.ndarray) -> list[np.ndarray]:
    """The outputs as they are, and through the inverse of a final activation where the values
    allow one: centred per row (log-softmax), centred logs (softmax), logits (sigmoid)."""
    views = [out]
    if not np.all(np.isfinite(out)):
        return views
    if out.shape[1] >= 2:
        views.append(out - out.mean(axis=1, keepdims=True))
    inside = out.size and out.min() > _PROBABILITY_EDGE
    if inside and out.shape[1] >= 2:
        logs = np.log(out)
        views.append(logs - logs.mean(axis=1, keepdims=True))
    if inside and out.max() < 1 - _PROBABILITY_EDGE:
        views.append(np.log(out) - np.log1p(-out))
    return views


def _departure(f: np.ndarray, f_mid: np.ndarray, partner: np.ndarray) -> float:
    """The largest |f(mid) - (f(a) + f(b)) / 2| relative to |f(a) - f(b)| over the pairs whose
    outputs differ (inf when too few do: a constant model is not judged)."""
    gap = np.linalg.norm(f - f[partner], axis=1)
    off = np.linalg.norm(f_mid - (f + f[partner]) / 2, axis=1)
    scale = np.linalg.norm(f, axis=1) + np.linalg.norm(f[partner], axis=1)
    usable = gap > 1e-6 * scale  # outputs that differ beyond float32 rounding
    if usable.sum() < MIN_PAIRS:
        return math.inf
    return float(np.max(off[usable] / gap[usable]))
