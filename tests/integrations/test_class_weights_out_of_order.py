"""`class-imbalance` key `weights-inverted` for class weights out of class order (batch 35's b02):
inverse class counts taken from pandas' `value_counts()`, which is sorted by frequency, so the
k-th weight goes to the k-th most frequent class, not to class k. The largest and smallest
classes may then look balanced while a middle class is weighted over a rarer one by more than
it outnumbers it; every pair is compared. Real Lightning fits on digits made imbalanced (each
class kept at its own rate); the same weights in class order (`.sort_index()`), and a cost
weighting that favours the rarest class, stay silent."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)
KEEP = np.array([0.1, 1.0, 0.3, 1.0, 0.15, 0.6, 1.0, 0.2, 0.45, 0.8])


@pytest.fixture(scope="module")
def data():
    x, y = load_digits(return_X_y=True)
    keep = np.random.default_rng(0).random(len(y)) < KEEP[y]
    return torch.tensor(x[keep] / 16, dtype=torch.float32), torch.tensor(y[keep])


class Module(pl.LightningModule):
    def __init__(self, weight) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.loss_fn = nn.CrossEntropyLoss(weight=weight)

    def training_step(self, batch, batch_idx):
        loss = self.loss_fn(self.net(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


def fit(tmp_path, data, weight):
    x, y = data
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=str(tmp_path), checks=["class-imbalance"])
    quiet_trainer(max_epochs=1, callbacks=[cb]).fit(
        Module(torch.tensor(weight, dtype=torch.float32)), DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    )
    return [f for f in cb.findings if f.severity >= Severity.WARNING]


def test_inverse_counts_in_frequency_order_are_named(tmp_path, data):
    counts = pd.Series(data[1].numpy()).value_counts()  # sorted by frequency: the bug
    (f,) = fit(tmp_path, data, 1.0 / counts.values)  # was: silent
    assert f.check == "class-imbalance" and f.key == "weights-inverted" and f.epoch == 0
    big, small = f.evidence["largest_class"], f.evidence["smallest_class"]
    assert f.evidence["largest_count"] >= 2 * f.evidence["smallest_count"]
    assert f.evidence["largest_weight"] > f.evidence["smallest_weight"] * f.evidence["ratio"] / 2
    assert big != small and "value_counts()" in f.hint and "sort_index()" in f.hint


@pytest.mark.parametrize("weights", ["class-order", "rare-class-cost"])
def test_weights_in_class_order_stay_silent(tmp_path, data, weights):
    counts = pd.Series(data[1].numpy()).value_counts().sort_index()
    w = 1.0 / counts.values if weights == "class-order" else np.where(np.arange(10) == 0, 20.0, 1.0)
    assert fit(tmp_path, data, w) == []
