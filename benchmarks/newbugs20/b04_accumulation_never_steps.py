"""b04 Lightning manual optimization: gradient accumulation over 64 batches while an epoch has 44,
and zero_grad at each epoch's start: `opt.step()` never runs."""

import lightning.pytorch as pl
import torch
from _common import digits, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b04_accumulation_never_steps"
ACCUMULATE = 64


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        opt = self.optimizers()
        if i == 0:
            opt.zero_grad()
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.manual_backward(loss / ACCUMULATE)
        if (i + 1) % ACCUMULATE == 0:  # BUG: never true, an epoch has 44 batches
            opt.step()
            opt.zero_grad()
        self.log("train_loss", loss)

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
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
    cb = MLCheckCallback(log_dir=f"/tmp/newbugs20-logs/{NAME}")
    trainer(NAME, cb, 5).fit(Net(), tr, va)
    report(NAME, cb.findings)
