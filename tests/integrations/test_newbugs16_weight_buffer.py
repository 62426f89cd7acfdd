"""Class weights passed inline, `F.cross_entropy(out, y, weight=self.class_w)` with a registered
buffer (no `CrossEntropyLoss` module to read), computed as the class frequencies: the majority
class (80% of the digits here) weighted 8x over the two rare ones. Before (batch 16 b03), nothing
read those weights and the run passed without a finding; now the torch adapter finds the buffer
by the loss's value (the weighted cross-entropy equals the step's loss on the batch and on each
quarter of it), `RunInfo.class_weights` gets it, and `class-imbalance` names the inverted weights
after the first epoch. Balancing weights (n / (k n_c)) in the same buffer: silent."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Weighted(pl.LightningModule):
    def __init__(self, class_w):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))
        self.register_buffer("class_w", class_w)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y, weight=self.class_w)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("inverted", [True, False])
def test_newbugs16_class_weights_in_a_buffer_are_read(tmp_path, inverted):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    y = np.select([y == 0, y == 1], [1, 2], 0).astype(np.int64)  # 0: the other digits (80%)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor((x[order] / 16.0).astype(np.float32)), torch.tensor(y[order])
    counts = torch.bincount(y[:1400]).float()
    class_w = counts / counts.sum() if inverted else counts.sum() / (3 * counts)
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Weighted(class_w), train, val)
    serious = [f for f in cb.findings if f.severity >= Severity.WARNING]
    if not inverted:
        assert serious == [], [f.format() for f in cb.findings]
        return
    (finding,) = [f for f in serious if f.key == "weights-inverted"]
    assert finding.check == "class-imbalance" and finding.epoch == 0, finding.format()
    assert finding.evidence["largest_class"] == 0 and finding.evidence["largest_weight"] == pytest.approx(0.8, abs=0.01)
