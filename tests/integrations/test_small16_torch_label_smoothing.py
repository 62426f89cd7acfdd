"""Label smoothing in a torch loss module the LightningModule holds
(`self.criterion = nn.CrossEntropyLoss(label_smoothing=0.9)`, meant 0.1). The smoothed targets'
entropy (2.266 for 10 classes) is the least loss any model reaches, next to ln(10) = 2.303. Before,
only Keras losses filled `LossConfig.label_smoothing`, so `overfit-batch` read the batch it had
fitted as a wiring bug (ERROR); now the torch adapter reads the module's `label_smoothing` and the
smoothing is the finding (WARNING, key label-smoothing). label_smoothing=0.1: silent."""

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


class Smoothed(pl.LightningModule):
    def __init__(self, smoothing):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=smoothing)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.criterion(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", self.criterion(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor((x[order] / 16.0).astype(np.float32)), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    return train, val


@pytest.mark.parametrize("smoothing", [0.9, 0.1])
def test_small16_torch_label_smoothing_far_too_strong_is_named(tmp_path, smoothing):
    pl.seed_everything(0)
    train, val = digits()
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Smoothed(smoothing), train, val)
    serious = [f for f in cb.findings if f.severity >= Severity.WARNING]
    if smoothing < 0.5:
        assert serious == [], [f.format() for f in cb.findings]
        return
    assert not any(f.severity >= Severity.ERROR for f in cb.findings), [f.format() for f in cb.findings]
    (finding,) = [f for f in cb.findings if f.check == "overfit-batch"]
    assert finding.severity == Severity.WARNING and finding.key == "label-smoothing", finding.format()
    assert finding.evidence["loss_floor"] == pytest.approx(2.266, abs=1e-3)
    assert "label_smoothing=0.9" in finding.message and "0.1" in finding.hint


def test_small16_label_smoothing_read_only_from_the_loss_the_step_computes():
    # A plain torch loss module is read as it is; a LightningModule that holds a smoothed module
    # but computes F.cross_entropy without it (the step's loss is the plain cross-entropy) has no
    # label smoothing: the floor and the WARNING would be false.
    from torch.nn import functional as F

    from mlcheck.integrations.torch import LightningTrainable, TorchTrainable

    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    data = (torch.tensor((x[:256] / 16.0).astype(np.float32)), torch.tensor(y[:256]))
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    assert (
        TorchTrainable(net, nn.CrossEntropyLoss(label_smoothing=0.2), None, data).loss_config().label_smoothing == 0.2
    )
    assert TorchTrainable(net, nn.CrossEntropyLoss(), None, data).loss_config().label_smoothing is None
    assert LightningTrainable(Smoothed(0.9), train_data=data).loss_config().label_smoothing == 0.9

    class Unused(Smoothed):
        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self(x), y)

    cfg = LightningTrainable(Unused(0.9), train_data=data).loss_config()
    assert cfg.loss == "cross_entropy" and cfg.label_smoothing is None
