"""`suspicious-val` (key `other-scale`) on the live paths: two losses reduced differently sit a
near-constant multiple apart from the first epoch on, which is two units, not a leak.

- A hand-written loop feeding `Monitor` the running training loss never divided by the batch
  count (`running_loss += loss.item()`) against a mean validation loss: INFO, with the batch
  count (the steps of each epoch, `steps_per_epoch`).
- A LightningModule whose `validation_step` divides the (mean) batch loss again by the batch
  size: INFO, not the leak WARNING.
- A LightningModule that logs its training loss with `reduce_fx="sum"`: the callback's epoch
  training loss is the mean of the losses `training_step` returns, not the logged metric, so the
  live path never meets a summed training loss from Lightning: no finding at all.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Monitor, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


def _data():
    x, y = make_classification(n_samples=800, n_features=16, n_informative=6, n_classes=3, random_state=0)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    train = DataLoader(TensorDataset(x[:640], y[:640]), batch_size=32, shuffle=True)  # 20 batches
    val = DataLoader(TensorDataset(x[640:], y[640:]), batch_size=64)
    return train, val


def _net():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))


def _told(findings):
    return [f for f in findings if f.check == "suspicious-val"]


def test_monitor_loop_with_a_running_loss_never_divided():
    torch.manual_seed(0)
    train, val = _data()
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        with Monitor(log_dir=None) as monitor:
            for epoch in range(6):
                running_loss = 0.0
                for x, y in train:
                    loss = F.cross_entropy(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    running_loss += loss.item()  # never divided by len(train)
                    monitor.log_step(step, loss=loss.item(), epoch=epoch)
                    step += 1
                with torch.no_grad():
                    val_loss = sum(F.cross_entropy(model(x), y).item() for x, y in val) / len(val)
                monitor.log_epoch(epoch, step=step - 1, train_loss=running_loss, val_loss=val_loss)
    assert not [f for f in monitor.findings if f.severity >= Severity.WARNING], monitor.findings  # before: a leak
    (finding,) = _told(monitor.findings)
    assert finding.key == "other-scale" and finding.severity == Severity.INFO
    assert finding.evidence["steps_per_epoch"] == 20
    assert 10 <= finding.evidence["ratio_min"] <= finding.evidence["ratio_max"] <= 40
    assert "len(train_loader)" in finding.hint


class _Classifier(pl.LightningModule):
    def __init__(self, fault: str):
        super().__init__()
        self.fault = fault
        self.net = _net()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, reduce_fx="sum" if self.fault == "sum" else "mean")
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)  # the batch's mean already
        self.log("val_loss", loss / len(y) if self.fault == "divided" else loss)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("fault", ["divided", "sum"])
def test_lightning_losses_on_different_scales(tmp_path, fault):
    pl.seed_everything(0)
    train, val = _data()
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=6, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_Classifier(fault), train, val)
    assert not [f for f in cb.findings if f.severity >= Severity.WARNING], cb.findings  # before, divided: a leak
    told = _told(cb.findings)
    if fault == "divided":
        (finding,) = told
        assert finding.key == "other-scale" and finding.severity == Severity.INFO
        assert finding.evidence["steps_per_epoch"] == 20
        assert 32 <= finding.evidence["ratio_min"] <= finding.evidence["ratio_max"] <= 128  # 64 x
    else:
        assert told == []
