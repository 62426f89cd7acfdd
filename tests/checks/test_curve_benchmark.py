"""`benchmarks/curves_eval.py` keeps running: a tiny seed range through the real script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_curves_eval_prints_recall_and_false_alarm_tables():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "curves_eval.py"), "--seeds", "2", "--first-seed", "1000"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "Recall" in text and "False alarms on healthy curves" in text
    for check in (
        "nonfinite-loss",
        "loss-divergence",
        "loss-plateau",
        "train-val-gap",
        "suspicious-val",
        "lr-too-high",
        "lr-too-low",
        "lr-schedule",
    ):
        assert check in text
