"""A Lightning regression whose output collapsed to a constant (a `Dropout(1.0)` where 0.1 was
meant zeroes every input in training) stalls at the targets' variance per output after falling
from its start: `loss-plateau` says the model predicts the mean. A healthy sine fit stays silent."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer


class Regressor(pl.LightningModule):
    def __init__(self, net: nn.Module, lr: float) -> None:
        super().__init__()
        self.net, self.lr = net, lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.mse_loss(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), self.lr)


@pytest.mark.parametrize("case", ["dropout-1", "sine"])
def test_regprior16_lightning_stall_at_the_targets_variance(tmp_path, case):
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    if case == "sine":
        x = rng.uniform(-3, 3, (2000, 1)).astype(np.float32)
        y = (np.sin(x) + 0.1 * rng.normal(size=x.shape)).astype(np.float32)
        net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    else:  # a denoising autoencoder on the digits' pixels
        y = (load_digits().data / 16.0).astype(np.float32)
        x = np.clip(y + rng.normal(0, 0.3, y.shape), 0, 1).astype(np.float32)
        net = nn.Sequential(nn.Dropout(1.0), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 64))
    model = Regressor(net, 1e-2)
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    quiet_trainer(max_epochs=12, callbacks=[cb]).fit(model, loader)
    plateau = [f for f in cb.findings if f.check == "loss-plateau" and f.severity >= Severity.WARNING]
    if case == "sine":
        assert not [f for f in cb.findings if f.severity >= Severity.WARNING], cb.findings
        return
    assert len(plateau) == 1, cb.findings  # was: none (the loss fell from 0.19 to the variance, 0.073)
    variance = float(y.var(axis=0).mean())
    assert plateau[0].evidence["constant_mean_loss"] == pytest.approx(variance, rel=1e-3)
    assert "the loss of predicting the targets' mean" in plateau[0].message
