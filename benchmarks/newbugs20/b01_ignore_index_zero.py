"""b01 Lightning: `nn.CrossEntropyLoss(ignore_index=0)` copied from a padded-text script onto digits,
where 0 is a real class (the digit 0): its rows never count in the loss."""

import lightning.pytorch as pl
import torch
from _common import digits, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b01_ignore_index_zero"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        self.loss = nn.CrossEntropyLoss(ignore_index=0)  # BUG: 0 is the digit 0, not a pad

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
    model = Net()
    trainer(NAME, cb, 6).fit(model, tr, va)
    pred = model(x[1400:]).argmax(1)
    recall0 = float((pred[y[1400:] == 0] == 0).float().mean())
    report(NAME, cb.findings, {"val_recall_class0": recall0})
