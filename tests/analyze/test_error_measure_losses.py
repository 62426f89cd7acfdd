"""A log whose only loss-like curves are error measures (`train_mse`, `val_mse`,
`train_mae_epoch`: a regression model logging its objective by the metric's name) has them as its
losses, where `mlcheck analyze` found no loss curve before and exited 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np

import mlcheck
from mlcheck.analyze.tags import classify, error_loss_role


def _overfitting(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Training error falling all run; validation error lowest at epoch 10, then 40% above it."""
    epochs = np.arange(n)
    train = 0.9 * np.exp(-epochs / 8) + 0.05
    val = 0.35 + 0.002 * (epochs - 10) ** 2 / 4 + 0.1 * np.exp(-epochs / 3)
    return train, val


def _write_lightning_csv(path, train, val, steps_per_epoch: int = 50):
    """A Lightning `CSVLogger` metrics.csv: `train_mse` on steps, `train_mae_epoch` and `val_mse`
    at each epoch's end, each in its own row with the other cells empty."""
    fields = ["epoch", "step", "train_mse", "train_mae_epoch", "val_mse"]
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for e, (t, v) in enumerate(zip(train, val)):
            for s in range(9, steps_per_epoch, 10):
                w.writerow({"epoch": e, "step": e * steps_per_epoch + s, "train_mse": t * (1 + 0.02 * rng.normal())})
            end = (e + 1) * steps_per_epoch - 1
            w.writerow({"epoch": e, "step": end, "train_mae_epoch": np.sqrt(t)})
            w.writerow({"epoch": e, "step": end, "val_mse": v})


def test_error_measures_are_read_as_losses_where_no_loss_is_logged(tmp_path):
    path = tmp_path / "metrics.csv"
    _write_lightning_csv(path, *_overfitting())

    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "--json", str(path)], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr  # was 2: "no loss curve found"
    (r,) = mlcheck.analyze(path).runs
    assert r.series["train_loss"] == "train_mse"
    assert r.series["val_loss"] == "val_mse"
    found = {f["check"] for f in json.loads(done.stdout)["findings"] if f["severity"] != "info"}
    assert "train-val-gap" in found, done.stdout  # the curves were judged as losses


def test_error_measures_stay_metrics_beside_a_loss():
    # a run that logs its loss keeps `val_mse` a metric, and a name that is no error measure
    # (or a test split) is never read as a loss
    assert classify("val_mse").role == "val_metric"
    assert error_loss_role("train_mae_epoch").role == "epoch_train_loss"
    assert error_loss_role("val_mse").role == "val_loss"
    assert error_loss_role("test_mse") is None
    assert error_loss_role("train_accuracy") is None
    assert error_loss_role("train_mape") is None


def test_a_loss_beside_error_measures_is_the_loss(tmp_path):
    path = tmp_path / "log.csv"
    train, val = _overfitting(12)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "loss", "mse", "val_loss", "val_mse"])
        for e, (t, v) in enumerate(zip(train, val)):
            w.writerow([e, t + 0.1, t, v + 0.1, v])
    (r,) = mlcheck.analyze(path).runs
    assert r.series["epoch_train_loss"] == "loss"
    assert r.series["val_loss"] == "val_loss"
