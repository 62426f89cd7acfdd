"""h01 Lightning (healthy): multi-task digits, one shared body and two heads: the digit
(cross-entropy) and the image's standardised ink (total pixel intensity, MSE); loss
= ce + 0.5 * mse, Adam 1e-3."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h01_multitask_class_and_ink"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.cls = nn.Linear(64, 10)
        self.ink = nn.Linear(64, 1)

    def forward(self, x):
        h = self.body(x)
        return self.cls(h), self.ink(h).squeeze(1)

    def _losses(self, batch):
        x, y, ink = batch
        logits, ink_hat = self(x)
        return F.cross_entropy(logits, y), F.mse_loss(ink_hat, ink), logits, y

    def training_step(self, batch, i):
        ce, mse, _, _ = self._losses(batch)
        loss = ce + 0.5 * mse
        self.log_dict({"train_loss": loss, "train_ce": ce, "train_ink_mse": mse})
        return loss

    def validation_step(self, batch, i):
        ce, mse, logits, y = self._losses(batch)
        self.log_dict({"val_loss": ce + 0.5 * mse, "val_acc": (logits.argmax(1) == y).float().mean()})

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    ink = x.sum(1)
    ink = (ink - ink[:1400].mean()) / ink[:1400].std()
    x, y, ink = torch.tensor(x), torch.tensor(y), torch.tensor(ink)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400], ink[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:], ink[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 10).fit(Net(), tr, va)
    report(NAME, cb.findings)
