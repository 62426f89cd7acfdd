"""b06 Lightning: attention pooling over the 30 steps of a sequence, its weights normalised with
`torch.softmax(scores, dim=0)` on (batch, time) scores (dim=1 meant): each position's weight is
shared out across the batch's sequences, so a sequence's pooled vector depends on the others in its
batch, and validation (batch 256) sees other weights than training (batch 64)."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b06_attention_pool_softmax_over_batch"


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
        self.embed = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32))
        self.score = nn.Linear(32, 1)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        pos = torch.linspace(0, 1, x.shape[1]).expand(x.shape[0], -1)[..., None]
        h = self.embed(torch.cat([x, pos], dim=-1))  # (batch, time, 32)
        scores = self.score(h).squeeze(-1)  # (batch, time)
        w = torch.softmax(scores, dim=0)  # BUG: dim=1 (over time) meant
        return self.head((w[..., None] * h).sum(1))

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
        return torch.optim.Adam(self.parameters(), lr=2e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    xt, yt = sequences(2000, rng)
    xv, yv = sequences(500, rng)
    tr = DataLoader(TensorDataset(torch.tensor(xt), torch.tensor(yt)), batch_size=64, shuffle=True)
    va = DataLoader(TensorDataset(torch.tensor(xv), torch.tensor(yv)), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(Net(), tr, va)
    report(NAME, cb.findings)
