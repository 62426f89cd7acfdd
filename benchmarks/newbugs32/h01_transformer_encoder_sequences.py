"""h01 Lightning (healthy): a two-layer `nn.TransformerEncoder` (batch_first, learned positions,
mean pooling) classifying synthetic sequences of 30 steps by the shape of their signal, AdamW 1e-3
with a linear warm-up over the first 50 steps (LambdaLR returning a factor), clipping at norm 1."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h01_transformer_encoder_sequences"


def sequences(n, rng):
    t = np.linspace(0, 1, 30, dtype=np.float32)
    y = rng.integers(0, 4, n)
    amp = rng.uniform(0.5, 1.5, n)[:, None]
    shapes = np.stack([t, 1 - t, 0.5 + 0.5 * np.sin(12 * t), np.full_like(t, 0.5)])
    x = amp * shapes[y] + rng.normal(0, 0.3, (n, 30))
    return x[:, :, None].astype(np.float32), y.astype(np.int64)


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(1, 32)
        self.pos = nn.Parameter(torch.randn(1, 30, 32) * 0.02)
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        h = self.enc(self.inp(x) + self.pos)
        return self.head(h.mean(1))

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
        opt = torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=1e-2)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    xt, yt = sequences(2000, rng)
    xv, yv = sequences(500, rng)
    tr = DataLoader(TensorDataset(torch.tensor(xt), torch.tensor(yt)), batch_size=64, shuffle=True)
    va = DataLoader(TensorDataset(torch.tensor(xv), torch.tensor(yv)), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8, gradient_clip_val=1.0).fit(Net(), tr, va)
    report(NAME, cb.findings)
