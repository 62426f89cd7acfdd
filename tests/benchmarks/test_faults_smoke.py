"""CI smoke subset of the fault-injection benchmark (benchmarks/run_faults.py --smoke).

Three real programs run through the real harness in subprocesses: a clean Lightning run, which
must raise no WARNING or ERROR, and two faults (NaN inputs under Lightning, a validation set
drawn from the training rows under Keras), which mlcheck must catch with one of their listed
check ids; the frameworks' own safety nets run on the same programs as the comparison row. The
full suite is not run in CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

from faults.catalog import SMOKE, programs, select  # noqa: E402
from faults.execute import score  # noqa: E402


def test_catalog_states_what_catches_each_fault():
    all_programs = programs()
    names = [p.name for p in all_programs]
    assert len(names) == len(set(names))
    faults = [p for p in all_programs if not p.clean]
    assert {p.framework for p in faults} == {"lightning", "keras"}
    assert all(p.catches for p in faults)
    assert not any(p.catches for p in all_programs if p.clean)
    assert {p.name for p in select(smoke=True)} == SMOKE
    quick = select(quick=True)
    assert {p.fault for p in quick if not p.clean} == {p.fault for p in faults}


def test_scoring_counts_only_listed_ids_at_warning_or_above():
    base = {"mode": "mlcheck", "clean": False, "catches": ["nonfinite-loss"], "total_steps": 200}
    hit = {"check": "nonfinite-loss", "severity": "error", "observed_step": 50}
    wrong = {"check": "loss-plateau", "severity": "warning", "observed_step": 10}
    info = {"check": "nonfinite-loss", "severity": "info", "observed_step": 5}
    r = score({**base, "findings": [wrong, hit]})
    assert r["caught"] and r["caught_by"] == ["live"] and r["latency"] == 0.25
    assert r["wrong_ids"] == ["loss-plateau"]
    r = score({**base, "findings": [info]})
    assert not r["caught"] and r["info_only"]
    r = score({**base, "findings": [], "sanity": {"findings": [{**hit, "observed_step": 0}]}})
    assert r["caught"] and r["caught_by"] == ["sanity"] and r["latency"] == 0.0
    clean = {**base, "clean": True, "catches": []}
    assert score({**clean, "findings": [info]})["false_alarm"] is False
    assert score({**clean, "findings": [wrong]})["false_alarm"] is True
    net = {"mode": "safety_net", "clean": False, "catches": ["x"], "total_steps": 100}
    r = score({**net, "stopped": {"reason": "patience", "step": 40}})
    assert r["caught"] and not r["caught_strict"] and r["latency"] == 0.4


# a guard against a hang, not a speed target: a busy 2-core machine (load 30) took over 280 s
@pytest.mark.timeout(960)
def test_smoke_subset_end_to_end(tmp_path):
    out = tmp_path / "faults.json"
    proc = subprocess.run(
        # sanity only where the suite needs it (the clean run), to keep CI under a minute
        [sys.executable, str(BENCH / "run_faults.py"), "--smoke", "--sanity", "preflight", "--json-out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    results = {(r["program"], r["mode"]): r for r in data["results"]}
    assert len(results) == 2 * len(SMOKE)
    errors = {k: r.get("error") for k, r in results.items() if r.get("error")}
    assert not errors, errors
    clean = results[("lightning/clean_adam_constant", "mlcheck")]
    assert clean["sanity"]["available"] and "error" not in clean["sanity"], clean["sanity"]
    assert not clean["false_alarm"], [
        f for f in clean["findings"] + clean["sanity"]["findings"] if f["severity"] != "info"
    ]
    for name in ("lightning/nan_inputs", "keras/val_overlap"):
        r = results[(name, "mlcheck")]
        assert r["caught"], (name, [(f["check"], f["severity"]) for f in r["findings"]])
        assert 0.0 <= r["latency"] <= 1.0
    # the safety net trains the same program; a NaN validation loss stops Lightning's
    # EarlyStopping(check_finite=True), and nothing in it looks at duplicated rows
    nan_net = results[("lightning/nan_inputs", "safety_net")]
    assert nan_net["total_steps"] == results[("lightning/nan_inputs", "mlcheck")]["total_steps"]
    assert nan_net["stopped"]["reason"] == "nonfinite"
    assert not results[("keras/val_overlap", "safety_net")]["caught_strict"]
    assert "### Summary" in out.with_suffix(".md").read_text()


@pytest.mark.timeout(400)
def test_label_leakage_is_caught_live_in_the_first_epoch(tmp_path):
    """The fault suite's `label_feature` program (breast_cancer with the label copied into a
    feature): both callbacks at their defaults, no pre-flight, catch it before epoch 1 ends."""
    out = tmp_path / "faults.json"
    cmd = [sys.executable, str(BENCH / "run_faults.py"), "--only", "label_feature", "--modes", "mlcheck"]
    proc = subprocess.run(
        [*cmd, "--sanity", "none", "--json-out", str(out)], capture_output=True, text=True, timeout=380, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["program"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == {"lightning/label_feature", "keras/label_feature"}
    for name, r in results.items():
        leaks = [f for f in r["findings"] if f["check"] == "feature-leakage" and f["severity"] == "error"]
        assert leaks and leaks[0]["epoch"] == 0, (name, r["findings"])
