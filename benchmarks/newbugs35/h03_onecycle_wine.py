"""h03 Lightning (healthy): a wine MLP under `OneCycleLR(max_lr=1e-2)` stepped per batch, SGD with
momentum 0.9 (OneCycle cycles the momentum too), 30 epochs of 9 batches."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer, wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h03_onecycle_wine"
EPOCHS = 30


class Net(pl.LightningModule):
    def __init__(self, steps_per_epoch):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.net = nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))

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
        opt = torch.optim.SGD(self.parameters(), lr=1e-3, momentum=0.9)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=1e-2, epochs=EPOCHS, steps_per_epoch=self.steps_per_epoch
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = wine()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:140], y[:140]), batch_size=16, shuffle=True)
    va = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, EPOCHS).fit(Net(len(tr)), tr, va)
    report(NAME, cb.findings)
