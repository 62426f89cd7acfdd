"""`lr-schedule`'s "never changed" judgement on real Lightning fits: a ReduceLROnPlateau moves
the rate only when its metric stalls, so a healthy run whose validation loss keeps improving
never sees it move and must get no warning; a schedule timed in epochs that is never stepped
(its `frequency` beyond the run) still gets one."""

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

from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Digits(pl.LightningModule):
    def __init__(self, plateau: bool):
        super().__init__()
        self.plateau = plateau
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=1e-3)
        if self.plateau:  # halves the rate after 3 validations without improvement: none here
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
        # stepped every 100 epochs in a 4-epoch run: the rate never changes
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch", "frequency": 100}}


@pytest.mark.parametrize("plateau", [True, False])
def test_plateau_scheduler_that_never_triggered_is_silent(tmp_path, plateau):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    xs, ys = torch.tensor((x[order] / 16.0).astype(np.float32)), torch.tensor(y[order])
    train = DataLoader(TensorDataset(xs[:480], ys[:480]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(xs[1400:], ys[1400:]), batch_size=128)
    cb = MLCheckCallback(log_dir=False, checks=["lr-schedule"], overfit_batch=False)
    trainer = quiet_trainer(max_epochs=4, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Digits(plateau), train, val)
    lrs = {g["lr"] for g in trainer.optimizers[0].param_groups}
    assert lrs == {1e-3}  # neither moved the rate: the premise of both cases
    constant = [f for f in cb.findings if f.check == "lr-schedule" and f.key == "constant"]
    if plateau:
        assert not constant, [f.format() for f in cb.findings]
        assert cb.live.monitor.run.info.has_scheduler is None
    else:
        assert len(constant) == 1 and constant[0].severity.name == "WARNING"
