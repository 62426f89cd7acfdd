"""h02 Lightning (healthy): a tabular MLP with `nn.Embedding` for two categorical columns (30 and
7 levels) beside 6 standardised numeric ones (make_classification), binary target, AdamW, dropout
0.2; the categories carry part of the signal."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from sklearn.datasets import make_classification
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h02_tabular_embeddings"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.e1 = nn.Embedding(30, 8)
        self.e2 = nn.Embedding(7, 4)
        self.mlp = nn.Sequential(nn.Linear(6 + 8 + 4, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 1))

    def forward(self, num, c1, c2):
        return self.mlp(torch.cat([num, self.e1(c1), self.e2(c2)], 1)).squeeze(1)

    def training_step(self, batch, i):
        num, c1, c2, y = batch
        loss = F.binary_cross_entropy_with_logits(self(num, c1, c2), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        num, c1, c2, y = batch
        out = self(num, c1, c2)
        self.log("val_loss", F.binary_cross_entropy_with_logits(out, y))
        self.log("val_acc", ((out > 0).float() == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=2e-3, weight_decay=1e-2)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = make_classification(3000, n_features=8, n_informative=5, random_state=1)
    rng = np.random.default_rng(1)
    # categories from two of the informative columns, binned, plus noise levels
    c1 = np.clip(((x[:, 0] - x[:, 0].min()) / np.ptp(x[:, 0]) * 30).astype(int), 0, 29)
    c2 = np.where(rng.random(3000) < 0.7, np.digitize(x[:, 1], np.linspace(-2, 2, 6)), rng.integers(0, 7, 3000))
    num = x[:, 2:]
    num = ((num - num[:2400].mean(0)) / num[:2400].std(0)).astype(np.float32)
    t = [torch.tensor(num), torch.tensor(c1), torch.tensor(c2), torch.tensor(y, dtype=torch.float32)]
    tr = DataLoader(TensorDataset(*[a[:2400] for a in t]), batch_size=64, shuffle=True)
    va = DataLoader(TensorDataset(*[a[2400:] for a in t]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 10).fit(Net(), tr, va)
    report(NAME, cb.findings)
