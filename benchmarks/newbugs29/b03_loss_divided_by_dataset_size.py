"""b03 Lightning: the loss summed over the batch and divided by the size of the whole training
set (the formula of an epoch average, put in `training_step`), under SGD 0.1: each step's loss and
gradient are 32/1400 = 1/44 of the batch mean's, so the step is 44x smaller than intended."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b03_loss_divided_by_dataset_size"


class Net(pl.LightningModule):
    def __init__(self, n_train):
        super().__init__()
        self.n_train = n_train
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        # BUG: an epoch average's denominator on one batch's sum
        loss = F.cross_entropy(self(x), y, reduction="sum") / self.n_train
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", F.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 10).fit(Net(1400), tr, va)
    report(NAME, cb.findings)
