"""Batch 23 of new users' programs, h02: a scheduler that holds one parameter group at rate 0.

Fine-tuning with two parameter groups, a LambdaLR whose factor for the pretrained backbone is 0
for the first epochs (the new head warms up) and 0.1 after: healthy. Before, `frozen-parameters`
named the backbone's layers ("never moves ... give their group a learning rate above 0") and
`lr-schedule` said the scheduler never moved the rate (it read the head's, the highest, which the
scheduler keeps constant). Now the Lightning callback reads every group at each epoch's start:
a group a scheduler holds at 0 though built with a rate above 0 (`RunInfo.rate_held_at_zero`)
is a pause on purpose, and a group rate that changed between epochs (`group_rates_moved`) is a
scheduler at work. A group built with a rate of 0 and no scheduler is still named.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _FineTune(pl.LightningModule):
    def __init__(self, paused: bool):
        super().__init__()
        self.paused = paused
        self.backbone = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.backbone(x))

    def training_step(self, batch, i):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        if not self.paused:  # the slip: the backbone's group built with a rate of 0, no scheduler
            return torch.optim.SGD(
                [{"params": self.backbone.parameters(), "lr": 0.0}, {"params": self.head.parameters()}],
                lr=0.05,
                momentum=0.9,
            )
        opt = torch.optim.SGD(
            [{"params": self.backbone.parameters()}, {"params": self.head.parameters()}], lr=0.05, momentum=0.9
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, [lambda e: 0.0 if e < 3 else 0.1, lambda e: 1.0])
        return {"optimizer": opt, "lr_scheduler": sched}


def _fit(tmp_path, paused):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    data = TensorDataset(torch.tensor(x[:1400] / 16.0, dtype=torch.float32), torch.tensor(y[:1400]))
    cb = MLCheckCallback(log_dir=str(tmp_path / "logs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=5, callbacks=[cb]).fit(
            _FineTune(paused), DataLoader(data, batch_size=32, shuffle=True)
        )
    return cb


def test_newbugs23_h02_a_backbone_group_a_scheduler_holds_at_zero_stays_silent(tmp_path):
    cb = _fit(tmp_path, paused=True)
    loud = [f.format() for f in cb.findings if f.severity != Severity.INFO]
    assert not loud, loud
    assert cb.live.monitor.run.info.group_rates_moved is True
    assert cb.live.monitor.run.info.rate_held_at_zero is None  # the backbone's rate is 0.005 by the last epoch


def test_a_group_built_with_a_rate_of_zero_is_still_named(tmp_path):
    cb = _fit(tmp_path, paused=False)
    named = {f.key for f in cb.findings if f.check == "frozen-parameters" and f.severity == Severity.WARNING}
    assert {"backbone.0", "backbone.2"} <= named, [f.format() for f in cb.findings]
    assert cb.live.monitor.run.info.rate_held_at_zero is None
