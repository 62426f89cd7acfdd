"""A LightningModule whose `training_step` reads its Trainer (`self.trainer.max_epochs`,
`self.trainer.global_step` for an annealing weight, `self.optimizers()`): the train-start checks
train a copy outside the Trainer, where Lightning raises "is not attached to a `Trainer`". They
used to be switched off as internal errors, with a traceback printed in a healthy run's console;
now one INFO says they did not run and why, and nothing else is said."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.findings import MLCheckInternalWarning
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Annealed(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        weight = min(1.0, (self.trainer.global_step + 1) / 10)  # reads the Trainer
        loss = F.cross_entropy(self(x), y) * weight + (1 - weight) * F.cross_entropy(self(x), y).detach()
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def test_a_training_step_that_reads_its_trainer_skips_the_copies_with_one_info(tmp_path):
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=False)
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(
            Annealed(),
            DataLoader(TensorDataset(x[:600], y[:600]), batch_size=32, shuffle=True),
            DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=128),
        )
    internal = [str(w.message) for w in caught if issubclass(w.category, MLCheckInternalWarning)]
    assert internal == [], internal  # before: overfit-batch and unused-parameters "failed (RuntimeError ...)"
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == [], [f.format() for f in cb.findings]
    (skipped,) = [f for f in cb.findings if f.check == "overfit-batch"]
    assert skipped.severity == Severity.INFO
    assert "reads the Trainer" in skipped.message and "unused-parameters" in skipped.message
    assert "on_train_epoch_start" in skipped.hint and "Nothing is wrong with the run" in skipped.hint
