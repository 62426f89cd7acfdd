"""h01 Lightning (healthy): a GRU (batch_first) regressing the mean of the next 5 values of noisy
synthetic sine mixtures from the last 40, read at the last step, Adam 2e-3, clipping at norm 1."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h01_gru_regressor"


def windows(n, rng):
    t = np.arange(45, dtype=np.float32)
    f = rng.uniform(0.1, 0.4, (n, 1))
    ph = rng.uniform(0, 2 * np.pi, (n, 1))
    a = rng.uniform(0.5, 1.5, (n, 1))
    s = a * np.sin(f * t + ph) + rng.normal(0, 0.1, (n, 45))
    return s[:, :40, None].astype(np.float32), s[:, 40:].mean(1).astype(np.float32)


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(1, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1]).squeeze(1)

    def training_step(self, batch, i):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    x, y = windows(2000, rng)
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:1600], y[:1600]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1600:], y[1600:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8, gradient_clip_val=1.0).fit(Net(), tr, va)
    report(NAME, cb.findings)
