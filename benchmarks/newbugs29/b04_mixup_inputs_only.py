"""b04 Lightning: mixup on the inputs (lam ~ Beta(1, 1), a shuffled partner) while the loss keeps
the first sample's hard label: whenever lam < 0.5 the image is mostly the partner's but carries the
other label, so about half the training targets are wrong for what the model sees."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b04_mixup_inputs_only"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        lam = float(np.random.beta(1.0, 1.0))
        perm = torch.randperm(len(x))
        x = lam * x + (1 - lam) * x[perm]
        # BUG: mixup needs lam * CE(out, y) + (1 - lam) * CE(out, y[perm])
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", F.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 12).fit(Net(), tr, va)
    report(NAME, cb.findings)
