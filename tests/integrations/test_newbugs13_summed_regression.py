"""A regression loss summed over the batch (/tmp/bugs13/b05: `F.mse_loss(out, y, reduction="sum")`
on the diabetes data, batch 64, SGD 0.01 tuned for a mean), on a real Lightning fit. The weights
blow up within the first epoch: the training loss grows from 82 to ~2e32, the first validation
pass overflows to Inf, then the training loss and the weights turn non-finite.

Before, `nonfinite-loss` said of the Inf validation loss "the training loss stayed finite (last
1.894e+32): the weights are fine, the Inf comes from the validation path ... The learning rate is
not the cause" (a finite loss 2e30 times its first value is no healthy training), and none of its
findings named the sum that `loss-at-init` had proved at step 0 (INFO), nor did `overfit-batch`'s.
Now a non-finite validation loss after a training loss that rose over 100x its first value says
the weights were blowing up, and `nonfinite-loss` and `overfit-batch` name the summed loss as
their likely cause. The same module with the mean loss is silent."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _Diabetes(pl.LightningModule):
    def __init__(self, reduction: str):
        super().__init__()
        self.reduction = reduction
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self(x), y, reduction=self.reduction)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)  # tuned for a mean


def _fit(reduction: str):
    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    x = (x - x[:350].mean(0)) / x[:350].std(0)
    y = (y - y[:350].mean()) / y[:350].std()

    def loader(rows, **kw):
        t = TensorDataset(torch.tensor(x[rows], dtype=torch.float32), torch.tensor(y[rows], dtype=torch.float32))
        return DataLoader(t, **kw)

    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=4, callbacks=[cb], log_every_n_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(
            _Diabetes(reduction),
            loader(slice(0, 350), batch_size=64, shuffle=True),
            loader(slice(350, None), batch_size=256),
        )
    return cb.findings


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_newbugs13_summed_regression_loss_blowing_up_is_named(reduction):
    found = _fit(reduction)
    if reduction == "mean":
        assert not [f.format() for f in found if f.severity >= Severity.WARNING]
        return
    (summed,) = [f for f in found if f.check == "loss-at-init"]
    assert summed.key == "summed" and summed.step == 0
    nonfinite = [f for f in found if f.check == "nonfinite-loss"]
    assert nonfinite and all(f.evidence.get("likely_cause") == "loss-at-init" for f in nonfinite)
    (val,) = [f for f in nonfinite if f.key == "val_loss"]
    # before: "the weights are fine, the Inf comes from the validation path"
    assert "validation path" not in val.message and "blowing up" in val.message
    assert val.evidence["peak_train_loss"] > 100 * val.evidence["first_train_loss"]
    for f in found:
        if f.check == "overfit-batch":
            assert f.evidence.get("likely_cause") == "loss-at-init"
