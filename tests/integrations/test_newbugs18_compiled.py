"""Batch 18 of new users' programs: a healthy Lightning model whose network is `torch.compile`d.

The layer statistics attach one global forward hook on their recorded steps; torch warns at every
call of a compiled module while any global hook exists ("Using `torch.compile(module)` when there
are global hooks on modules ..."), so a healthy compiled run printed that torch warning at each
recorded step, about hooks the program never registered. Its consequence (the hook fires once
more, for the `OptimizedModule` wrapper, which holds no weights and is not recorded) is nothing
here, so the recorder silences that one warning while its hook is attached, and takes the filter
out again afterwards. `backend="eager"`: dynamo traces, nothing is compiled to C (fast on CPU).
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Compiled(pl.LightningModule):
    def __init__(self):
        super().__init__()
        net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        self.net = torch.compile(net, backend="eager")

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


def test_newbugs18_a_compiled_model_gets_no_torch_warning_about_mlchecks_hook(tmp_path):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:1000], y[:1000]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1000:], y[1000:]), batch_size=256)
    cb = MLCheckCallback(log_dir=tmp_path / "logs", every_n_steps=10)
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", MLCheckWarning)
        filters = list(warnings.filters)
        trainer.fit(Compiled(), train, val)
        assert warnings.filters == filters  # the recorder's filter is gone after its steps
    hooks = [str(w.message) for w in caught if "global hooks on modules" in str(w.message)]
    assert hooks == [], hooks[:1]
    assert not [f for f in cb.findings if f.severity >= Severity.WARNING], [f.format() for f in cb.findings]
    # the weights were still recorded on the compiled model's layers
    recorder = cb._layers
    assert recorder is not None and recorder._recorded >= 2 and recorder._filter is None
