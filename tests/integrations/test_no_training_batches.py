"""`unused-parameters` key `no-batches` (batch 35's b01): a training DataLoader with
`drop_last=True` and a batch_size (1024) larger than its dataset (1,000 digits) has no batch, so
Lightning's fit returns without a step (one INFO log line) and validation scores the initial
weights. Real Lightning fits; the same loader without drop_last, and a `limit_train_batches=0`
the user chose, stay silent."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def training_step(self, batch, batch_idx):
        loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


def fit(tmp_path, *, drop_last, **trainer_kw):
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y.astype(np.int64))
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    train = DataLoader(TensorDataset(x[:1000], y[:1000]), batch_size=1024, shuffle=True, drop_last=drop_last)
    val = DataLoader(TensorDataset(x[1000:], y[1000:]), batch_size=256)
    quiet_trainer(max_epochs=2, callbacks=[cb], **trainer_kw).fit(Module(), train, val)
    return [f for f in cb.findings if f.check == "unused-parameters" and f.severity >= Severity.WARNING]


def test_drop_last_with_a_batch_larger_than_the_data_is_named(tmp_path):
    (f,) = fit(tmp_path, drop_last=True)  # was: silent
    assert f.key == "no-batches" and f.severity == Severity.ERROR
    assert f.evidence == {"batch_size": 1024, "drop_last": True, "samples": 1000}
    assert "drop_last=True" in f.message and "batch_size below 1000" in f.hint


@pytest.mark.parametrize(("drop_last", "trainer_kw"), [(False, {}), (True, {"limit_train_batches": 0})])
def test_a_loader_with_a_batch_or_no_training_asked_stays_silent(tmp_path, drop_last, trainer_kw):
    assert fit(tmp_path, drop_last=drop_last, **trainer_kw) == []
