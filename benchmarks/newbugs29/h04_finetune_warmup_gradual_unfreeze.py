"""h04 Lightning (healthy, b01's control): a body pretrained (plain torch loop, 4 epochs) on the
digits 0-4, a new 10-class head; fine-tuned at Adam 3e-4 with a linear warm-up over the first
epoch (per step), the body frozen for 2 epochs and unfrozen at epoch 2, the optimizer built over
every parameter (frozen ones included), so the unfrozen body trains."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h04_finetune_warmup_gradual_unfreeze"


def make_body():
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())


def pretrain(body, x, y):
    head = nn.Linear(64, 5)
    opt = torch.optim.Adam(list(body.parameters()) + list(head.parameters()), lr=1e-3)
    for _ in range(4):
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True):
            opt.zero_grad()
            F.cross_entropy(head(body(xb)), yb).backward()
            opt.step()


class Net(pl.LightningModule):
    def __init__(self, body, steps_per_epoch):
        super().__init__()
        self.body = body
        self.head = nn.Linear(64, 10)
        self.steps_per_epoch = steps_per_epoch
        for p in self.body.parameters():
            p.requires_grad = False

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
        opt = torch.optim.Adam(self.parameters(), lr=3e-4)
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=self.steps_per_epoch)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": warm, "interval": "step"}}


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(y)
    xt, yt, xv, yv = x[:1400], y[:1400], x[1400:], y[1400:]
    body = make_body()
    low = yt < 5
    pretrain(body, xt[low], yt[low])
    tr = DataLoader(TensorDataset(xt, yt), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(xv, yv), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(Net(body, len(tr)), tr, va)
    report(NAME, cb.findings)
