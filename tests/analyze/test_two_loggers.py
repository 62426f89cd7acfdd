"""Lightning with a TensorBoardLogger and a CSVLogger writes the same fit twice: `mlcheck analyze`
reads it as one run (its findings once) and says which file holds the copy; two different fits
stay two runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from analyze_runs import lightning_run


def analyze(path):
    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("logger", ["both", "both-one-folder"])
def test_one_fit_logged_twice_is_one_run(tmp_path, logger):
    tb = lightning_run(tmp_path, logger=logger)
    csv = next(tmp_path.rglob("metrics.csv"))
    assert (csv.parent == tb) == (logger == "both-one-folder")
    payload = analyze(tmp_path)
    (run,) = payload["runs"]
    assert run["format"] == "tensorboard" and run["same_curves_in"] == [str(csv)]
    assert any(f"{csv} holds the same loss curves" in line for line in run["info"])
    # its findings and notes once, as for the TensorBoard files alone
    alone = analyze(next(tb.glob("events.out.tfevents.*")))
    assert [f["check"] for f in payload["findings"]] == [f["check"] for f in alone["findings"]]
    # the copy read alone is the same run
    (copy,) = analyze(csv)["runs"]
    assert copy["format"] == "lightning-csv" and copy["steps"] == run["steps"] and copy["epochs"] == run["epochs"]


def test_two_fits_with_different_curves_stay_two_runs(tmp_path):
    lightning_run(tmp_path / "a", logger="tensorboard", seed=0)
    lightning_run(tmp_path / "b", logger="csv", seed=1)
    payload = analyze(tmp_path)
    assert sorted(r["format"] for r in payload["runs"]) == ["lightning-csv", "tensorboard"]
    assert all(r["same_curves_in"] == [] for r in payload["runs"])
