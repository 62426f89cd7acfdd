"""b05 Lightning: a token tagger (12 tokens a sequence, 12 tags) whose logits come out
(batch, time, tags) and go straight into `F.cross_entropy(logits, tags)`: torch reads the class
axis as dim 1, here the time axis; as the lengths are equal nothing raises, and the softmax runs
over the 12 positions instead of the 12 tags (`logits.transpose(1, 2)` meant)."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b05_cross_entropy_class_axis_last"
VOCAB, T, TAGS = 60, 12, 12


class Tagger(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 32)
        self.rnn = nn.GRU(32, 64, batch_first=True, bidirectional=True)
        self.out = nn.Linear(128, TAGS)

    def forward(self, tokens):
        h, _ = self.rnn(self.emb(tokens))
        return self.out(h)  # (batch, time, tags)

    def training_step(self, batch, i):
        tokens, tags = batch
        loss = F.cross_entropy(self(tokens), tags)  # BUG: class axis must be dim 1
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        tokens, tags = batch
        logits = self(tokens)
        self.log("val_loss", F.cross_entropy(logits, tags))
        self.log("val_acc", (logits.argmax(-1) == tags).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


def make(n, rng):
    tokens = rng.integers(0, VOCAB, size=(n, T))
    # a token's tag depends on itself and on its left neighbour
    left = np.concatenate([np.zeros((n, 1), dtype=tokens.dtype), tokens[:, :-1]], axis=1)
    tags = (tokens + (left % 3)) % TAGS
    return torch.tensor(tokens), torch.tensor(tags)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    xt, yt = make(2000, rng)
    xv, yv = make(400, rng)
    tr = DataLoader(TensorDataset(xt, yt), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(xv, yv), batch_size=200)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(Tagger(), tr, va)
    report(NAME, cb.findings)
