"""h01 Lightning (healthy, b01's control): the diabetes regressor with the head's output squeezed
to (N,) before `F.mse_loss`, dropout 0.1 and StepLR(step_size=15, gamma=0.5) stepped per epoch."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import diabetes, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h01_diabetes_squeezed_steplr"


class Regressor(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(10, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1)
        )

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def training_step(self, batch, i):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=1e-3)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=15, gamma=0.5)}


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = diabetes()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:350], y[:350]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[350:], y[350:]), batch_size=128)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 40).fit(Regressor(), tr, va)
    report(NAME, cb.findings)
