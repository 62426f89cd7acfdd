"""b05 Lightning: `torch.no_grad()` left around the forward of `training_step` (copied from the
validation step); torch then refused backward, so the user added `loss.requires_grad_(True)`."""

import lightning.pytorch as pl
import torch
from _common import quiet, report, trainer, wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b05_no_grad_training_step"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        with torch.no_grad():  # BUG: left from the validation step
            out = self(x)
        loss = nn.functional.cross_entropy(out, y)
        loss.requires_grad_(True)  # "fixes" "element 0 of tensors does not require grad"
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        with torch.no_grad():
            out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = wine()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:140], y[:140]), batch_size=16, shuffle=True)
    va = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=f"/tmp/newbugs20-logs/{NAME}")
    trainer(NAME, cb, 10).fit(Net(), tr, va)
    report(NAME, cb.findings)
