"""b06 Lightning: the model ends in `nn.Sigmoid()` and the loss applies `torch.sigmoid` again
before `F.binary_cross_entropy` (breast_cancer): outputs live in (0.5, 0.73)."""

import lightning.pytorch as pl
import torch
from _common import breast_cancer, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b06_sigmoid_twice"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x).squeeze(1)

    def _loss(self, x, y):
        p = torch.sigmoid(self(x))  # BUG: the model already ends in Sigmoid
        return nn.functional.binary_cross_entropy(p, y.float()), p

    def training_step(self, batch, i):
        x, y = batch
        loss, _ = self._loss(x, y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        loss, p = self._loss(x, y)
        self.log("val_loss", loss)
        self.log("val_acc", ((self(x) > 0.5).long() == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = breast_cancer()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:450], y[:450]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[450:], y[450:]), batch_size=128)
    cb = MLCheckCallback(log_dir=f"/tmp/newbugs20-logs/{NAME}")
    trainer(NAME, cb, 10).fit(Net(), tr, va)
    report(NAME, cb.findings)
