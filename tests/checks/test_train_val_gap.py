"""train-val-gap as a sequential test on short synthetic epoch curves: it catches a short-run
overfit within a few epochs of the turn and a memorising model on tiny data, and stays silent
on over-confidence with accuracy still climbing, noisy plateaus, warm-up spikes and cosine
restarts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcheck import Monitor, Severity
from mlcheck.checks.base import get_check
from mlcheck.checks.generalization import TrainValGap, cusum, turn_free_noise


def gap_findings(rows, **kwargs):
    m = Monitor(checks=[TrainValGap(**kwargs)], warn=False, strict=True)
    for row in rows:
        m.log_epoch(**row)
    m.close()
    return [f for f in m.findings if f.check == "train-val-gap"]


def warnings_of(rows, **kwargs):
    return [f for f in gap_findings(rows, **kwargs) if f.severity >= Severity.WARNING]


def rows_of(train, val, acc=None, train_acc=None):
    rows = []
    for e, (t, v) in enumerate(zip(train, val)):
        row = {"epoch": e, "train_loss": float(t), "val_loss": float(v)}
        metrics = {}
        if acc is not None:
            metrics["accuracy"] = float(acc[e])
        if metrics:
            row["val_metrics"] = metrics
        rows.append(row)
    return rows


def falling(n, start=1.0, end=0.1):
    return start * (end / start) ** (np.arange(n) / (n - 1))


@pytest.mark.parametrize("best, rise", [(1, 0.25), (2, 0.4), (2, 0.7)])
def test_short_run_overfit_is_caught_within_a_few_epochs(best, rise):
    """Ten epochs, validation loss lowest at epoch 2-3, then climbing 25-70% while training falls."""
    n = 10
    rng = np.random.default_rng(best)
    val = np.empty(n)
    val[: best + 1] = np.linspace(0.7, 0.4, best + 1)
    val[best + 1 :] = 0.4 * (1 + rise * np.arange(1, n - best) / (n - 1 - best))
    val *= 1 + 0.005 * rng.standard_normal(n)
    found = warnings_of(rows_of(falling(n), val))
    assert found, "short-run overfit missed"
    assert found[0].evidence["best_epoch"] == best
    assert found[0].epoch - best <= 4


def test_memorising_tiny_data_is_caught():
    """200 samples: training accuracy reaches 1.0, validation accuracy sits at chance and the
    validation loss creeps up from its first epochs."""
    n = 10
    train = np.array([0.69, 0.5, 0.28, 0.12, 0.058, 0.031, 0.017, 0.0098, 0.0058, 0.0035])
    val = np.array([0.692, 0.695, 0.713, 0.72, 0.731, 0.735, 0.745, 0.752, 0.76, 0.77])
    acc = 0.52 + 0.004 * np.sin(np.arange(n))
    assert warnings_of(rows_of(train, val, acc))


def test_info_not_warning_while_validation_accuracy_still_climbs():
    """A 5% rise of the validation loss through over-confidence, accuracy still clearly improving."""
    n = 14
    val = np.r_[np.linspace(0.6, 0.40, 7), 0.40 * (1 + 0.05 * np.arange(1, 8) / 7)]
    acc = np.linspace(0.70, 0.90, n)
    found = gap_findings(rows_of(falling(n), val, acc))
    assert all(f.severity is Severity.INFO for f in found)


def test_warning_once_accuracy_stalls_as_the_loss_climbs():
    n = 14
    val = np.r_[np.linspace(0.6, 0.40, 5), 0.40 * (1 + 0.4 * np.arange(1, 10) / 9)]
    acc = np.r_[np.linspace(0.70, 0.85, 5), np.full(9, 0.85)]
    found = warnings_of(rows_of(falling(n), val, acc))
    assert found and "overfitting" in found[0].message


def test_silent_on_noisy_plateau_at_convergence():
    rng = np.random.default_rng(3)
    for seed in range(8):
        rng = np.random.default_rng(seed)
        n = 30
        val = (0.3 + 0.5 * np.exp(-np.arange(n) / 3)) * (1 + 0.03 * rng.standard_normal(n))
        assert not warnings_of(rows_of(falling(n, 1.0, 0.2), val)), seed


def test_silent_on_warmup_spike():
    """A 2-3x validation spike in the first epochs of a warm-up, then a normal descent."""
    n = 12
    val = 0.3 + 0.5 * np.exp(-np.arange(n) / 3)
    val[1] *= 2.5
    val[2] *= 1.8
    assert not warnings_of(rows_of(falling(n), val))


def test_silent_on_cosine_restarts():
    """SGDR: every restart lifts both losses for an epoch or two, then both fall lower."""
    n, period = 30, 6
    phase = np.arange(n) % period
    base = 0.3 + 0.4 * np.exp(-np.arange(n) / 10)
    bump = 0.25 * np.exp(-phase)  # high right after a restart, gone within the cycle
    train = base * (1 + bump) - 0.1
    val = base * (1 + bump)
    assert not warnings_of(rows_of(train, val))


def test_single_wild_epoch_never_decides_alone():
    n = 12
    val = 0.3 + 0.5 * np.exp(-np.arange(n) / 3)
    val[9] *= 20.0
    assert not warnings_of(rows_of(falling(n), val))


def test_turn_is_not_read_as_noise():
    """A clean V: the noise comes from the smooth arms, not from the corner at the minimum."""
    v = np.log(np.r_[np.linspace(1.0, 0.5, 6), np.linspace(0.5, 0.8, 6)[1:]])
    assert turn_free_noise(v, 5) < 1e-6
    assert cusum(np.array([10.0, 0.0, 0.0]), drift=1.0, cap=3.0) == pytest.approx(1.0)


def test_old_constructor_arguments_still_accepted():
    check = get_check("train-val-gap")(patience=3, z=3.0, min_rise=0.05, trend_z=3.0, min_rise_range=0.02)
    assert check.patience == 3 and math.isclose(check.min_rise, 0.05)
