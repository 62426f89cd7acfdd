"""`train-val-gap` on Lightning regressions of scikit-learn's diabetes data (MSE, standardised
targets), where no accuracy can confirm a turn of the validation loss.

A healthy MLP (10-64-1, Adam 1e-3, 30 epochs, 350 training and 92 validation rows; the round-10
program /tmp/bugs10/h02): its validation loss rises 5.2% from its best epoch while the standard
error of an MSE over 92 rows is ~15% of it (sqrt(2 / 92)). Before, a WARNING ("The model is
overfitting"); now an INFO that names the rows and that error.

A wide MLP (10-512-512-1) on 60 training rows, validated on the other 382: real overfitting, its
validation loss up 16% within five epochs of its best, past both that error (~7%) and the 15% cap:
still a WARNING."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Regressor(pl.LightningModule):
    def __init__(self, widths):
        super().__init__()
        layers, previous = [], 10
        for width in widths:
            layers += [nn.Linear(previous, width), nn.ReLU()]
            previous = width
        self.net = nn.Sequential(*layers, nn.Linear(previous, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self(x).squeeze(1), y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x).squeeze(1), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def diabetes_fit(widths, train_rows, batch_size, epochs):
    pl.seed_everything(0)
    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order]), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:train_rows], y[:train_rows]), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(x[train_rows:], y[train_rows:]), batch_size=128)
    cb = MLCheckCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb], log_every_n_steps=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Regressor(widths), train, val)
    return cb.findings


@pytest.mark.parametrize("case", ["healthy", "overfitting"])
def test_regression_rise_judged_against_the_validation_rows(case):
    if case == "healthy":
        found = diabetes_fit((64,), train_rows=350, batch_size=32, epochs=30)
        assert not [f for f in found if f.severity >= Severity.WARNING]  # before: train-val-gap WARNING
        (gap,) = [f for f in found if f.check == "train-val-gap"]
        assert gap.severity == Severity.INFO and gap.evidence["val_rows"] == 92
        rise = gap.evidence["val_loss"] - gap.evidence["best_val_loss"]
        assert 0 < rise <= gap.evidence["val_loss_stderr"]
        assert "92 rows" in gap.message and "overfitting" not in gap.message
        return
    found = diabetes_fit((512, 512), train_rows=60, batch_size=16, epochs=40)
    (gap,) = [f for f in found if f.check == "train-val-gap"]
    assert gap.severity == Severity.WARNING and "overfitting" in gap.message
    assert "val_rows" not in gap.evidence
