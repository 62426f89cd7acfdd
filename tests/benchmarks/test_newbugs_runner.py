"""`benchmarks/newbugs_runner.py`: a program that runs past the timeout is a row of the report
(crashed, "timed out"), not an exception that ends the batch (fix32 lost a batch's run so)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from newbugs_runner import run_one  # noqa: E402


def test_a_program_past_the_timeout_is_reported_as_crashed(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(30)\n")
    row = {"program": "slow", "kind": "bug", "right_checks": "loss-plateau"}
    result = run_one(tmp_path, row, timeout=1)
    assert result["crashed"] and result["rc"] is None and result["findings"] == []
    assert result["stderr_tail"].startswith("timed out after 1 s")
    assert 1 <= result["seconds"] < 30


def test_a_program_that_prints_its_findings_is_scored(tmp_path: Path) -> None:
    (tmp_path / "quick.py").write_text(
        'import json\nprint("FINDINGS " + json.dumps({"findings": [{"severity": "warning", '
        '"check": "loss-plateau", "key": "val-prior"}], "extra": {}}))\n'
    )
    row = {"program": "quick", "kind": "bug", "right_checks": "loss-plateau"}
    result = run_one(tmp_path, row, timeout=60)
    assert not result["crashed"] and result["caught"] and result["right_first"]
