"""benchmarks/reallogs/lag_candidates.py: each candidate fires on the shape it is built for and not
on a flat one, with the training conditions of `train-val-gap` (issue 12, branch over32)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location(
    "reallogs_lag_candidates", ROOT / "benchmarks" / "reallogs" / "lag_candidates.py"
)
cands = importlib.util.module_from_spec(_SPEC)
sys.modules["reallogs_lag_candidates"] = cands
_SPEC.loader.exec_module(cands)

_TRAIN = np.linspace(1.0, 0.2, 16)
_CLIMB = np.array([1.0, 0.8, 0.65, 0.55, 0.5, 0.48, 0.47, 0.48, 0.5, 0.53, 0.56, 0.6, 0.64, 0.68, 0.72, 0.77])
_FLAT = 0.5 + 0.02 * np.resize([1.0, -1.0, 0.5, -0.5], 16)


def test_the_candidates_fire_on_a_climb_and_not_on_a_flat_noisy_plateau() -> None:
    for name in ("cusum k0.5 h5 (ARL0 938)", "last-3 z3, descent noise"):
        rule = cands.CANDIDATES[name]
        assert cands.first_firing(rule, _TRAIN, _CLIMB, None) is not None, name
        assert cands.first_firing(rule, _TRAIN, _FLAT, None) is None, name


def test_the_training_conditions_hold_a_rise_with_a_flat_training_loss() -> None:
    flat_train = np.full(16, 0.4)
    assert cands.first_firing(cands.CANDIDATES["cusum k0.5 h5 (ARL0 938)"], flat_train, _CLIMB, None) is None


def test_the_witnessed_rules_need_the_accuracy_to_fall() -> None:
    rule = cands.CANDIDATES["cusum k0.5 h5 + acc"]
    held = np.linspace(0.6, 0.9, 16)  # still climbing
    fell = np.r_[np.linspace(0.6, 0.86, 7), np.linspace(0.85, 0.70, 9)]
    assert cands.first_firing(rule, _TRAIN, _CLIMB, held) is None
    assert cands.first_firing(rule, _TRAIN, _CLIMB, fell) is not None


def test_the_scorer_lines_are_read(tmp_path: Path) -> None:
    runs = tmp_path / "runs.txt"
    runs.write_text(
        "  dev      overfitting HIT  lag    8  some-run  train-val-gap\n"
        "  dev      healthy     -    lag None  other-run  \n"
    )
    assert cands.main_lines(str(runs)) == {"some-run": ("overfitting", "HIT", 8), "other-run": ("healthy", "-", None)}


def test_the_short_run_rules_judge_10_validations_at_most() -> None:
    # (over35) a clean turn at epoch 5 of a 10-epoch run, training lower at every epoch: told within
    # the first 10 validations; the same rules never speak on a longer prefix
    rule = cands.SHORT_CANDIDATES["short: last 3, z 3, training falling each epoch since the lowest"]
    climb = np.array([1.0, 0.7, 0.55, 0.5, 0.48, 0.5, 0.56, 0.64, 0.72, 0.8])
    fired = cands.first_firing(rule, _TRAIN[:10], climb, None)
    assert fired is not None and fired <= 10
    late = np.r_[np.full(10, 0.5) + 0.02 * np.resize([1.0, -1.0], 10), 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
    assert cands.first_firing(rule, _TRAIN, late, None) is None
    flat_train = np.r_[_TRAIN[:5], np.full(5, _TRAIN[4])]  # training flat after the turn: no witness
    assert cands.first_firing(rule, flat_train, climb, None) is None
