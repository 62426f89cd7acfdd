"""`overfit-batch` names a weight decay far too strong (/tmp/bugs11/b03): SGD(lr=0.05,
momentum=0.9, weight_decay=1.0) on wine (1e-4 meant) shrinks the weights faster than the gradient
builds them, the loss sits at ln 3, and overfit-batch said "a rate far too high is the likelier
cause, try 5e-05". A copy trained at the configured rate without weight decay fits the batch,
so the finding now names the weight decay (key `weight-decay`), and the plateau that follows
points to it. The same run with weight_decay=1e-4 has no overfit-batch finding."""

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

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _Wine(pl.LightningModule):
    def __init__(self, weight_decay: float):
        super().__init__()
        self.weight_decay = weight_decay
        self.net = nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Linear(64, 3))

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
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9, weight_decay=self.weight_decay)


@pytest.mark.parametrize("weight_decay", [1.0, 1e-4])
def test_newbugs11_weight_decay_far_too_strong_is_named(tmp_path, weight_decay):
    pl.seed_everything(0)
    x, y = load_wine(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order], dtype=torch.float32), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:140], y[:140]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=3, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(_Wine(weight_decay), train, val)
    found = [f for f in cb.findings if f.check == "overfit-batch"]
    if weight_decay == 1.0:
        (finding,) = found  # before: key None, "a rate far too high is the likelier cause"
        assert finding.key == "weight-decay" and finding.severity == Severity.ERROR
        assert finding.evidence["weight_decay"] == 1.0 and "weight_decay=1" in finding.message
        assert "1e-5 to 5e-4" in finding.hint
    else:
        assert not [f for f in found if f.severity >= Severity.WARNING], [f.format() for f in found]
