"""h02 Lightning (healthy): a 1D CNN (Conv1d, BatchNorm1d, ReLU, global average pooling) on
synthetic 3-channel signals of 64 samples (a sine burst at one of 5 frequencies in channel k, noise
elsewhere), Adam 1e-3 with a cosine schedule per epoch."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h02_conv1d_signals"


def signals(n, rng):
    t = np.arange(64, dtype=np.float32) / 64
    y = rng.integers(0, 5, n)
    ch = rng.integers(0, 3, n)
    x = rng.normal(0, 0.5, (n, 3, 64)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, n)
    x[np.arange(n), ch] += np.sin(2 * np.pi * (2 + 2 * y)[:, None] * t + phase[:, None])
    return x, y.astype(np.int64)


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(3, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(),
            nn.Conv1d(16, 32, 5, padding=2), nn.BatchNorm1d(32), nn.ReLU(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, 5),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", F.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=1e-3)
        return [opt], [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)]


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    xt, yt = signals(1500, rng)
    xv, yv = signals(400, rng)
    tr = DataLoader(TensorDataset(torch.tensor(xt), torch.tensor(yt)), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(torch.tensor(xv), torch.tensor(yv)), batch_size=200)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(Net(), tr, va)
    report(NAME, cb.findings)
