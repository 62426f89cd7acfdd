"""b04 Lightning: wine's three classes (ids 0, 1, 2) trained as if binary: one output unit,
`BCEWithLogitsLoss` against `y.float()`, so class 2's target is 2.0, outside a probability's range
(the loss expects 0/1 targets, the labels are class indices)."""

import lightning.pytorch as pl
import torch
from _common import log_dir, quiet, report, trainer, wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b04_bce_on_class_ids"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 1))
        self.loss = nn.BCEWithLogitsLoss()

    def forward(self, x):
        return self.net(x).squeeze(1)

    def training_step(self, batch, i):
        x, y = batch
        loss = self.loss(self(x), y.float())  # BUG: y holds 0, 1 and 2
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", self.loss(out, y.float()))
        self.log("val_acc", ((out > 0).long() == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = wine()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:140], y[:140]), batch_size=16, shuffle=True)
    va = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 20).fit(Net(), tr, va)
    report(NAME, cb.findings)
