"""h01 Lightning (healthy): a GRU tagger over 0-padded synthetic sequences; pad positions carry the
tag -100, which `F.cross_entropy` ignores by default. The tag of a token is its id mod 4, shifted
by the previous token's id mod 2."""

import lightning.pytorch as pl
import numpy as np
import torch
from _common import quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h01_tagger_pads_ignored"
VOCAB, LENGTH, TAGS = 50, 30, 4


def make(n, rng):
    ids = rng.integers(1, VOCAB, size=(n, LENGTH))
    tags = (ids % TAGS + np.roll(ids, 1, axis=1) % 2) % TAGS
    lengths = rng.integers(6, LENGTH + 1, size=n)
    mask = np.arange(LENGTH)[None, :] >= lengths[:, None]
    ids[mask] = 0
    tags[mask] = -100
    return torch.tensor(ids), torch.tensor(tags)


class Tagger(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 32, padding_idx=0)
        self.rnn = nn.GRU(32, 48, batch_first=True)
        self.head = nn.Linear(48, TAGS)

    def forward(self, ids):
        return self.head(self.rnn(self.emb(ids))[0])

    def _loss(self, batch):
        ids, tags = batch
        out = self(ids)
        return nn.functional.cross_entropy(out.reshape(-1, TAGS), tags.reshape(-1)), out, tags

    def training_step(self, batch, i):
        loss, _, _ = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        loss, out, tags = self._loss(batch)
        real = tags != -100
        self.log("val_loss", loss)
        self.log("val_acc", (out.argmax(-1)[real] == tags[real]).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    xtr, ytr = make(1200, rng)
    xva, yva = make(300, rng)
    tr = DataLoader(TensorDataset(xtr, ytr), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(xva, yva), batch_size=150)
    cb = MLCheckCallback(log_dir=f"/tmp/newbugs20-logs/{NAME}")
    trainer(NAME, cb, 6).fit(Tagger(), tr, va)
    report(NAME, cb.findings)
