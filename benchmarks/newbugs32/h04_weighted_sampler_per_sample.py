"""h04 Lightning (healthy, b04's control): an imbalanced "is it a 0" task (1:9) balanced with a
`WeightedRandomSampler` over one weight per sample (the inverse of its class's count)."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h04_weighted_sampler_per_sample"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))

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
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    y = (y == 0).astype(np.int64)
    x, y = torch.tensor(x), torch.tensor(y)
    counts = torch.bincount(y[:1400], minlength=2).float()
    class_weights = 1.0 / counts
    sampler = WeightedRandomSampler(class_weights[y[:1400]], num_samples=1400, replacement=True)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, sampler=sampler)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(Net(), tr, va)
    report(NAME, cb.findings)
