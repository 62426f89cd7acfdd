"""`mlcheck sanity` (the real command) on two regression-target bugs: house prices left in
dollars under MSE (`unnormalized-input`, WARNING, key `targets`) and the digit labels fed to MSE
through one output unit (`output-loss-mismatch`, INFO, key `class-indices`: from the labels
alone they could be ordinal scores). The clean digits classifier raises neither."""

import json
import subprocess
import sys

import pytest

SELECT = "unnormalized-input,output-loss-mismatch"


def sanity_json(path):
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(path), "--json", "--select", SELECT, "--budget-seconds", "300"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


def test_unscaled_price_targets(fixtures):
    code, findings = sanity_json(fixtures / "buggy_unscaled_targets.py")
    [f] = [f for f in findings if f["check"] == "unnormalized-input"]
    assert f["severity"] == "warning"
    assert 2e5 < f["evidence"]["target_mean"] < 2.7e5 and f["evidence"]["loss_name"] == "mse"
    assert "mean 2" in f["message"] and "Standardise the targets" in f["hint"]
    assert code == 0  # a warning fails only from --fail-on warning


@pytest.mark.parametrize(("name", "expected"), [("buggy_class_indices", True), ("torch_clean", False)])
def test_class_indices_under_mse(fixtures, name, expected):
    _, findings = sanity_json(fixtures / f"{name}.py")
    found = [f for f in findings if f["check"] == "output-loss-mismatch"]
    if expected:
        [f] = found
        assert (f["severity"], f["evidence"]["classes"]) == ("info", 10)
        assert "give the last layer 10 units" in f["hint"]
    else:
        assert found == []
    assert not [f for f in findings if f["check"] == "unnormalized-input"]
