"""h03 Lightning (healthy): breast_cancer, `BCEWithLogitsLoss(pos_weight=neg/pos)` on raw logits,
`MultiStepLR(milestones=[6, 9])` stepped per epoch (Lightning's default interval)."""

import lightning.pytorch as pl
import torch
from _common import breast_cancer, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h03_bce_pos_weight_multistep"


class Net(pl.LightningModule):
    def __init__(self, pos_weight):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))
        self.loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight]))

    def forward(self, x):
        return self.net(x).squeeze(1)

    def training_step(self, batch, i):
        x, y = batch
        loss = self.loss(self(x), y.float())
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", self.loss(out, y.float()))
        self.log("val_acc", ((out > 0).long() == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=3e-3)
        return [opt], [torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[6, 9], gamma=0.3)]


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = breast_cancer()
    x, y = torch.tensor(x), torch.tensor(y)
    pos = float(y[:450].float().mean())
    tr = DataLoader(TensorDataset(x[:450], y[:450]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[450:], y[450:]), batch_size=128)
    cb = MLCheckCallback(log_dir=f"/tmp/newbugs20-logs/{NAME}")
    trainer(NAME, cb, 12).fit(Net((1 - pos) / pos), tr, va)
    report(NAME, cb.findings)
