"""`mlcheck checks`: `--json`, and one line per check when piped."""

import json
import subprocess
import sys

from mlcheck.docs import builtin_checks as registry  # the catalogue the command lists (no test checks)


def _run(*args):
    # stdout is a pipe here, as in `mlcheck checks | grep ...`
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "checks", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "80", "PATH": "", "PYTHONHASHSEED": "0"},
    )


def test_checks_json_lists_every_check():
    done = _run("--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["id"] for r in rows] == list(registry())
    row = next(r for r in rows if r["id"] == "label-shift")
    assert row == {
        "id": "label-shift",
        "family": "data",
        "severity": "warning",
        "default": True,
        "summary": registry()["label-shift"].doc()["summary"],
        "file": "mlcheck/checks/label_shift.py",
    }


def test_piped_checks_print_one_line_per_check():
    done = _run()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(registry())
    assert lines[0].split("\t")[0] == next(iter(registry()))
    assert all(len(line.split("\t")) == 5 for line in lines)


def test_analyze_help_names_every_input_it_reads():
    # README shows `mlcheck analyze history.json`; the help listed every input but that one.
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "80", "PATH": ""},
    )
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0, proc.stderr
    for kind in ("TensorBoard log dir", "CSVLogger", "History", "metrics.csv"):
        assert kind in text, (kind, proc.stdout)
