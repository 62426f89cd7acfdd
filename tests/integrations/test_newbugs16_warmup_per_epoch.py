"""`loss-plateau` on a Lightning fit whose linear warm-up (`LambdaLR`, 500 steps) is returned
without `"interval": "step"`: Lightning steps it once per epoch, so the rate stays at 2e-6-1.2e-5
(1e-3 meant) and the model learns nothing. Before (batch 16 b11), the plateau's `val-prior`
finding told the user to check the labels, initialisation and dropout; now its hint reads the
logged rate, still climbing, and names the per-epoch stepping. Stepped per step as meant: the rate
reaches 3e-4 and the run learns, no finding."""

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

WARMUP = 500


class Digits(pl.LightningModule):
    def __init__(self, interval):
        super().__init__()
        self.interval = interval
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self.net(x)
        self.log("val_loss", F.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / WARMUP))
        if self.interval == "epoch":
            return [opt], [sched]  # the bug: Lightning steps a scheduler returned so once per epoch
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_newbugs16_warmup_stepped_per_epoch_is_named_by_the_plateau(tmp_path, interval):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor((x[order] / 16.0).astype(np.float32)), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=6, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Digits(interval), train, val)
    serious = [f for f in cb.findings if f.severity >= Severity.WARNING]
    if interval == "step":
        assert serious == [], [f.format() for f in cb.findings]
        return
    plateau = [f for f in serious if f.check == "loss-plateau"]
    assert plateau, [f.format() for f in cb.findings]
    assert "still climbing" in plateau[0].hint and "'interval': 'step'" in plateau[0].hint, plateau[0].format()
