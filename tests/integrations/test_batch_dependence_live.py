"""`batch-dependence` runs at train start in the callbacks, not only in `mlcheck sanity`. A
LightningModule that flattens its 8x8 images with `x.reshape(64, -1).t()` (batch and feature
axes swapped, then "fixed" with a transpose) mixes the samples of each batch: every row holds
pixels of every image. The model can still memorise one fixed batch, so `overfit-batch`
passes; the training loss sits at chance, and `loss-plateau` alone told the user to raise the
learning rate. Now the mixing is named at step 0 and the plateau says it follows from it. The
healthy twin (`x.reshape(len(x), -1)`) stays silent, and so does a model fed integer token ids
(the test needs float inputs: no INFO "skipped" note in a live run)."""

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


class _Images(pl.LightningModule):
    def __init__(self, mixed: bool):
        super().__init__()
        self.mixed = mixed
        self.fc1, self.fc2 = nn.Linear(64, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = x.reshape(64, -1).t() if self.mixed else x.reshape(len(x), -1)
        return self.fc2(F.relu(self.fc1(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


class _Tokens(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.embed, self.head = nn.EmbeddingBag(17, 8), nn.Linear(8, 2)

    def forward(self, ids):
        return self.head(self.embed(ids))

    def training_step(self, batch, batch_idx):
        ids, y = batch
        loss = F.cross_entropy(self(ids), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _fit(module, x, y, epochs):
    pl.seed_everything(0)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(module, loader)
    return cb.findings


@pytest.mark.parametrize("mixed", [True, False])
def test_reshape_that_mixes_samples_is_named_live(mixed):
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))[:640]
    x = torch.tensor(digits.images[order][:, None] / 16.0, dtype=torch.float32)
    found = _fit(_Images(mixed), x, torch.tensor(digits.target[order]), epochs=6)
    mixing = [f for f in found if f.check == "batch-dependence"]
    if mixed:
        (finding,) = mixing  # before: none (sanity only)
        assert finding.severity == Severity.WARNING and finding.step == 0
        plateau = [f for f in found if f.check == "loss-plateau"]
        assert all(f.evidence.get("likely_cause") == "batch-dependence" for f in plateau)
    else:
        assert not [f for f in found if f.severity >= Severity.WARNING]


def test_integer_inputs_leave_no_note():
    rng = np.random.default_rng(0)
    ids = torch.tensor(rng.integers(0, 17, size=(256, 6)))
    found = _fit(_Tokens(), ids, torch.tensor(rng.integers(0, 2, size=256)), epochs=1)
    assert [f for f in found if f.check == "batch-dependence"] == []


class _RowLSTM(pl.LightningModule):
    """The digits' 8 rows as 8 time steps of 8 pixels, read by an LSTM (/tmp/bugs10/b02)."""

    def __init__(self, batch_first: bool):
        super().__init__()
        self.lstm = nn.LSTM(8, 32, batch_first=batch_first)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        out, _ = self.lstm(x.reshape(-1, 8, 8))  # (batch, time, features)
        return self.head(out[:, -1, :])

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_without_batch_first_is_named(batch_first):
    """nn.LSTM reads (time, batch, features) unless batch_first=True: fed (batch, time,
    features), it runs along the batch, so each sample's output reads the samples before it
    and the first sample's reads none. The finding says so and names batch_first (before: the
    generic hint about a view/reshape that swaps axes). With batch_first=True: silent."""
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))[:320]
    x = torch.tensor(digits.data[order] / 16.0, dtype=torch.float32)
    found = _fit(_RowLSTM(batch_first), x, torch.tensor(digits.target[order]), epochs=1)
    mixing = [f for f in found if f.check == "batch-dependence"]
    if batch_first:
        assert not [f for f in found if f.severity >= Severity.WARNING]
        return
    (finding,) = mixing
    assert finding.severity == Severity.WARNING and finding.step == 0
    assert finding.evidence["direction"] == "earlier-samples"
    assert finding.evidence["other_samples_involved"] == finding.evidence["batch"] - 1
    assert "batch_first=True" in finding.hint and "RNN" in finding.message
