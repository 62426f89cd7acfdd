"""A classifier trained as a regression (one output unit, `F.mse_loss` on the class index, the
labels kept as int64 in the loader) looks like a classification to the task inference (integer
targets, classes from a one-unit width: 2). `lr-too-high` then set the MSE of ~8 against
ln(2) = 0.69, "11.2x what a uniform guess over 2 classes scores", and blamed a learning rate of
1e-3. Under a loss known to be a regression loss there is no chance level: the finding is gone,
and `output-loss-mismatch` (`class-indices-accuracy`) still names the real cause."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning
from mlcheck.integrations.lightning import MLCheckCallback
from mlcheck.task import chance_loss
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _IndexRegressor(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self(x), y.float())
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        pred = self(x)
        self.log("val_loss", F.mse_loss(pred, y.float()))
        self.log("val_acc", (pred.round() == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def test_no_chance_level_under_mse_on_class_indices(tmp_path):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = torch.tensor(x[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=128)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=4, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_IndexRegressor(), train, val)
    checks = {f.check for f in cb.findings}
    assert "lr-too-high" not in checks  # before: "11x the 0.69 a uniform guess over 2 classes scores"
    assert "output-loss-mismatch" in checks


def test_chance_loss_needs_a_log_loss_or_an_unknown_one():
    assert chance_loss("classification", 10, "cross_entropy") == np.log(10)
    assert chance_loss("classification", 2, None) == np.log(2)
    assert chance_loss("classification", 2, "mse") is None
    assert chance_loss("regression", 10, "cross_entropy") is None
