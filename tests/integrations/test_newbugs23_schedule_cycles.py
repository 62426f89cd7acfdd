"""Batch 23 of new users' programs, b03: a cosine schedule counted in epochs, stepped every batch.

`CosineAnnealingLR(T_max=10)` ("10 epochs") returned with `"interval": "step"`: the rate falls to 0
after 10 batches and swings between 0 and its peak every 20, several times an epoch, and digits
still learn, so no curve check spoke. Now `lr-schedule` tells it once (WARNING, key cycles) when
the rate has come back from ~0 to its peak at least 3 times, at least twice an epoch. Healthy
schedules stay silent: a cosine over the whole run stepped per batch, warm restarts once an
epoch (the shortest published cycle), a cosine stepped per epoch.
"""

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

EPOCHS = 3
BATCHES = 15  # 480 rows, batch 32


class Digits(pl.LightningModule):
    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR
        sched, interval = {
            "epochs-per-step": (cosine(opt, T_max=EPOCHS), "step"),  # the bug: T_max counts epochs
            "run-per-step": (cosine(opt, T_max=EPOCHS * BATCHES), "step"),
            "epochs-per-epoch": (cosine(opt, T_max=EPOCHS), "epoch"),
            "restart-each-epoch": (torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=BATCHES), "step"),
        }[self.schedule]
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:480]
    return TensorDataset(torch.tensor((x[order] / 16.0).astype(np.float32)), torch.tensor(y[order]))


@pytest.mark.parametrize("schedule", ["epochs-per-step", "run-per-step", "epochs-per-epoch", "restart-each-epoch"])
def test_newbugs23_cosine_counted_in_epochs_stepped_per_batch_is_named(tmp_path, schedule):
    pl.seed_everything(0)
    loader = DataLoader(_digits(), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=False, checks=["lr-schedule"], overfit_batch=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Digits(schedule), loader)
    told = [f for f in cb.findings if f.check == "lr-schedule" and f.severity is not Severity.INFO]
    if schedule != "epochs-per-step":
        assert told == [], [f.format() for f in cb.findings]
        return
    (f,) = told
    assert f.severity is Severity.WARNING and f.key == "cycles", f.format()
    # T_max=3 stepped per batch: a full cycle every 6 steps, 15 steps an epoch
    assert f.evidence["cycle_steps"] == 6 and f.evidence["steps_per_epoch"] == BATCHES
    assert f.step < BATCHES * 3 and "epochs x 15" in f.hint
