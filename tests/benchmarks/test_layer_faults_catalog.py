"""The per-layer programs of the fault suite (`run_faults.py --layers`): every layer fault in both
frameworks with the layer its finding must name, the clean runs with the layer checks on, and
the scoring of the named layer. The programs themselves run in the benchmark, not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

from faults.catalog import LAYER_CHECKS, programs, select  # noqa: E402
from faults.execute import score  # noqa: E402

FAULTS = {
    "layer_vanishing": "vanishing-gradient",
    "layer_exploding": "exploding-gradient",
    "layer_dead": "dead-units",
    "layer_saturated": "saturated-activations",
    "layer_frozen": "frozen-parameters",
    "layer_nan_log": "nonfinite-origin",
    "layer_nan_sqrt": "nonfinite-origin",
    "layer_nan_div": "nonfinite-origin",
}


def test_catalog_lists_every_layer_fault_in_both_frameworks_with_its_layer():
    chosen = select(layers=True)
    faults = [p for p in chosen if not p.clean]
    assert {(p.fault, p.framework) for p in faults} == {(f, fw) for f in FAULTS for fw in ("lightning", "keras")}
    for p in faults:
        assert p.catches == (FAULTS[p.fault],) and p.layer and p.layer_checks, p
    assert all(p.layer_checks for p in chosen)
    clean = {p.name for p in chosen if p.clean}
    for fw in ("lightning", "keras"):  # fine-tuning with a frozen backbone, attention masks
        assert {f"{fw}/clean_layers_frozen_backbone", f"{fw}/clean_layers_attention"} <= clean
    suite_clean = {p.name.replace("/clean_", "/clean_layers_") for p in programs() if p.clean}
    assert suite_clean <= clean  # every clean configuration of the suite, layer checks on
    assert not any(p.layer_checks for p in select())  # the suite itself is unchanged
    assert set(LAYER_CHECKS) == set(FAULTS.values()) | {"nonfinite-origin"}


def test_run_faults_lists_the_layer_programs():
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run_faults.py"), "--layers", "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "keras/layer_nan_log" in proc.stdout and "lightning/layer_frozen" in proc.stdout
    assert "keras/clean_layers_attention" in proc.stdout and "lightning/lr_x100" not in proc.stdout


def test_scoring_checks_that_the_named_layer_is_the_planted_one():
    base = {"mode": "mlcheck", "clean": False, "catches": ["nonfinite-origin"], "total_steps": 450}
    right = {"check": "nonfinite-origin", "severity": "error", "observed_step": 300, "evidence": {"layer": "net.3"}}
    wrong = {**right, "evidence": {"layer": "net.2"}}
    r = score({**base, "layer": "net.3", "findings": [right]})
    assert r["caught"] and r["named_layer"] == "net.3" and r["named_right"]
    r = score({**base, "layer": "net.3", "findings": [wrong]})
    assert r["caught"] and not r["named_right"]
    assert "named_right" not in score({**base, "findings": [right]})  # not a layer program


def test_the_frozen_layer_counts_for_sanity_and_its_named_layer_is_scored():
    frozen = [p for p in select(layers=True) if p.fault == "layer_frozen"]
    assert len(frozen) == 2 and all(p.preflight for p in frozen)
    assert not any(p.preflight for p in select(layers=True) if p.fault and p.fault != "layer_frozen")
    hit = {"check": "frozen-parameters", "severity": "warning", "evidence": {"layer": "net.2"}}
    base = {"mode": "mlcheck", "clean": False, "catches": ["frozen-parameters"], "total_steps": 450, "layer": "net.2"}
    r = score({**base, "findings": [], "sanity": {"findings": [hit]}})
    assert r["caught_sanity"] and not r["caught_live"] and r["named_right_sanity"] and "named_right" not in r
