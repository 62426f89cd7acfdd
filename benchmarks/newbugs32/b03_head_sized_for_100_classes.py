"""b03 Lightning: a CNN copied from a CIFAR-100 script onto digits keeps its `nn.Linear(..., 100)`
head: 90 of the 100 logits name no class. Cross-entropy still trains (the 90 are pushed down), but
the initial loss is ln(100) = 4.6, not ln(10), and the softmax spends its mass on classes that
never occur."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b03_head_sized_for_100_classes"
NUM_CLASSES = 100  # BUG: from the CIFAR-100 script; digits has 10


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES))

    def forward(self, x):
        return self.head(self.body(x))

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
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x).reshape(-1, 1, 8, 8), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(Net(), tr, va)
    report(NAME, cb.findings)
