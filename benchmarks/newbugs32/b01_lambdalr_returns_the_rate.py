"""b01 Lightning: a linear warm-up written as `LambdaLR(opt, lambda s: 1e-3 * min(1, (s + 1) / 100))`:
LambdaLR multiplies the optimizer's rate by what the lambda returns (a factor), so with Adam(1e-3)
the rate ends at 1e-3 x 1e-3 = 1e-6 after the warm-up instead of 1e-3."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b01_lambdalr_returns_the_rate"
PEAK = 1e-3


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

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
        opt = torch.optim.Adam(self.parameters(), lr=PEAK)
        # BUG: the lambda returns a rate; LambdaLR wants a factor of the optimizer's rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: PEAK * min(1.0, (s + 1) / 100))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 10).fit(Net(), tr, va)
    report(NAME, cb.findings)
