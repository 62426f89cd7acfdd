"""Work a Lightning run paid after its first epoch that no verdict needed (issue 13, the per-step
target): each test pins that the work is not done and that the findings stay what they were."""

from __future__ import annotations

import warnings

import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.checks.base import default_checks
from mlcheck.checks.leakage import TrainValOverlap
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32), y[order]


class Net(lpt.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


class Noisy(Dataset):
    """Digits, with noise drawn afresh at each read where `augment` (a validation split that
    changes between passes)."""

    def __init__(self, x, y, augment: bool) -> None:
        self.x, self.y, self.augment = torch.from_numpy(x), torch.from_numpy(y), augment

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i]
        return (x + 0.2 * torch.randn_like(x) if self.augment else x), self.y[i]


class CountedOverlap(TrainValOverlap):
    """train-val-overlap, counting the rows of each (split, epoch) it is handed."""

    def reset(self) -> None:
        super().reset()
        self.rows: dict[tuple[str, int | None], int] = {}

    def on_batch(self, batch, run):
        rows = batch.inputs if batch.inputs is not None else batch.probe
        key = (batch.split, batch.epoch)
        self.rows[key] = self.rows.get(key, 0) + (0 if rows is None else len(rows))
        return super().on_batch(batch, run)


def _fit(tmp_path, train, val, epochs):
    check = CountedOverlap()
    checks = [check if c.id == check.id else c for c in default_checks()]
    cb = MLCheckCallback(log_dir=str(tmp_path), checks=checks, overfit_batch=False)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Net(), train, val)
    return cb, check


@pytest.mark.parametrize("augmented_val", [False, True])
def test_cost16_the_second_validation_pass_is_routed_only_for_the_rows_it_rechecks(tmp_path, digits, augmented_val):
    # `val-changes` compares the first 64 validation rows of the second pass with the first pass.
    # The confirming pass was handed over merged at its end, so all 597 rows (19 batches) were
    # copied, merged and fingerprinted for it; now each batch reaches the check at once and the
    # pass stops being routed once the 64 rows came (two batches of 32). The verdict is the same.
    lpt.seed_everything(0, verbose=False)
    x, y = digits
    train = DataLoader(TensorDataset(torch.from_numpy(x[:1200]), torch.from_numpy(y[:1200])), batch_size=32)
    val = DataLoader(Noisy(x[1200:], y[1200:], augmented_val), batch_size=32)
    cb, check = _fit(tmp_path, train, val, epochs=3)
    assert check.rows[("val", 0)] == 597 and check.rows[("train", 0)] == 1200  # the first pass: every row
    assert check.rows[("val", 1)] == 64, check.rows  # was 597
    assert ("val", 2) not in check.rows and ("train", 1) not in check.rows  # no later pass (sampled batches apart)
    found = [f for f in cb.findings if f.key == "val-changes"]
    if augmented_val:
        (finding,) = found
        assert finding.severity == Severity.WARNING and finding.evidence["compared"] == 64, finding.format()
        assert finding.evidence["recurring"] == 0
    else:
        assert found == [] and [f.format() for f in cb.findings if f.severity >= Severity.WARNING] == []
