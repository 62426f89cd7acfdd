"""b01 Lightning: a "warm-up freeze" of the body for 2 epochs (requires_grad=False), the optimizer
built over `filter(lambda p: p.requires_grad, self.parameters())` (a pattern from a fine-tuning
post), the body unfrozen in `on_train_epoch_start` at epoch 2: the body's parameters get
gradients from then on but are in no optimizer, so they never move."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b01_unfreeze_after_filtered_optimizer"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)
        for p in self.body.parameters():
            p.requires_grad = False  # warm-up freeze: train the head alone first

    def forward(self, x):
        return self.head(self.body(x))

    def on_train_epoch_start(self):
        if self.current_epoch == 2:
            for p in self.body.parameters():
                p.requires_grad = True

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
        # BUG: built while the body is frozen, so the body is in no parameter group once unfrozen
        return torch.optim.Adam(filter(lambda p: p.requires_grad, self.parameters()), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(Net(), tr, va)
    report(NAME, cb.findings)
