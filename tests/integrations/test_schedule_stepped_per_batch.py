"""`lr-schedule` on real Lightning fits whose rate decays to about zero far too early: a StepLR
counted in epochs but stepped every batch (`"interval": "step"`) falls within the first epoch,
and the hint names that; a schedule that is simply too steep, stepped per epoch (100x down every
epoch), falls later and its hint names the factor it multiplies the rate by every epoch (small16:
it spoke of the schedule's length before)."""

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


class Digits(pl.LightningModule):
    def __init__(self, interval, step_size, gamma):
        super().__init__()
        self.interval, self.step_size, self.gamma = interval, step_size, gamma
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.step_size, gamma=self.gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": self.interval}}


@pytest.mark.parametrize(
    ("interval", "step_size", "gamma", "per_batch"),
    [
        ("step", 3, 0.1, True),  # "drop 10x every 3 epochs", stepped every batch: ~0 by step 12
        ("epoch", 1, 0.01, False),  # stepped per epoch as meant, but 100x each: ~0 from epoch 2
    ],
)
def test_decayed_schedule_hint_names_per_batch_stepping(tmp_path, interval, step_size, gamma, per_batch):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:480]
    loader = DataLoader(
        TensorDataset(torch.tensor((x[order] / 16.0).astype(np.float32)), torch.tensor(y[order])),
        batch_size=32,
        shuffle=True,
    )
    cb = MLCheckCallback(log_dir=False, checks=["lr-schedule"], overfit_batch=False)
    trainer = quiet_trainer(max_epochs=4, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Digits(interval, step_size, gamma), loader)
    (f,) = [f for f in cb.findings if f.check == "lr-schedule"]
    assert f.severity is Severity.WARNING and f.key == "decayed"
    assert ("within the first epoch (15 optimizer steps)" in f.hint) is per_batch
    assert ("multiplied by 0.01 every epoch" in f.hint) is not per_batch
