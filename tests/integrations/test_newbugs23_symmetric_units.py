"""Batch 23 of new users' programs, b06: every Linear initialised to one constant.

`nn.init.constant_(weight, 0.05)` and biases 0 on each Linear of an MLP: the hidden units start
equal, get equal gradients and stay equal, so the MLP acts as one of width 1. Before, the first
WARNING was `missing-nonlinearity` (true on that data, not the cause); now `dead-units` names
the layers whose rows are still all equal after the first epoch moved them (WARNING, key
symmetric). Healthy: the default initialisation, and a zero-initialised output layer (its rows
are pulled apart by the targets at the first step) stay silent.
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


class Digits(pl.LightningModule):
    def __init__(self, init):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
        with torch.no_grad():
            for layer in self.net:
                if not isinstance(layer, nn.Linear):
                    continue
                if init == "constant":
                    nn.init.constant_(layer.weight, 0.05)
                    nn.init.zeros_(layer.bias)
                elif init == "zero-head" and layer is self.net[-1]:
                    nn.init.zeros_(layer.weight)
                    nn.init.zeros_(layer.bias)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("init", ["constant", "default", "zero-head"])
def test_newbugs23_constant_init_units_that_stay_equal_are_named(tmp_path, init):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:480]
    loader = DataLoader(
        TensorDataset(torch.tensor((x[order] / 16.0).astype(np.float32)), torch.tensor(y[order])),
        batch_size=32,
        shuffle=True,
    )
    cb = MLCheckCallback(log_dir=False, checks=["dead-units"], overfit_batch=False)
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Digits(init), loader)
    told = [f for f in cb.findings if f.key == "symmetric"]
    if init != "constant":
        assert told == [], [f.format() for f in cb.findings]
        return
    (f,) = told
    assert f.severity is Severity.WARNING and f.epoch == 0, f.format()
    # the two hidden layers; the output layer's rows are pulled apart by the targets
    assert f.evidence == {"layers": ["net.0", "net.2"], "units": [32, 32]}
