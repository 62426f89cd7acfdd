"""h04 Lightning (healthy): a wine MLP with `CrossEntropyLoss(label_smoothing=0.1)`, SGD momentum
0.9 and ReduceLROnPlateau on val_loss (patience 3), 30 epochs."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer, wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h04_wine_label_smoothing_plateau"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

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
        opt = torch.optim.SGD(self.parameters(), lr=0.02, momentum=0.9)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=3, factor=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = wine()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:140], y[:140]), batch_size=16, shuffle=True)
    va = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 30).fit(Net(), tr, va)
    report(NAME, cb.findings)
