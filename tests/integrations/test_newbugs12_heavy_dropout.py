"""New users' programs, batch 12, b06: `nn.Dropout(0.9)` written as a keep probability (a
TensorFlow 1 habit) on a digits MLP. The loss falls slowly and `lr-too-low` said "Raise the
learning rate 3-10x", although Adam at 1e-3 moved the weights at a usual rate; its hint now
follows the measured update ratio and names heavy dropout first. Dropout(0.1): silent."""

from __future__ import annotations

import warnings

import lightning.pytorch as lpt
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


class Net(lpt.LightningModule):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 256),
            nn.ReLU(),
            nn.Dropout(p),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Dropout(p),
            nn.Linear(256, 10),
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("p", [0.9, 0.1])
def test_heavy_dropout_is_named_before_the_learning_rate(tmp_path, p):
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])
    lpt.seed_everything(0, verbose=False)
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=7, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Net(p), train, val)
    slow = [f for f in cb.findings if f.check == "lr-too-low"]
    if p == 0.9:
        (finding,) = slow
        assert finding.severity == Severity.WARNING and finding.evidence["log10_update_ratio"] >= -3, finding.format()
        assert "dropout" in finding.hint and finding.hint.index("dropout") < finding.hint.index("raise"), finding.hint
    else:
        assert [f.format() for f in cb.findings if f.severity >= Severity.WARNING] == []
