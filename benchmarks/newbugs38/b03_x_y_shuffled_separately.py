"""b03 Lightning: the user shuffles the data before splitting with two separate calls,
`np.random.shuffle(x)` then `np.random.shuffle(y)`: each call draws its own permutation, so
every row's label now belongs to another row. Training can only memorise; validation stays at
chance (10%)."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b03_x_y_shuffled_separately"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))

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
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    np.random.seed(0)
    np.random.shuffle(x)
    np.random.shuffle(y)  # BUG: a second, different permutation
    x, y = torch.tensor(x), torch.tensor(y, dtype=torch.long)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 25).fit(Net(), tr, va)
    report(NAME, cb.findings)
