"""b02 Lightning: "hard example mining" written the wrong way round: the per-sample loss is kept
only where the prediction is already right (`mask = pred == y`, `pred != y` meant), averaged over
the kept samples. About 10% of a batch counts at first (chance on 10 classes), and the wrong
predictions never get a gradient."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b02_loss_masked_to_correct_samples"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        out = self(x)
        per_sample = F.cross_entropy(out, y, reduction="none")
        # BUG: keeps the samples the model already gets right (pred != y meant: the hard ones)
        mask = (out.argmax(1) == y).float()
        loss = (per_sample * mask).sum() / mask.sum().clamp(min=1.0)
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
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 10).fit(Net(), tr, va)
    report(NAME, cb.findings)
