"""Batch 18 of new users' programs: a class whose every training row weighs 0.

Batch 18's b07 (Keras `sample_weight` from a class-weight dict lacking class 3) has its test in
test_keras.py; this is the Lightning twin: `nn.CrossEntropyLoss(weight=w)` with `w[3] = 0` (a
weight vector filled from a dict that lacks class 3). The loss never counts class 3's rows, so the
model learns never to answer 3. Before, no finding came; now `class-imbalance` names it at the end
of the first epoch (WARNING, key zero-weight). Every weight above 0: silent.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Weighted(pl.LightningModule):
    def __init__(self, weights):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        self.loss = nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


@pytest.mark.parametrize("missing", [True, False])
def test_newbugs18_a_zero_class_weight_in_the_loss_is_named(tmp_path, missing):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:1200], y[:1200]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1200:], y[1200:]), batch_size=256)
    given = {c: 1.0 for c in range(10) if not (missing and c == 3)}
    weights = [given.get(c, 0.0) for c in range(10)]
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Weighted(weights), train, val)
    found = [f for f in cb.findings if f.check == "class-imbalance" and f.key == "zero-weight"]
    serious = [f for f in cb.findings if f.severity >= Severity.WARNING]
    if not missing:
        assert found == [] and serious == [], [f.format() for f in cb.findings]
        return
    (finding,) = found
    assert finding.severity == Severity.WARNING and finding.epoch == 0, finding.format()
    assert finding.evidence["zero_weight_classes"] == [3]
    assert finding.evidence["zero_weight_rows"] == int((y[:1200] == 3).sum())
