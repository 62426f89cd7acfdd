"""h02 Lightning (healthy): fine-tuning with two parameter groups; a LambdaLR keeps the pretrained
backbone's rate at 0 for the first 3 epochs (head warm-up) and then gives it 0.1x the head's."""

import lightning.pytorch as pl
import torch
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h02_backbone_rate_zero_warmup"
FREEZE_EPOCHS = 3


class Net(pl.LightningModule):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.backbone(x))

    def training_step(self, batch, i):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.SGD(
            [{"params": self.backbone.parameters()}, {"params": self.head.parameters()}], lr=0.05, momentum=0.9
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, [lambda e: 0.0 if e < FREEZE_EPOCHS else 0.1, lambda e: 1.0])
        return {"optimizer": opt, "lr_scheduler": sched}


def pretrained_backbone(x, y):
    """A backbone trained on digits 0-4 (the 'pretraining' task)."""
    body = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
    head = nn.Linear(64, 5)
    opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=1e-3)
    keep = y < 5
    for _ in range(200):
        loss = nn.functional.cross_entropy(head(body(x[keep])), y[keep])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return body


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(y)
    backbone = pretrained_backbone(x[:1400], y[:1400])
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(Net(backbone), tr, va)
    report(NAME, cb.findings)
