"""b05 Lightning: validation scores an exponential moving average of the weights (the EMA model a
paper recommends), updated every step with `decay=0.99999` (0.999 meant): after 440 steps the
average is still 99.6% the initial weights, so validation scores a nearly untrained network while
the trained one is never evaluated."""

import copy

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b05_ema_decay_too_many_nines"
DECAY = 0.99999  # BUG: 0.999 meant


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        self.ema = copy.deepcopy(self.net)
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.net.parameters()):
                e.mul_(DECAY).add_(p, alpha=1 - DECAY)

    def validation_step(self, batch, i):
        x, y = batch
        out = self.ema(x)
        self.log("val_loss", F.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=1e-3)


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
