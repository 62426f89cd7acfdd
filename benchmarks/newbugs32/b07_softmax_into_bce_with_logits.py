"""b07 Lightning: a multi-label model (four attributes of a digit: even, above 4, prime, has a
closed loop; 1-3 on per row) ends in `nn.Softmax(dim=1)` and trains with `nn.BCEWithLogitsLoss()`:
the loss applies a sigmoid to probabilities in (0, 1), so each attribute's predicted probability
is confined to (0.5, 0.73) and the four compete for one unit of mass."""

import lightning.pytorch as pl
import numpy as np
import torch
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b07_softmax_into_bce_with_logits"


def attributes(y):
    return np.stack([y % 2 == 0, y > 4, np.isin(y, [2, 3, 5, 7]), np.isin(y, [0, 6, 8, 9])], axis=1).astype(np.float32)


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        # BUG: a Softmax output before a loss that takes logits (and multi-label wants sigmoids anyway)
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 4), nn.Softmax(dim=1))
        self.loss = nn.BCEWithLogitsLoss()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", self.loss(out, y))
        self.log("val_acc", ((out > 0.5).float() == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(attributes(y))
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 10).fit(Net(), tr, va)
    report(NAME, cb.findings)
