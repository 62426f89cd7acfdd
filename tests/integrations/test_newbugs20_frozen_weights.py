"""Batch 20 of new users' programs, b03: every weight frozen by a name filter.

`for name, p in self.named_parameters(): if "weight" in name: p.requires_grad = False`, meant for
a LayerNorm's scale, freezes every Linear's weight too: only the biases train. Before,
`overfit-batch` failed with the generic "a wiring bug: check for detached or frozen layers, ...";
now its hint names the frozen weight matrices first (not the LayerNorm's scale; evidence
`frozen_weights`). The finding itself (ERROR, the batch cannot be fitted) is unchanged.
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


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 10))
        for name, p in self.named_parameters():
            if "weight" in name:  # meant the LayerNorm's weight only
                p.requires_grad = False

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=2e-3)


def test_newbugs20_weights_frozen_by_a_name_filter_are_named_by_overfit_batch(tmp_path):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x[:512] / 16.0, dtype=torch.float32), torch.tensor(y[:512])
    train = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=4, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Net(), train)
    (finding,) = [f for f in cb.findings if f.check == "overfit-batch"]
    assert finding.severity == Severity.ERROR, finding.format()
    assert finding.evidence["frozen_weights"] == ["net.0.weight", "net.3.weight"]
    assert finding.hint.startswith("2 weight matrices are frozen (requires_grad=False)"), finding.hint
