"""`unnormalized-input` on validation batches of one sample (/tmp/bugs11/h02): breast_cancer
standardised with training statistics and validated one row at a time got a WARNING that the
validation columns are on "wildly different scales" (median |x| of a single row: 1.4e-4 for one
column); the column scales are now judged over at least 16 pooled rows, and the run is silent.
Raw (unscaled) validation rows at batch size 1 are still reported."""

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

from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))

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
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("scaled_val", [True, False])
def test_newbugs11_validation_batches_of_one(tmp_path, scaled_val):
    pl.seed_everything(0)
    x, y = load_breast_cancer(return_X_y=True)
    mean, std = x[:450].mean(0), x[:450].std(0)  # h02's statistics: the first 450 rows as stored
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    xt, xv = (x[:450] - mean) / std, x[450:]
    if scaled_val:
        xv = (xv - mean) / std
    tensors = lambda a, b: TensorDataset(torch.tensor(a, dtype=torch.float32), torch.tensor(b))  # noqa: E731
    train = DataLoader(tensors(xt, y[:450]), batch_size=32, shuffle=True)
    val = DataLoader(tensors(xv, y[450:]), batch_size=1)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(_Net(), train, val)
    found = [f for f in cb.findings if f.check == "unnormalized-input"]
    if scaled_val:
        assert found == [], [f.format() for f in found]  # before: WARNING, column ratio 1.1e4
    else:
        (finding,) = found
        assert finding.evidence["split"] == "val" and finding.evidence["val_p99_abs"] > 50
