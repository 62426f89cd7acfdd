"""Every example runs as its docstring says users run it (a subprocess, from a folder of its
own) and reports what its docstring promises; the layer-breakpoint example names the planted
NaN layer, loads the snapshot back, and with --pdb stops in a real debugger fed from stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
EXAMPLE = EXAMPLES / "layer_breakpoint.py"

# what each example's output must hold: the check its docstring names, or a healthy run's line
PROMISED = {
    "buggy_keras_diverging.py": ("nonfinite-loss", "nonfinite-origin", "stopped after 1 of 20 epochs"),
    "buggy_keras_raw_pixels.py": ("unnormalized-input",),
    "buggy_keras_unshuffled.py": ("unshuffled-data",),
    "buggy_keras_val_overlap.py": ("train-val-overlap",),
    "buggy_lr_too_high.py": ("overfit-batch", "nonfinite-loss", "nonfinite-origin"),
    "buggy_nan_input.py": ("nonfinite-input",),
    "buggy_unnormalized_input.py": ("unnormalized-input",),
    "buggy_val_overlap.py": ("train-val-overlap",),
    "demo.py": ("train-val-overlap", "tensorboard --logdir .mlcheck-demo"),
    "keras_digits.py": ("no problems found",),
    "layer_nan_origin.py": ("nonfinite-origin",),
    "lightning_digits.py": ("no problems found",),
    "plain_loop.py": ("0 finding(s)",),
    "sanity_keras_model.py": (),
    "sanity_lightning_model.py": (),
    "transformers_tiny.py": ("train-val-overlap",),
}
SANITY = ("sanity_keras_model.py", "sanity_lightning_model.py", "plain_loop.py")


def _example(tmp_path: Path, *command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("KERAS_BACKEND", None)  # the examples choose their backend, as for a user
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted([*PROMISED, EXAMPLE.name])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROMISED))
def test_example_runs_as_its_docstring_says(name, tmp_path):
    if name == "transformers_tiny.py":
        pytest.skip("run once, by test_transformers_example_leaves_a_run_that_analyze_reads_back")
    done = _example(tmp_path, sys.executable, str(EXAMPLES / name))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for promised in PROMISED[name]:
        assert promised in output, output[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", SANITY)
def test_sanity_example_is_fit_to_train(name, tmp_path):
    """`mlcheck sanity examples/...` as their docstrings give it: exit 0, nothing to fix."""
    done = _example(tmp_path, sys.executable, "-m", "mlcheck", "sanity", str(EXAMPLES / name))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_transformers_example_leaves_a_run_that_analyze_reads_back(tmp_path):
    """It wrote its run to a temporary folder, deleted before the script ended, and printed
    that folder as where its findings and TensorBoard events were."""
    pytest.importorskip("transformers")
    done = _example(tmp_path, sys.executable, str(EXAMPLES / "transformers_tiny.py"))
    assert done.returncode == 0, done.stderr[-3000:]
    for promised in PROMISED["transformers_tiny.py"]:
        assert promised in done.stdout + done.stderr
    (said,) = [line for line in done.stdout.splitlines() if line.startswith("findings (also in ")]
    findings = Path(said.removeprefix("findings (also in ").split("/findings.jsonl")[0])
    assert (tmp_path / findings / "findings.jsonl").exists(), said
    analyzed = _example(tmp_path, sys.executable, "-m", "mlcheck", "analyze", "runs/transformers_tiny", "--json")
    assert analyzed.returncode == 1, analyzed.stderr
    assert "train-val-overlap" in analyzed.stdout


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
