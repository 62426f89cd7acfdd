"""`loss-plateau` names steps that apply nothing (/tmp/bugs11/b01): a LightningModule under manual
optimization calls `opt.zero_grad()`, `opt.step()`, then `self.manual_backward(loss)`, so every
step finds no gradient and no weight ever changes; the loss sits at ln 10. The plateau's hint was
the generic "check that the model can learn at all ... raise the learning rate"; the update ratio
measured at the sampled steps is exactly 0, and the hint now says the steps apply nothing and
names step() before backward(). The same module in the right order is silent. Since bugs22,
`unused-parameters` (key `no-step`) names it first, from weights that did not move in an epoch
whose optimizer stepped, and the plateau's hint points to it."""

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

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _Manual(pl.LightningModule):
    def __init__(self, step_first: bool):
        super().__init__()
        self.automatic_optimization = False
        self.step_first = step_first
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        opt.zero_grad()
        if self.step_first:  # the bug
            opt.step()
            self.manual_backward(loss)
        else:
            self.manual_backward(loss)
            opt.step()
        self.log("train_loss", loss)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("step_first", [True, False])
def test_newbugs11_optimizer_step_before_backward(tmp_path, step_first):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=4, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(_Manual(step_first), train, val)
    serious = [f for f in cb.findings if f.severity >= Severity.WARNING]
    if step_first:
        # since bugs22 the weights' fingerprints name it at the first epoch's end (`unused-parameters`
        # `no-step`), and the plateau defers to that root cause
        (no_step,) = [f for f in serious if f.check == "unused-parameters"]
        assert no_step.key == "no-step" and no_step.severity == Severity.ERROR, no_step.format()
        assert "step() called before backward()" in no_step.hint, no_step.hint
        assert no_step.evidence["optimizer_steps"] > 0, no_step.evidence
        plateau = [f for f in serious if f.check == "loss-plateau"]
        assert plateau, [f.format() for f in cb.findings]
        assert "unused-parameters" in plateau[0].hint, plateau[0].hint
    else:
        assert serious == [], [f.format() for f in serious]
