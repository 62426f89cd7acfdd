"""A DataLoader that yields an empty batch (0 rows) first, with a `training_step` that returns
None on it (Lightning then skips the step): the train-start checks ran on that batch, and
`output-loss-mismatch` failed as an internal error (`cannot reshape array of size 0`, with a
traceback in a healthy run's console) while `overfit-batch`, `loss-at-init` and
`unused-parameters` were switched off by the step's None; `mlcheck sanity` refused the target
('training_step returned None'). Now the train-start checks wait for the first batch that holds
samples, and pre-flight passes empty batches over."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import mlcheck
from mlcheck import MLCheckWarning, Severity
from mlcheck.checks.preflight.output_loss_mismatch import OutputLossMismatch
from mlcheck.findings import MLCheckInternalWarning
from mlcheck.integrations.lightning import MLCheckCallback
from mlcheck.trainable import LossConfig
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class SkipsEmpty(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        if len(x) == 0:
            return None  # Lightning skips the step
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _loaders():
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    full = list(DataLoader(TensorDataset(x[:640], y[:640]), batch_size=32, shuffle=True))
    train = [(x[:0], y[:0]), *full]  # an empty batch first (the same happens with one last)
    return DataLoader(train, batch_size=None), DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=128)


def test_cli12_an_empty_first_batch_waits_for_one_with_samples(tmp_path):
    train, val = _loaders()
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=False)
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(SkipsEmpty(), train, val)
    internal = [str(w.message) for w in caught if issubclass(w.category, MLCheckInternalWarning)]
    assert internal == [], internal  # before: output-loss-mismatch "failed (ValueError: cannot reshape ...)"
    assert cb.findings == [], [f.format() for f in cb.findings]  # before: overfit-batch "did not run"


def test_cli12_sanity_passes_an_empty_first_batch_over():
    train, val = _loaders()
    result = mlcheck.sanity.run({"model": SkipsEmpty(), "train_data": train, "val_data": val})
    assert [f for f in result.findings if f.severity >= Severity.WARNING] == []  # before: BadInput, the None loss


def test_cli12_empty_label_batches_are_no_labels():
    """The check's own guard, for a Trainable that hands it an empty batch among others."""
    check = OutputLossMismatch()
    found = check._labels(LossConfig(loss="cross_entropy"), "multiclass", 10, None, [np.zeros(0, int)], {})
    assert found == []


def _fit(train, val, tmp_path, max_epochs=2):
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=False)
    trainer = quiet_trainer(max_epochs=max_epochs, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(SkipsEmpty(), train, val)
    return cb, caught


def test_cli13_an_epoch_of_empty_batches_is_said_at_its_end(tmp_path):
    """Every training batch of 0 rows: the fit ended with "checked 0 steps, 2 epochs: no problems
    found", never saying that no step trained or that the train-start checks did not run."""
    x = torch.zeros(0, 64)
    y = torch.zeros(0, dtype=torch.long)
    _, val = _loaders()
    cb, caught = _fit(DataLoader([(x, y)] * 5, batch_size=None), val, tmp_path)
    (finding,) = cb.findings
    assert finding.check == "overfit-batch" and finding.severity is Severity.WARNING and finding.epoch == 0
    assert "every one of the 5 training batches of epoch 0 held 0 samples (inputs of shape (0, 64))" in finding.message
    assert "drop empty batches" in finding.hint.lower()
    assert [w for w in caught if issubclass(w.category, MLCheckWarning)]  # a Python warning, seen at once


def test_cli13_several_empty_batches_first_still_start_the_checks(tmp_path):
    """Three empty batches before the first with samples: the callback's batch-start hook was left
    to Lightning's skip after the second step, so the train-start checks never ran, unsaid."""
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    full = list(DataLoader(TensorDataset(x[:640], y[:640]), batch_size=32, shuffle=True))
    empty = (x[:0], y[:0])
    _, val = _loaders()
    ran = []
    original = MLCheckCallback._train_start_checks

    def spy(self, *args):
        ran.append(True)
        return original(self, *args)

    MLCheckCallback._train_start_checks = spy
    try:
        cb, _ = _fit(DataLoader([empty, empty, empty, *full], batch_size=None), val, tmp_path, max_epochs=1)
    finally:
        MLCheckCallback._train_start_checks = original
    assert ran == [True]
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == [], [f.format() for f in cb.findings]


def test_cli13_an_epoch_of_empty_batches_is_logged_with_the_train_start_checks_off(tmp_path, caplog):
    """With `overfit_batch=False` there is no train-start finding to carry it: one log warning."""
    x = torch.zeros(0, 64)
    y = torch.zeros(0, dtype=torch.long)
    _, val = _loaders()
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=False, overfit_batch=False)
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with caplog.at_level("WARNING", logger="mlcheck"):
        trainer.fit(SkipsEmpty(), DataLoader([(x, y)] * 4, batch_size=None), val)
    said = [r.getMessage() for r in caplog.records if "held 0 samples" in r.getMessage()]
    assert len(said) == 1 and "every one of the 4 training batches of epoch 0" in said[0], said
    assert "drop empty batches" in said[0] and cb.findings == []
