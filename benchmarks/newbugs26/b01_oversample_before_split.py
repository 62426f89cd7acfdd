"""b01 Lightning: "is it a 0?" on digits (about 1:9); the positives are oversampled 8x by
duplicating rows to balance the classes, and the train/validation split is made AFTER the
oversampling: copies of the same positive rows land on both sides."""

import lightning.pytorch as pl
import numpy as np
import torch
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b01_oversample_before_split"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    y = (y == 0).astype(np.int64)
    pos = np.flatnonzero(y == 1)
    # balance the classes by repeating the positives ...
    x = np.concatenate([x] + [x[pos]] * 7)
    y = np.concatenate([y] + [y[pos]] * 7)
    ds = TensorDataset(torch.tensor(x), torch.tensor(y))
    # BUG: ... and only then split (the split should come first, oversampling the training part only)
    n_val = int(0.2 * len(ds))
    tr_ds, va_ds = random_split(ds, [len(ds) - n_val, n_val], generator=torch.Generator().manual_seed(0))
    tr = DataLoader(tr_ds, batch_size=32, shuffle=True)
    va = DataLoader(va_ds, batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(Net(), tr, va)
    report(NAME, cb.findings)
