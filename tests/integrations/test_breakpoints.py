"""Layer breakpoints on real Lightning runs: a built-in check by id and a user's function trip
on the planted layer, write a snapshot that `torch.load(weights_only=True)` reads back (the
batch, the layer's input, output and weights), turn on the checks they need, open the debugger
(`breakpoint()`, recorded through PYTHONBREAKPOINT), and reject bad arguments naming them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from mlcheck.breakpoints import Breakpoints
from mlcheck.checks.base import default_checks

sys.path.insert(0, str(Path(__file__).parent))
import layer_faults as faults  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

#: frames' locals seen by `record_breakpoint` (PYTHONBREAKPOINT points at it)
SEEN: list[dict] = []


def record_breakpoint(*args, **kwargs) -> None:
    SEEN.append(dict(sys._getframe(1).f_locals))


def _without_layer_checks() -> list:
    """The default checks but the layer checks: what a breakpoint adds is then its own doing."""
    return [c for c in default_checks() if c.id not in faults.LAYER_CHECK_IDS]


def _snapshots(root: Path) -> list[Path]:
    return sorted((root / "mlcheck" / "snapshots").glob("*.pt"))


def test_dead_units_breakpoint_turns_its_check_on_and_saves_the_layer(tmp_path):
    # the default set without the layer checks has no dead-units; the breakpoint adds it
    cb, module = faults.fit("dead", tmp_path, checks=_without_layer_checks(), breakpoints=["dead-units"])
    (finding,) = [f for f in cb.findings if f.check == "dead-units"]
    assert finding.key == "net.3"
    (path,) = _snapshots(tmp_path)
    assert path.name == f"step{finding.step}-net.3.pt"
    snap = torch.load(path, weights_only=True)
    assert snap["step"] == finding.step and snap["layer"] == "net.3" and snap["check"] == "dead-units"
    x, y = snap["batch"]
    assert x.shape == (32, 64) and y.shape == (32,)
    assert snap["output"].shape == (32, 128) and (snap["output"] > 0).float().mean() < 0.05  # dead ReLU
    assert snap["source"] == "net.2" and set(snap["source_weights"]) == {"weight", "bias"}
    assert snap["source_weights"]["bias"].mean() < -1  # the planted large negative bias


def test_breakpoint_turns_on_a_check_that_suppress_left_out(tmp_path, monkeypatch):
    # docs/layers.md: a breakpoint's id turns its check on where `suppress=` (or the config's
    # suppress list) left it out; the run must not fail at its first sampled step
    (tmp_path / "pyproject.toml").write_text('[tool.mlcheck]\nsuppress = ["dead-units"]\n')
    monkeypatch.chdir(tmp_path)
    for log_dir, suppress in ((tmp_path / "arg", ["dead-units"]), (tmp_path / "config", ())):
        cb, _ = faults.fit("dead", log_dir, suppress=suppress, breakpoints=["dead-units"])
        (finding,) = [f for f in cb.findings if f.check == "dead-units"]
        assert finding.key == "net.3"
        (path,) = _snapshots(log_dir)
        assert path.name == f"step{finding.step}-net.3.pt"


def test_nonfinite_origin_breakpoint_saves_the_producing_module(tmp_path):
    cb, _ = faults.fit("nan-forward", tmp_path, checks=_without_layer_checks(), breakpoints="nonfinite-origin")
    (finding,) = [f for f in cb.findings if f.check == "nonfinite-origin"]
    (path,) = _snapshots(tmp_path)
    assert path.name == f"step{finding.step}-net.3.pt"
    snap = torch.load(path, weights_only=True)
    assert torch.isfinite(snap["input"]).all() and torch.isneginf(snap["output"]).any()


def test_function_breakpoint_raises_its_finding_with_the_snapshot(tmp_path):
    def wide(stats):
        return stats.kind == "Linear" and stats.path == "net.0" and stats.abs_max > 0

    cb, _ = faults.fit("clean-mlp", tmp_path, epochs=1, checks=_without_layer_checks(), breakpoints=[wide])
    (finding,) = [f for f in cb.findings if f.check == "breakpoint"]
    assert finding.evidence["condition"] == "wide" and finding.evidence["layer"] == "net.0"
    snap = torch.load(finding.evidence["snapshot"], weights_only=True)
    assert snap["input"].shape == (32, 64) and snap["weights"]["weight"].shape == (128, 64)
    # the hint names the file (it pointed to docs/layers.md, which an installed package lacks)
    assert f"Load {finding.evidence['snapshot']} (torch.load(path, weights_only=True))" in finding.hint
    assert [f for f in cb.findings if f.check in faults.LAYER_CHECK_IDS] == []  # no check was added


def test_pdb_opens_the_debugger_with_the_finding_and_snapshot(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONBREAKPOINT", f"{__name__}.record_breakpoint")
    SEEN.clear()
    breakpoints = Breakpoints(["nonfinite-origin"], pdb=True)
    faults.fit("nan-forward", tmp_path, checks=_without_layer_checks(), breakpoints=breakpoints)
    (frame,) = SEEN
    assert frame["finding"].check == "nonfinite-origin" and frame["trip"].layer == "net.3"
    assert torch.isneginf(frame["snapshot"]["output"]).any() and frame["path"].exists()


@pytest.mark.parametrize(
    "value, error, words",
    [
        ("loss-plateau", ValueError, "not per-layer checks"),
        ("no-such-check", ValueError, "available: "),
        ([3], TypeError, "breakpoints takes"),
        ([], ValueError, "breakpoints is empty"),
        ({"x": 1}, TypeError, "breakpoints as a mapping"),
        # bytes were iterated into numbers: "got 100" named neither the value nor what to pass
        (b"dead-units", TypeError, "got b'dead-units' (bytes); pass the id as a str: 'dead-units'"),
        ([b"dead-units"], TypeError, "pass the id as a str: 'dead-units'"),
        (2.5, TypeError, "per-layer check ids (strings such as 'dead-units'), functions of a layer's"),
        (["dead_units"], ValueError, "(did you mean 'dead-units'?)"),
    ],
)
def test_bad_breakpoints_name_the_argument(value, error, words):
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback

    for callback in (MLCheckCallback, KerasCallback):
        with pytest.raises(error, match="breakpoints") as info:
            callback(breakpoints=value)
        assert words in str(info.value)
    with pytest.raises(TypeError, match="pdb"):
        Breakpoints("dead-units", pdb="yes")
