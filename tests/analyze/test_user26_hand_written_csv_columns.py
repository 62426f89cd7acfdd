"""A new user's own scripts (round 26): `mlcheck analyze` on the CSV a hand-written PyTorch loop
writes, with the column names a scikit-learn user gives it. The real command, as a subprocess.

Each test failed before its fix.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest


def _curves(overfit: bool) -> tuple[np.ndarray, np.ndarray]:
    """30 epochs of a regression's train and validation MSE; with `overfit`, the validation loss
    turns up from epoch 12 while the training loss keeps falling."""
    rng = np.random.default_rng(0)
    epochs = np.arange(30)
    train = np.exp(-epochs / 6) + 0.1 + 0.01 * rng.normal(size=30)
    val = 1.05 * np.exp(-epochs / 6) + 0.15 + 0.015 * rng.normal(size=30)
    if overfit:
        val[12:] = val[12] + 0.02 * np.arange(18)
    return train, val


def _write(path, header, train, val):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        for epoch, (t, v) in enumerate(zip(train, val)):
            out.writerow([epoch, f"{t:.6f}", f"{v:.6f}"])


def _analyze(path):
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"], capture_output=True, text=True, timeout=120
    )
    return done.returncode, done


@pytest.mark.parametrize(
    "header",
    [
        ["Epoch", "Train Loss (MSE)", "Val. Loss (MSE)"],
        ["epoch", "loss_tr", "loss_val"],
        ["epoch", "Loss (train)", "Loss (val)"],
    ],
)
def test_user26_hand_written_column_names_are_read_as_the_two_loss_curves(tmp_path, header):
    """Before: `Train Loss (MSE)` / `Val. Loss (MSE)` and `Loss (train)` / `Loss (val)`: exit 2,
    `no loss curve found (columns: ...)`; `loss_tr` beside `loss_val`: `no training loss was
    logged (only the validation loss, 'loss_val')` and `train-val-gap` never judged. Now both
    curves are read (a unit in brackets after a space dropped, a split word in brackets or
    abbreviated `tr`/`trn` read as the split) and the overfitting run gets its WARNING."""
    path = tmp_path / "history.csv"
    _write(path, header, *_curves(overfit=True))
    code, done = _analyze(path)
    assert code == 0, done.stderr
    report = json.loads(done.stdout)
    series = report["runs"][0]["series"]
    assert set(series.values()) >= set(header[1:]), series
    assert [(f["check"], f["severity"]) for f in report["findings"]] == [("train-val-gap", "warning")]
    # the healthy run under the same names stays silent
    _write(path, header, *_curves(overfit=False))
    code, done = _analyze(path)
    assert code == 0 and json.loads(done.stdout)["findings"] == [], done.stdout
