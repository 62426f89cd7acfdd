"""`suspicious-val` (key `val-is-train-loss`): a LightningModule whose `validation_step` logs
`self.loss`, the loss `training_step` stored (a copy-paste slip), reports the last training
batch's loss as the validation loss of every epoch. The curves look healthy (the "validation"
loss falls with training), and nothing else flagged it. The healthy twin logs the loss of the
validation batch and stays silent; so does a `Monitor` run whose validation loss is a constant
equal to its training loss (a dead model at ln C on both splits)."""

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


class _Classifier(pl.LightningModule):
    def __init__(self, copied: bool):
        super().__init__()
        self.copied = copied
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
        self.loss = torch.tensor(0.0)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.loss = F.cross_entropy(self(x), y)
        self.log("train_loss", self.loss)
        return self.loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", self.loss if self.copied else F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _copied(findings):
    return [f for f in findings if f.check == "suspicious-val" and f.key == "val-is-train-loss"]


@pytest.mark.parametrize("copied", [True, False])
def test_lightning_validation_that_logs_the_training_loss(tmp_path, copied):
    pl.seed_everything(0)
    x, y = make_classification(n_samples=800, n_features=16, n_informative=6, n_classes=3, random_state=0)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    train = DataLoader(TensorDataset(x[:640], y[:640]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[640:], y[640:]), batch_size=64)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=6, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_Classifier(copied), train, val)
    found = _copied(cb.findings)
    if copied:
        (finding,) = found  # before: no finding at all
        assert finding.severity == Severity.WARNING and finding.epoch == 2 and finding.evidence["epochs"] == [0, 1, 2]
        assert "validation_step" in finding.hint
    else:
        assert not [f for f in cb.findings if f.severity >= Severity.WARNING]


def test_one_constant_loss_on_both_splits_is_no_copy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        with Monitor(log_dir=None) as monitor:
            step = 0
            for epoch in range(6):
                for _ in range(10):
                    monitor.log_step(step, loss=1.0986123, epoch=epoch)
                    step += 1
                monitor.log_epoch(epoch, step=step, train_loss=1.0986123, val_loss=1.0986123)
    assert _copied(monitor.findings) == []
