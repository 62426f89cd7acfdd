"""benchmarks/reallogs/late_causes.py: each blocker named from a curve built to have it (issue 12,
branch over26). The counts are what docs/benchmarks.md section 1b gives for the late hits."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from mlcheck.checks.generalization import TrainValGap

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location(
    "reallogs_late_causes", ROOT / "benchmarks" / "reallogs" / "late_causes.py"
)
late_causes = importlib.util.module_from_spec(_SPEC)
sys.modules["reallogs_late_causes"] = late_causes
_SPEC.loader.exec_module(late_causes)


def _early(values: list[float], at_best: bool = False) -> str:
    return late_causes.early_blocker(np.array(values, dtype=np.float64), TrainValGap(), at_best)


def _stretch(values: list[float]) -> str:
    return late_causes.stretch_blocker(np.array(values, dtype=np.float64), TrainValGap())


def test_the_early_tests_blockers() -> None:
    assert _early([1.0, 0.8, 0.7, 0.75, 0.8], at_best=True) == "metric at best"
    assert _early([1.0, 0.8, 0.7, 0.75]) == "few since min"
    assert _early([1.0, 0.8, 0.7, 0.75, 0.8]) == "fit noise undefined"  # 5 epochs from the lowest's p before
    assert _early([1.0, 0.8, 0.6, 0.5, 0.45, 0.4, 0.41, 0.415]) == "GL under 5%"
    assert _early([1.0, 0.8, 0.6, 0.5, 0.45, 0.4, 0.48, 0.52]) == "under z x fit noise"
    assert _early([1.0, 0.7, 0.5, 0.42, 0.40, 0.42, 0.48, 0.56]) == "passes"  # a smooth U, 14% and 33% up


def test_the_stretch_tests_blockers() -> None:
    assert _stretch([1.0, 0.8, 0.7, 0.75, 0.8, 0.9, 1.0]) == "not 8 epochs yet"
    saw = [1.0, 0.7, 0.5, 0.40, 0.52, 0.38, 0.55, 0.41, 0.58, 0.44, 0.60, 0.46]
    assert _stretch(saw) == "bar: noise"
    climb = [1.0, 0.7, 0.5, 0.40, 0.39, 0.40, 0.42, 0.45, 0.49, 0.54, 0.60, 0.67]
    assert _stretch(climb) == "passes"


def test_the_five_epoch_stretches_main_asks_too() -> None:
    # a rise the 3-epoch stretches hide in the noise and the 5-epoch ones (main since over29) see
    saw = [1.057, 0.908, 0.741, 0.69, 0.41, 0.581, 0.508, 0.491, 0.581, 0.612, 0.606, 0.692]
    saw += [0.649, 0.673, 0.576, 0.626, 0.666, 0.643]
    check = TrainValGap()
    val = np.array(saw, dtype=np.float64)
    assert late_causes.stretch_blocker(val, check) == "bar: noise"
    assert late_causes.stretch_blocker(val, check, 5, late_causes._long_z(check)) == "passes"


def test_the_epochs_a_stretch_needs_after_the_lowest() -> None:
    # the lowest epoch is 2 epochs back: its stretch has no full recent stretch after it yet
    assert _stretch([1.0, 0.9, 0.8, 0.7, 0.65, 0.6, 0.5, 0.45, 0.52, 0.6]) == "waits: few since lowest"


def test_the_classes_of_a_hit() -> None:
    classify = late_causes.classify
    assert classify(10, 6, 5, None, [], 3) == "before the labelled minimum"
    assert classify(10, 12, 10, None, ["waits: few since lowest"], 3) == "at target (0 to +2)"
    assert classify(10, 20, 3, None, ["bar: noise"] * 9, 3) == "label question"
    assert classify(10, 18, 10, 15, ["bar: noise"] * 4 + ["metric hold (INFO)"] * 3, 3).startswith("INFO first")
    assert classify(3, 6, 3, None, ["waits: 8 validations"] * 2, 3) == "epochs the test needs: 8 validations"
    assert classify(9, 12, 9, None, ["waits: few since lowest"] * 2, 3) == "epochs the test needs: after the lowest"
    assert classify(5, 11, 5, None, ["waits: few since lowest", "bar: noise", "bar: 5% floor"], 3) == "bar: 5% floor"


def test_a_real_late_hit_replayed() -> None:
    # dev, Chollet 3.6 c50-2: lowest validation loss at epoch 8, told INFO (the accuracy held) from
    # +4 and WARNING at +8, as `score.py` gives it
    got = late_causes.replay("deep-learnin-3-6-classifying-newswires-c50-2")
    assert got["fired"] == 16 and got["best_epoch"] == 8
    assert got["info"] is not None and got["info"] < got["fired"]
    blockers = [b for epoch, b, _, _ in got["seen"] if 8 < epoch < 16]
    assert blockers[:3] == ["waits: few since lowest", "waits: few since lowest", "bar: 5% floor"]
    assert blockers[3:] == ["metric hold (INFO)"] * 4
