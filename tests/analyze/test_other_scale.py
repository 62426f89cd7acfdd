"""`suspicious-val` (key `other-scale`): a training loss summed over the epoch's batches
(`running_loss += loss.item()`, never divided) against a validation loss that is a mean sits a
near-constant multiple of it, the batch count, from the first epoch on. That is two units, not a
leak: the real `mlcheck analyze` command says so at INFO, and a validation loss that falls away
from a mean training loss (a leaked validation set) still gets the leak WARNING."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

BATCHES = 12


def _analyze(path):
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return [f for f in json.loads(done.stdout)["findings"] if f["check"] == "suspicious-val"]


def _write(path, train, val):
    path.write_text(
        "epoch,loss,val_loss\n" + "".join(f"{e},{t:.6g},{v:.6g}\n" for e, (t, v) in enumerate(zip(train, val)))
    )


def _per_batch_loss(epochs: int) -> np.ndarray:
    """A healthy run's mean loss per batch, epoch by epoch, at the epoch's middle and end."""
    e = np.arange(2 * epochs + 1) / 2
    return 0.3 + 1.6 * np.exp(-e / 5)


@pytest.mark.parametrize("summed", [True, False])
def test_analyze_tells_a_summed_training_loss_from_a_leak(tmp_path, summed):
    rng = np.random.default_rng(0)
    epochs = 30
    level = _per_batch_loss(epochs)
    middle, end = level[1::2], level[2::2]
    if summed:  # the epoch's 12 batch means added up; validation the mean of its batches
        train = BATCHES * middle * (1 + 0.03 * rng.standard_normal(epochs))
        val = end * (1 + 0.04 * rng.standard_normal(epochs))
    else:  # a mean training loss; a validation set the model has memorised falls away from it
        train = middle * (1 + 0.03 * rng.standard_normal(epochs))
        val = 0.15 * end * np.exp(-np.arange(epochs) / 5)
    path = tmp_path / "training.log"
    _write(path, train, val)
    (found,) = _analyze(path)
    if summed:  # before: a WARNING that the validation data looks leaked
        assert found["severity"] == "info", found
        assert "different scales" in found["message"] and "leaked" not in found["message"]
        assert 10 <= found["evidence"]["ratio_min"] <= found["evidence"]["ratio_max"] < 2 * BATCHES
        assert found["evidence"]["log_ratio_spread"] <= math.log(2)
        assert "len(train_loader)" in found["hint"]
    else:
        assert found["severity"] == "warning" and "leaked" in found["message"], found


def test_analyze_names_the_steps_of_an_epoch_of_a_lightning_csv(tmp_path):
    # Lightning's metrics.csv of `self.log("train_loss", loss, on_step=True, on_epoch=True,
    # reduce_fx="sum")`: step rows hold each batch's loss (every 4th step logged), epoch rows
    # their sum over the epoch's 12 batches, beside a mean validation loss
    rng = np.random.default_rng(0)
    rows, step = ["epoch,step,train_loss_step,train_loss_epoch,val_loss"], 0
    for e in range(20):
        losses = []
        for b in range(BATCHES):
            loss = (0.3 + 1.6 * math.exp(-(e + b / BATCHES) / 5)) * (1 + 0.1 * rng.standard_normal())
            losses.append(loss)
            if (step + 1) % 4 == 0:
                rows.append(f"{e},{step},{loss:.6g},,")
            step += 1
        val = (0.3 + 1.6 * math.exp(-(e + 1) / 5)) * (1 + 0.04 * rng.standard_normal())
        rows.append(f"{e},{step - 1},,,{val:.6g}")
        rows.append(f"{e},{step - 1},,{sum(losses):.6g},")
    path = tmp_path / "lightning_logs" / "version_0" / "metrics.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(rows) + "\n")
    (found,) = _analyze(path)
    assert found["severity"] == "info" and "different scales" in found["message"], found  # before: a leak WARNING
    assert found["evidence"]["steps_per_epoch"] == BATCHES
    assert f"against {BATCHES} training steps per epoch" in found["message"]
