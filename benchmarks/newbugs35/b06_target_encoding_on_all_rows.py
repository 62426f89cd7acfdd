"""b06 Lightning: tabular data with a high-cardinality category (400 merchants, ~6 rows each)
target-encoded as the mean label per merchant computed over ALL rows before the train/validation
split: each row's own label is 1/6 of its encoding, so the feature leaks the label into training
and validation alike (validation scores the leak, not the model)."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from sklearn.datasets import make_classification
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b06_target_encoding_on_all_rows"


class Net(pl.LightningModule):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)

    def training_step(self, batch, i):
        x, y = batch
        loss = F.binary_cross_entropy_with_logits(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", F.binary_cross_entropy_with_logits(out, y))
        self.log("val_acc", ((out > 0).float() == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = make_classification(2400, n_features=8, n_informative=3, flip_y=0.2, class_sep=0.5, random_state=0)
    rng = np.random.default_rng(0)
    merchant = rng.integers(0, 400, len(y))
    # BUG: the encoding is computed over every row, training and validation, own label included
    sums = np.bincount(merchant, weights=y, minlength=400)
    counts = np.bincount(merchant, minlength=400)
    enc = sums[merchant] / counts[merchant]
    x = np.column_stack([x, enc]).astype(np.float32)
    x = (x - x[:1800].mean(0)) / x[:1800].std(0)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    tr = DataLoader(TensorDataset(x[:1800], y[:1800]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1800:], y[1800:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 10).fit(Net(x.shape[1]), tr, va)
    report(NAME, cb.findings)
