"""benchmarks/reallogs/miss_replay.py: what says no to `train-val-gap` on every prefix of a missed
overfitting run (issue 12, branch over29). Curves built to have each blocker, and two real missed
runs replayed through the real check: the counts are what docs/benchmarks.md section 1b gives."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from mlcheck.checks.generalization import TrainValGap

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location(
    "reallogs_miss_replay", ROOT / "benchmarks" / "reallogs" / "miss_replay.py"
)
miss_replay = importlib.util.module_from_spec(_SPEC)
sys.modules["reallogs_miss_replay"] = miss_replay
_SPEC.loader.exec_module(miss_replay)


def _arr(values: list[float]) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_the_short_runs_blockers() -> None:
    check = TrainValGap()
    assert miss_replay.short_blocker(_arr([1.0, 0.8, 0.7, 0.75, 0.8]), check, 1) == "too short: few since lowest"
    assert miss_replay.short_blocker(_arr([1.0, 0.7, 0.75, 0.72, 0.8, 0.78]), check, 1) == "too short: a fall"
    assert miss_replay.short_blocker(_arr([1.0, 0.7, 0.71, 0.72, 0.73]), check, 1) == "too short: under 10%"


def test_the_stretch_tests_blockers() -> None:
    check = TrainValGap()
    saw = _arr([1.0, 0.7, 0.5, 0.40, 0.52, 0.38, 0.55, 0.41, 0.58, 0.44, 0.60, 0.46])
    assert miss_replay.stretch_blocker(saw, np.arange(1.0, 13.0), check) == "bar: noise"
    climb = _arr([1.0, 0.7, 0.5, 0.40, 0.39, 0.40, 0.42, 0.45, 0.49, 0.54, 0.60, 0.67])
    assert miss_replay.stretch_blocker(climb, np.arange(1.0, 13.0), check) == "passes"


def test_a_label_question_is_measured_from_the_lowest_stretch() -> None:
    assert miss_replay.label_question(_arr([1.0, 0.7, 0.5, 0.46, 0.40, 0.46, 0.45, 0.44, 0.46, 0.45, 0.45]))
    assert not miss_replay.label_question(_arr([1.0, 0.7, 0.5, 0.40, 0.39, 0.40, 0.42, 0.45, 0.49, 0.54, 0.60]))


def test_real_misses_replayed_through_the_real_check() -> None:
    # held-out-3 rickiepark c135-32: validation 0.35 -> 0.75 on a flat training loss (recall24's "other")
    seen, val = miss_replay.replay("rickiepark-handson-ml2-10-neural-nets-with-keras-c135-32")
    assert len(val) == 45 and seen[-1][1] == "training-fall guard"
    # held-out-8 hieuitmhg doanai: 7 epochs, the accuracy held: an INFO, no WARNING
    seen, val = miss_replay.replay("hieuitmhg-doanai-training-history-csv")
    assert len(val) == 7 and seen[-1][1] == "metric hold (INFO)"
