"""Findings the rest of a log contradicts, demoted to INFO by `mlcheck analyze` (issue 12, branch
`hind18`): each shape is one of held-out-7's false alarms (docs/benchmarks.md, "held-out-7"),
written here as a Keras `CSVLogger` file, beside a twin whose later log does not contradict the
finding and which keeps its WARNING."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import mlcheck


def _csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """A Keras CSVLogger file of these per-epoch columns, epochs counted from 1."""
    names = list(columns)
    n = len(columns[names[0]])
    rows = [",".join([str(e + 1), *(f"{columns[c][e]:.7g}" for c in names)]) for e in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(["epoch", *names]), *rows]) + "\n")
    return path


def _findings(path: Path, check: str) -> list[mlcheck.Finding]:
    (run,) = mlcheck.analyze(path).runs
    return [f for f in run.findings if f.check == check]


def test_hind18_lr_too_low_whose_loss_then_falls_fast_is_demoted(tmp_path):
    # devtorch-genome-lab-p version 5 (held-out-7): 1.7% in 6 epochs, told "falls steadily but
    # slowly"; then 0.6608 -> 0.5666 in 4 epochs (14%). The twin keeps falling slowly.
    e = np.arange(10)
    rng = np.random.default_rng(0)
    slow = 1.2 - 0.0095 * e + rng.normal(0, 0.0008, 10)
    fast = np.where(e > 5, slow[5] - 0.045 * (e - 5), slow)
    told = {}
    for name, loss in (("fast", fast), ("slow", slow)):
        path = _csv(tmp_path / name / "training.log", {"loss": loss, "val_loss": loss - 0.01})
        told[name] = _findings(path, "lr-too-low")
    # the slow twin is still told; from epoch points alone (no update size logged) at INFO (fa35)
    assert [f.severity.value for f in told["slow"]] == ["info"], told["slow"]
    assert told["slow"][0].evidence.get("epoch_points_only") is True, told["slow"]
    assert "demoted_in_hindsight" not in told["slow"][0].evidence, told["slow"]
    (demoted,) = told["fast"]
    assert demoted.severity.value == "info" and demoted.epoch == told["slow"][0].epoch, demoted
    assert "the loss then fell 1" in demoted.message and "in 3 epochs" in demoted.message, demoted.message
    assert demoted.evidence["demoted_in_hindsight"] is True and demoted.evidence["later_fraction_fallen"] > 0.1
    # its fix is told as what to do if a new run does the same and does not recover, not as an
    # order for this run (whose loss recovered): "Raise the learning rate 3-10x" alone misled
    slow_hint = told["slow"][0].hint
    assert slow_hint and not slow_hint.startswith("Nothing to change"), slow_hint
    assert "epoch_points_only" not in demoted.evidence, demoted.evidence  # demoted once, for what came later
    check_hint = "Raise the learning rate 3-10x; check that warmup or a scheduler is not holding it low."
    assert slow_hint.endswith(check_hint), slow_hint
    assert demoted.hint == (
        f"Nothing to change for this run as logged. If a new run shows the same and does not recover: {check_hint}"
    ), demoted.hint


def _chance_run(train_falls: bool, val_falls: bool) -> dict[str, np.ndarray]:
    """electronic-drowsiness-d (held-out-7): a binary classifier at chance (training loss ln 2 with
    an epoch-to-epoch noise of 0.012, validation accuracy the majority's 0.55) for 20 of 39
    epochs, `loss-plateau` told at epoch 10; with `train_falls` the training loss then falls 0.003
    an epoch, with `val_falls` the validation loss and accuracy follow it."""
    n = 39
    e = np.arange(1, n + 1)
    rng = np.random.default_rng(2)
    later = np.clip(e - 20, 0, None)
    loss = 0.69 + rng.normal(0, 0.012, n) - (0.003 * later if train_falls else 0)
    acc = 0.5 + rng.normal(0, 0.03, n) + (0.005 * later if train_falls else 0)
    val = 0.685 - 0.0003 * e - (0.001 * later if val_falls else 0)
    val_acc = 0.55 + (0.004 * later if val_falls else 0 * later)
    return {"loss": loss, "val_loss": val, "accuracy": acc, "val_accuracy": val_acc}


def test_hind18_a_plateau_the_run_later_leaves_is_demoted_one_never_left_is_not(tmp_path):
    told = {}
    for name, train_falls, val_falls in (
        ("left", True, True),
        ("stuck", False, False),
        ("memorising", True, False),  # training loss leaves it, validation does not: still a WARNING
    ):
        path = _csv(tmp_path / name / "training.log", _chance_run(train_falls, val_falls))
        told[name] = _findings(path, "loss-plateau")
    for name in ("stuck", "memorising"):
        assert [f.severity.value for f in told[name]] == ["warning"], (name, told[name])
    (demoted,) = told["left"]
    assert demoted.severity.value == "info" and demoted.epoch == told["stuck"][0].epoch, demoted
    assert "the training loss then fell to" in demoted.message and "left the plateau" in demoted.message
    assert demoted.evidence["later_loss"] < demoted.evidence["stalled_level"] * 0.98, demoted.evidence


def _fast_learner(closes: bool) -> dict[str, np.ndarray]:
    """driemann-ml-aos version 2 (held-out-7): the training loss (the mean over an epoch's steps)
    falls 10x in the first 20 epochs, the validation loss 48% of it at epoch 1 (the run's own:
    train/val 2.07x) and 14% at epochs 2-4; with `closes` the ratio rises to 0.9 by epoch 45 and
    stays (the two converge), else it stays at 0.14. (A ratio of 0.14 from the first epoch on
    would be one constant multiple, `other-scale`: two units, sv33.)"""
    n = 100
    e = np.arange(1, n + 1)
    rng = np.random.default_rng(3)
    train = 0.005 * np.exp(-e / 8) + 1e-5 * (1 + 0.05 * rng.normal(size=n))
    ratio = 0.14 + (0.76 * np.clip((e - 5) / 40, 0, 1) if closes else 0 * e)
    ratio[0] = 0.48
    return {"loss": train, "val_loss": train * ratio}


def test_hind18_suspicious_val_whose_ratio_closes_is_demoted_a_kept_ratio_is_not(tmp_path):
    told = {}
    for name, closes in (("closes", True), ("keeps", False)):
        path = _csv(tmp_path / name / "training.log", _fast_learner(closes))
        told[name] = _findings(path, "suspicious-val")
    assert [f.severity.value for f in told["keeps"]] == ["warning"], told["keeps"]
    (demoted,) = told["closes"]
    assert demoted.severity.value == "info" and demoted.epoch == told["keeps"][0].epoch, demoted
    assert "the gap did not last" in demoted.message and demoted.evidence["final_ratio"] >= 0.8, demoted


def test_hind18_the_mlcheck_command_says_so_and_exits_clean(tmp_path):
    # the real command: the demoted finding is an INFO, so a run with nothing else exits 0
    path = _csv(tmp_path / "closes" / "training.log", _fast_learner(True))
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "--json", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (told,) = [f for f in json.loads(done.stdout)["findings"] if f["check"] == "suspicious-val"]
    assert told["severity"] == "info" and "did not last" in told["message"], told
    assert told["evidence"]["demoted_in_hindsight"] is True, told


def _held_accuracy_rise(train_share: float, epochs: int) -> dict[str, np.ndarray]:
    """benoitpier/nlp_binary_classification (held-out-7), its first `epochs` of 16: the validation
    loss lowest at epoch 6 (0.521), then 5-12% above it, validation accuracy level at 0.74-0.76
    through the rise; the training loss falls from 0.42 at the best to `train_share` of it at
    epoch 16 (the run's own: 0.43)."""
    e = np.arange(1, 17)
    val = [0.687, 0.672, 0.638, 0.586, 0.547, 0.521, 0.535, 0.538, 0.528, 0.532, 0.541, 0.546, 0.569, 0.564]
    val = np.array([*val, 0.577, 0.586])
    val_acc = np.array([0.566, 0.566, 0.584, 0.684, 0.744, 0.757, 0.741, 0.741, 0.756, 0.755, 0.759, 0.759])
    val_acc = np.concatenate([val_acc, [0.762, 0.761, 0.760, 0.761]])
    train = np.where(e <= 6, 0.68 - 0.26 * (e - 1) / 5, 0.42 * train_share ** ((e - 6) / 10))
    acc = 0.6 + 0.35 * (e - 1) / 15
    return {
        "loss": train[:epochs],
        "val_loss": val[:epochs],
        "accuracy": acc[:epochs],
        "val_accuracy": val_acc[:epochs],
    }


def test_hind18_a_held_accuracy_stops_holding_a_rise_that_lasts_while_training_halves(tmp_path):
    # train-val-gap holds a modest validation-loss rise at INFO while the validation accuracy
    # holds (over-confidence, not worse decisions); a rise that has lasted 8 epochs while the
    # training loss halved is the model fitting its training set ever closer: a WARNING. At epoch
    # 14 the training loss is 51% of its best-epoch value (INFO), at 15 it is 47% (WARNING); the
    # twin whose training loss falls by a quarter stays INFO to the end.
    told = {}
    for name, share in (("halved", 0.43), ("quarter", 0.75)):
        path = _csv(tmp_path / name / "training.log", _held_accuracy_rise(share, 16))
        told[name] = [f for f in _findings(path, "train-val-gap") if f.key == "overfit"]
    assert [(f.severity.value, f.epoch) for f in told["quarter"]] == [("info", 14)], told["quarter"]
    assert "has not dropped" in told["quarter"][0].message, told["quarter"]
    assert [(f.severity.value, f.epoch) for f in told["halved"]] == [("info", 14), ("warning", 15)], told["halved"]
    warned = told["halved"][1]
    assert "has held" in warned.message and "the rise has lasted 9 epochs" in warned.message, warned.message
