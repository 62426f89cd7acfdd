"""Batch 20 of new users' programs, b01: a loss's `ignore_index` set to a real class.

`nn.CrossEntropyLoss(ignore_index=0)` (Keras: `SparseCategoricalCrossentropy(ignore_class=0)`),
copied from a padded-text script onto digits, where 0 is the digit 0: the loss never counts the
class's rows, so the model learns never to answer it (its validation recall falls to ~0 while the
accuracy stays ~0.9). Before, no finding came; now `class-imbalance` names it at the end of the
first epoch (WARNING, key zero-weight, evidence `ignore_index`). torch's default (-100) and a
sequence tagger whose pads carry the ignored tag stay silent.
"""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32), y[order].astype(np.int64)


class Classifier(pl.LightningModule):
    def __init__(self, loss: nn.Module):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        self.loss = loss

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


class Tagger(pl.LightningModule):
    """Tags over 0-padded sequences; pads carry tag 0, which the loss ignores (ignore_index=0)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 16, padding_idx=0)
        self.head = nn.Linear(16, 4)
        self.loss = nn.CrossEntropyLoss(ignore_index=0)

    def forward(self, ids):
        return self.head(self.emb(ids))

    def training_step(self, batch, batch_idx):
        ids, tags = batch
        return self.loss(self(ids).reshape(-1, 4), tags.reshape(-1))

    def validation_step(self, batch, batch_idx):
        ids, tags = batch
        self.log("val_loss", self.loss(self(ids).reshape(-1, 4), tags.reshape(-1)))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def _fit(tmp_path, model, train, val):
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(model, train, val)
    return cb.findings


@pytest.mark.parametrize("ignore_index", [0, -100])
def test_newbugs20_ignore_index_on_a_real_class_is_named(tmp_path, ignore_index):
    pl.seed_everything(0)
    x, y = (torch.tensor(a) for a in _digits())
    train = DataLoader(TensorDataset(x[:1200], y[:1200]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1200:], y[1200:]), batch_size=256)
    findings = _fit(tmp_path, Classifier(nn.CrossEntropyLoss(ignore_index=ignore_index)), train, val)
    found = [f for f in findings if f.check == "class-imbalance" and f.key == "zero-weight"]
    serious = [f for f in findings if f.severity >= Severity.WARNING]
    if ignore_index < 0:
        assert found == [] and serious == [], [f.format() for f in findings]
        return
    (finding,) = found
    assert finding.severity == Severity.WARNING and finding.epoch == 0, finding.format()
    assert finding.evidence["zero_weight_classes"] == [0]
    assert finding.evidence["ignore_index"] == 0
    assert finding.evidence["zero_weight_rows"] == int((y[:1200] == 0).sum())
    assert "ignore_index=0" in finding.message and "-100" in finding.hint


def test_newbugs20_pads_under_ignore_index_in_a_tagger_stay_silent(tmp_path):
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30, size=(600, 20))
    tags = ids % 3 + 1
    lengths = rng.integers(5, 21, size=600)
    pad = np.arange(20)[None, :] >= lengths[:, None]
    ids[pad], tags[pad] = 0, 0
    ids, tags = torch.tensor(ids), torch.tensor(tags)
    train = DataLoader(TensorDataset(ids[:500], tags[:500]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(ids[500:], tags[500:]), batch_size=100)
    findings = _fit(tmp_path, Tagger(), train, val)
    assert not [f for f in findings if f.check == "class-imbalance" and f.key == "zero-weight"], [
        f.format() for f in findings
    ]


@pytest.mark.parametrize("ignore_class", [0, None])
def test_newbugs20_keras_ignore_class_on_a_real_class_is_named(tmp_path, ignore_class):
    keras.utils.set_random_seed(0)
    x, y = _digits()
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(ignore_class=ignore_class))
    cb = KerasCallback(log_dir=tmp_path / "logs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x[:1200], y[:1200], validation_data=(x[1200:], y[1200:]), epochs=2, verbose=0, callbacks=[cb])
    found = [f for f in cb.findings if f.check == "class-imbalance" and f.key == "zero-weight"]
    if ignore_class is None:
        assert found == [], [f.format() for f in cb.findings]
        return
    (finding,) = found
    assert finding.severity == Severity.WARNING and finding.evidence["ignore_index"] == 0, finding.format()
