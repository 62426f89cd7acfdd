"""`loss-plateau` names `overfit-batch` as its likely cause. A LightningModule whose Linear
layers are all initialised to zero (`nn.init.zeros_` on weights and biases, ReLU between)
cannot fit one batch: `overfit-batch` says so at step 0. Its validation loss then never beats
the class prior, and `loss-plateau` said the labels likely carry no information about the
inputs; now it says it follows from `overfit-batch` and points to that fix. The twin with
PyTorch's default initialisation learns and stays silent."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _Wine(pl.LightningModule):
    def __init__(self, zeros: bool):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
        if zeros:
            for m in self.net:
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.weight)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


@pytest.mark.parametrize("zeros", [True, False])
def test_plateau_of_a_model_that_cannot_fit_a_batch_follows_overfit_batch(zeros):
    pl.seed_everything(0)
    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x = torch.tensor(((x - x.mean(0)) / x.std(0))[order], dtype=torch.float32)
    y = torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:133], y[:133]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[133:], y[133:]), batch_size=64)
    cb = MLCheckCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=8, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_Wine(zeros), train, val)
    if zeros:
        assert [f.check for f in cb.findings if f.severity == Severity.ERROR] == ["overfit-batch"]
        plateau = [f for f in cb.findings if f.check == "loss-plateau"]
        assert plateau and all(f.evidence.get("likely_cause") == "overfit-batch" for f in plateau)
        assert all("labels likely carry no information" not in f.hint for f in plateau)
    else:
        assert not [f for f in cb.findings if f.severity >= Severity.WARNING]
