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
