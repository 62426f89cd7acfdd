"""train-val-gap's stretch test on 5-epoch stretches as well as `patience`-epoch ones (issue 12,
branch over29): a lasting rise on a curve too noisy for 3-epoch means, told; the healthy shapes
of the issue (noisy plateaus at convergence, a 5% rise while the accuracy climbs)
silent on runs long enough for the longer stretch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mlcheck import Monitor, Severity
from mlcheck.checks.base import get_check

LOG = (
    Path(__file__).parents[2] / "benchmarks/reallogs/runs/rickiepark-handson-ml2-10-neural-nets-with-keras-c135-39.csv"
)


def _findings(rows: list[dict]) -> list:
    m = Monitor(checks=[get_check("train-val-gap")()], warn=False, strict=True)
    for row in rows:
        m.log_epoch(**row)
    m.close()
    return [f for f in m.findings if f.check == "train-val-gap"]


def _warned(rows: list[dict]) -> list:
    return [f for f in _findings(rows) if f.severity >= Severity.WARNING]


def _logged() -> list[dict]:
    lines = [line.split(",") for line in LOG.read_text().splitlines()[1:]]
    return [{"epoch": int(e), "train_loss": float(t), "val_loss": float(v)} for e, t, v in lines]


def test_a_lasting_rise_on_a_noisy_curve_is_told_from_5_epoch_stretches() -> None:
    """held-out-3 rickiepark handson-ml2 ch. 10 cell 135 fit 39, as logged (95 epochs of a Keras
    regression): validation loss at its lowest 0.2894 at epoch 85 on a plateau that swings
    0.29-0.47 from epoch to epoch, then 0.357, 0.312, 0.333, 0.339, 0.647, 0.543, 0.782, 0.540,
    0.612, 0.497 while the training loss keeps falling: the last 3-epoch mean (0.550) is under its
    noise bar, the last 5-epoch mean (0.595) is over its own, from the best 5-epoch
    stretch (0.316 around epoch 70). Missed before this change."""
    rows = _logged()
    (f,) = _warned(rows)
    assert (f.epoch, f.evidence["best_epoch"]) == (95, 70)  # the best 5-epoch stretch, 0.316
    # the same log cut before the rise: silent (the swings of the plateau are not a rise)
    assert not _warned(rows[:89])


def _plateau(n: int, seed: int, rel: float) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n):
        level = 0.3 + 1.5 * math.exp(-e / 4)
        rows.append(
            {
                "epoch": e,
                "train_loss": (0.2 + 1.5 * math.exp(-e / 4)) * (1 - 0.002 * e),
                "val_loss": level * (1 + rel * rng.standard_normal()),
                "val_metrics": {"accuracy": 0.9 - 0.3 * math.exp(-e / 4) + rng.integers(-2, 3) / 500},
            }
        )
    return rows


@pytest.mark.parametrize("seed", range(20))
def test_a_long_noisy_plateau_at_convergence_stays_silent(seed: int) -> None:
    # 60 epochs flat at 0.3 with 10% noise per epoch, training still creeping down
    assert not _warned(_plateau(60, seed, 0.10))


def test_a_5_percent_rise_with_climbing_accuracy_stays_silent() -> None:
    # (cosine restarts on 18 epochs, long enough for the 5-epoch stretches: test_curve_checks.py's
    # test_train_val_gap_silent_on_healthy_short_curves, which passes with this change)
    creeping = []
    for e in range(40):
        rise = 1.0 + 0.05 * min(1.0, max(0, e - 20) / 5)
        creeping.append(
            {
                "epoch": e,
                "train_loss": 0.2 + 1.5 * math.exp(-e / 4) - 0.002 * e,
                "val_loss": (0.3 + 1.5 * math.exp(-e / 4)) * rise,
                "val_metrics": {"accuracy": min(0.95, 0.7 + 0.01 * e)},
            }
        )
    assert not _warned(creeping)
