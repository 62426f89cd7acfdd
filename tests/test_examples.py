"""The layer-breakpoint example runs as users run it (a subprocess): it names the planted NaN
layer, loads the snapshot back, and with --pdb stops in a real debugger fed from stdin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parent.parent / "examples" / "layer_breakpoint.py"


def _run(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), "--log-dir", str(tmp_path / "run"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )


def test_layer_breakpoint_example_finds_the_nan_layer_and_loads_the_snapshot(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "produced by layer 3 (Scores) in the forward pass" in done.stdout
    assert "snapshots/step60-3.pt: layer 3 at step 60" in done.stdout
    assert "output -inf values:" in done.stdout and "batch: (32, 64) inputs, (32,) labels" in done.stdout
    assert (tmp_path / "run" / "mlcheck" / "snapshots" / "step60-3.pt").exists()


def test_layer_breakpoint_example_opens_pdb_where_it_trips(tmp_path):
    commands = "p finding.check, trip.layer, tuple(snapshot['output'].shape)\nc\n"
    done = _run(tmp_path, "--pdb", stdin=commands)
    assert done.returncode == 0, done.stderr
    assert "(Pdb) ('nonfinite-origin', '3', (32, 32))" in done.stdout
    assert "snapshots/step60-3.pt" in done.stdout  # training went on after `c`
    quit_ = _run(tmp_path / "q" if (tmp_path / "q").mkdir() is None else tmp_path, "--pdb", stdin="q\n")
    assert quit_.returncode != 0 and "BdbQuit" in quit_.stderr  # `q` stops the run there
    assert "snapshot " not in quit_.stdout
