"""Batch 32's b03 (issue 12) on a real Lightning fit: a head `nn.Linear(32, 100)` copied from a
CIFAR-100 script onto digits' 10 classes. `class-imbalance`'s INFO `unnamed-outputs` needed 20
labels per output (2,000) from the sampled batches and never fired (1,496 counted in b03's 8
epochs); 90 of 100 outputs all unnamed by chance needs only ~9 labels (the 100-label floor
decides), so it is told in the first epoch, INFO only. The 10-unit head stays silent."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Net(pl.LightningModule):
    def __init__(self, outputs: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, outputs))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("outputs", [100, 10])
def test_head_sized_for_another_data_set(outputs):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x[:640] / 16, dtype=torch.float32), torch.tensor(y[:640])
    pl.seed_everything(0)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=2, callbacks=[cb]).fit(Net(outputs), loader)
    found = [f for f in cb.findings if f.check == "class-imbalance" and f.key == "unnamed-outputs"]
    assert not [f for f in cb.findings if f.check == "class-imbalance" and f.severity >= Severity.WARNING]
    if outputs == 10:
        assert found == [], [f.format() for f in found]
        return
    (finding,) = found
    assert finding.severity == Severity.INFO and finding.epoch == 0, finding.format()
    assert finding.evidence["classes_seen"] == list(range(10)) and finding.evidence["missing"][0] == 10
    assert "Give the last layer 10 outputs" in finding.hint
