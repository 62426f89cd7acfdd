"""benchmarks/reallogs/miss_causes.py: each cause named from a curve built to have it (issue 12,
branch recall24). The classes are what docs/benchmarks.md section 1b counts over the real misses."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from mlcheck.checks.generalization import TrainValGap

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location(
    "reallogs_miss_causes", ROOT / "benchmarks" / "reallogs" / "miss_causes.py"
)
miss_causes = importlib.util.module_from_spec(_SPEC)
sys.modules["reallogs_miss_causes"] = miss_causes
_SPEC.loader.exec_module(miss_causes)


def _cause(values: list[float]) -> str:
    return miss_causes.cause(np.array(values, dtype=np.float64), TrainValGap())[0]


def test_short_and_unreadable_runs() -> None:
    assert _cause([1.0, 0.8, 0.7, 0.75, 0.8, 0.9, 1.0]) == "too short"
    assert _cause([1.0, 0.8, float("nan"), 0.7, 0.75, 0.8, 0.9, 1.0, 1.1]) == "reader problem"


def test_one_low_epoch_is_a_label_question() -> None:
    # rule 4's 10% holds against the one low epoch (0.40 -> 0.45), not against its stretch
    flat = [1.0, 0.7, 0.5, 0.46, 0.40, 0.46, 0.45, 0.44, 0.46, 0.45, 0.45]
    assert _cause(flat) == "label question"


def test_a_sawtooth_rise_is_under_the_noise_bar() -> None:
    saw = [1.0, 0.7, 0.5, 0.40, 0.52, 0.38, 0.55, 0.41, 0.58, 0.44, 0.60, 0.46]
    assert _cause(saw) == "rise under the noise bar"


def test_a_clean_climb_passes_the_stretch_test() -> None:
    climb = [1.0, 0.7, 0.5, 0.40, 0.39, 0.40, 0.42, 0.45, 0.49, 0.54, 0.60, 0.67]
    assert _cause(climb) == "other"
