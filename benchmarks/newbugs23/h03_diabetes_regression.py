"""h03 Lightning (healthy): diabetes regression (standardised features and target), MLP with
Dropout, AdamW(weight_decay=1e-4), MSE, ReduceLROnPlateau on val_loss."""

import lightning.pytorch as pl
import torch
from _common import diabetes, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h03_diabetes_regression"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)

    def training_step(self, batch, i):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.mse_loss(out, y))
        self.log("val_mae", (out - y).abs().mean())

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=3e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=3)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = diabetes()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:350], y[:350]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[350:], y[350:]), batch_size=128)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 20).fit(Net(), tr, va)
    report(NAME, cb.findings)
