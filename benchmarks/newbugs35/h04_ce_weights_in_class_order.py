"""h04 Lightning (healthy, b02's control): the same imbalanced digits and weighted
`nn.CrossEntropyLoss`, the weights from `value_counts().sort_index()` (one per class id, in order)."""

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h04_ce_weights_in_class_order"
KEEP = np.array([0.1, 1.0, 0.3, 1.0, 0.15, 0.6, 1.0, 0.2, 0.45, 0.8])


class Net(pl.LightningModule):
    def __init__(self, class_weights):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        self.loss_fn = nn.CrossEntropyLoss(weight=class_weights)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        loss = self.loss_fn(self(x), y)
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
    rng = np.random.default_rng(0)
    keep = rng.random(len(y)) < KEEP[y]
    x, y = x[keep], y[keep]
    n_tr = int(0.75 * len(y))
    counts = pd.Series(y[:n_tr]).value_counts().sort_index()  # one weight per class id, in order
    w = torch.tensor((1.0 / counts.values) / (1.0 / counts.values).mean(), dtype=torch.float32)
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:n_tr], y[:n_tr]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[n_tr:], y[n_tr:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 12).fit(Net(w), tr, va)
    report(NAME, cb.findings)
