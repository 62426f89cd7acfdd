"""b05 Lightning: the split is made with index arrays, but the training set is built from all
indices (`Subset(ds, idx)` where `idx[:n_train]` was meant), so the validation rows are a subset
of the training rows: validation reports memorisation, not generalisation, and never drifts from
training. Breast cancer with a wide MLP trained long enough to memorise."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import breast_cancer, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b05_val_subset_of_train"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))

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
    x, y = breast_cancer()
    ds = TensorDataset(torch.tensor(x), torch.tensor(y))
    idx = np.random.default_rng(1).permutation(len(ds))
    n_train = 450
    train_ds = Subset(ds, idx)  # BUG: idx[:n_train] meant
    val_ds = Subset(ds, idx[n_train:])
    tr = DataLoader(train_ds, batch_size=32, shuffle=True)
    va = DataLoader(val_ds, batch_size=128)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 40).fit(Net(), tr, va)
    report(NAME, cb.findings)
