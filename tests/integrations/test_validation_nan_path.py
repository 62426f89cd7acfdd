"""`nonfinite-loss` on a validation loss that is NaN while training stays finite (/tmp/bugs11/b04):
a LightningModule standardises its inputs in `forward` with the batch's own mean and standard
deviation, and validates one sample at a time; the standard deviation of one sample is NaN, so
every validation loss is NaN while the training loss falls normally. The finding used to say
"Lower the learning rate or add gradient clipping"; the same weights give a finite training loss,
so it now names the validation path (a batch of one, NaN in validation inputs) instead. A NaN
that training itself reaches keeps the learning-rate hint."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Monitor, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _BatchStandardised(pl.LightningModule):
    def __init__(self, lr: float = 1e-3):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, x):
        return self.net((x - x.mean(0)) / (x.std(0) + 1e-8))  # a batch of one: std is NaN

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _fit(tmp_path, val_batch: int, lr: float = 1e-3):
    pl.seed_everything(0)
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x = torch.tensor(x[order], dtype=torch.float32)
    y = torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:448], y[:448]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[448:512], y[448:512]), batch_size=val_batch)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(_BatchStandardised(lr), train, val)
    return cb.findings


def test_newbugs11_validation_nan_with_finite_training_names_the_validation_path(tmp_path):
    found = [f for f in _fit(tmp_path, val_batch=1) if f.check == "nonfinite-loss"]
    (finding,) = found  # validation only: training stayed finite
    assert finding.key == "val_loss" and finding.severity == Severity.ERROR
    assert "training loss stayed finite" in finding.message  # before: "The validation loss became NaN at epoch 0."
    assert finding.evidence["train_steps_finite"] >= 14
    assert "batch of one" in finding.hint and "Lower the learning rate" not in finding.hint


@pytest.mark.parametrize("val_batch", [64])
def test_newbugs11_validation_in_batches_stays_finite(tmp_path, val_batch):
    assert not [f for f in _fit(tmp_path, val_batch=val_batch) if f.check == "nonfinite-loss"]


@pytest.mark.filterwarnings("ignore")
def test_newbugs11_nan_reached_in_training_keeps_the_learning_rate_hint(tmp_path):
    with Monitor(log_dir=str(tmp_path)) as monitor:
        monitor.log_step(0, loss=1.0)
        monitor.log_step(1, loss=float("nan"))
        monitor.log_epoch(0, step=2, train_loss=float("nan"), val_loss=float("nan"))
    val = [f for f in monitor.findings if f.check == "nonfinite-loss" and f.key == "val_loss"]
    assert val and "Lower the learning rate" in val[0].hint
