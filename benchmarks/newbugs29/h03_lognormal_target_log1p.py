"""h03 Lightning (healthy): a synthetic tabular regression whose target is log-normal (heavy
right tail, max/median ~ 50), trained on `log1p(target)` standardised, MSE, AdamW 1e-3; the
features are 8 standard normals, 2 of them irrelevant."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h03_lognormal_target_log1p"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)

    def training_step(self, batch, i):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=1e-4)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2500, 8)).astype(np.float32)
    w = np.array([0.8, -0.5, 0.4, 0.3, 0.6, -0.2, 0.0, 0.0])
    target = np.exp(1.0 + x @ w + 0.3 * np.sin(2 * x[:, 0]) + rng.normal(0, 0.3, 2500))
    print(f"target median {np.median(target):.2f} max {target.max():.2f}")
    z = np.log1p(target)
    mu, sd = z[:2000].mean(), z[:2000].std()
    y = ((z - mu) / sd).astype(np.float32)
    tr = DataLoader(TensorDataset(torch.tensor(x[:2000]), torch.tensor(y[:2000])), batch_size=64, shuffle=True)
    va = DataLoader(TensorDataset(torch.tensor(x[2000:]), torch.tensor(y[2000:])), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 12).fit(Net(), tr, va)
    report(NAME, cb.findings)
