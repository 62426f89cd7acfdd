"""The live callbacks read the highest rate of an optimizer's parameter groups.

A fine-tune that holds its backbone's group at 0 (or far below the head's) is healthy; reading
the first group told a rate of 0 ("decayed to nothing"). `mlcheck analyze` reads the rate curve
with the highest median for the same reason (tests/analyze/test_lightning_rates_and_validations.py).
"""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from mlcheck.integrations.torch_live import learning_rate
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


def test_learning_rate_is_the_highest_group_rate():
    backbone, head = nn.Linear(4, 4), nn.Linear(4, 2)
    optimizer = torch.optim.SGD([{"params": backbone.parameters(), "lr": 0.0}, {"params": head.parameters()}], lr=0.05)
    assert learning_rate(optimizer) == pytest.approx(0.05)
    assert learning_rate(object()) is None


def test_a_frozen_first_group_at_rate_0_is_not_read_as_the_runs_rate(tmp_path):
    import lightning.pytorch as pl

    class FineTune(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
            self.head = nn.Linear(64, 10)

        def forward(self, x):
            return self.head(self.backbone(x))

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self(x), y))

        def configure_optimizers(self):
            return torch.optim.Adam(
                [{"params": self.backbone.parameters(), "lr": 0.0}, {"params": self.head.parameters(), "lr": 3e-3}]
            )

    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[1400:], y[1400:]), batch_size=128)
    cb = MLCheckCallback(log_dir=str(tmp_path / "mlcheck"), overfit_batch=False, warn=False)
    quiet_trainer(max_epochs=4, callbacks=[cb], default_root_dir=tmp_path).fit(FineTune(), train, val)
    run = cb.live.monitor.run
    assert run.lr.last_value == pytest.approx(3e-3)
    loud = [f.check for f in cb.findings if f.severity >= Severity.WARNING]
    assert not [c for c in loud if c.startswith("lr")], loud
