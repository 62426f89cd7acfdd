"""h07 Lightning (healthy): wine with `Trainer(accumulate_grad_batches=4)` and batches of 8."""

import lightning.pytorch as pl
import torch
from _common import quiet, report, trainer, wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h07_accumulate_grad_batches"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))

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
        return torch.optim.Adam(self.parameters(), lr=5e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = wine()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:140], y[:140]), batch_size=8, shuffle=True)
    va = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=f"/tmp/newbugs20-logs/{NAME}")
    trainer(NAME, cb, 15, accumulate_grad_batches=4).fit(Net(), tr, va)
    report(NAME, cb.findings)
