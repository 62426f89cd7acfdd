"""A ReduceLROnPlateau (factor 0.1, patience 1) on a small regression that converges early
(/tmp/fa17/l9: quantile regression on diabetes, `ReduceLROnPlateau(patience=3)` over 40 epochs):
each time the validation loss stalls it cuts the rate, down to ~1e-7 with a third of the run
left. Before, that was a WARNING `lr-schedule` "decayed ... with 35% of the run still to go" and
the hint "make the schedule span the whole run (T_max / num_training_steps ...)", which names
nothing a plateau scheduler has. Now, where the run's only schedule is a ReduceLROnPlateau, it is
an INFO that says the metric had stopped improving. The same run with StepLR(step_size=1,
gamma=0.1) (a rate that reaches ~0 by the epoch count, whatever the metric) keeps the WARNING."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _Regressor(pl.LightningModule):
    def __init__(self, schedule: str):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
        self.schedule = schedule

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), 3e-3)
        if self.schedule == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)]


@pytest.mark.parametrize("schedule", ["plateau", "step"])
def test_fa17_plateau_scheduler_cutting_the_rate_to_zero_is_info(schedule):
    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x = (x[order] - x.mean(0)) / x.std(0)
    y = (y[order] - y.mean()) / y.std()
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)[:, None]
    train = DataLoader(TensorDataset(x[:350], y[:350]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[350:], y[350:]), batch_size=100)
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=30, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_Regressor(schedule), train, val)
    decayed = [f for f in cb.findings if f.check == "lr-schedule" and f.key == "decayed"]
    assert decayed, [f.format() for f in cb.findings]  # the rate did fall to ~0 early in both
    if schedule == "plateau":
        assert decayed[0].severity == Severity.INFO, decayed[0].format()  # before: WARNING
        assert not [f for f in cb.findings if f.severity >= Severity.WARNING], [f.format() for f in cb.findings]
    else:
        assert decayed[0].severity == Severity.WARNING, decayed[0].format()
