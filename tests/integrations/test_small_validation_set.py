"""`train-val-gap` on Lightning runs whose accuracy never drops.

A healthy run with a small validation set (40 of scikit-learn's digits): its validation loss rises
three epochs in a row early on and then wanders around a flat level, the scatter of a mean over 40
samples. The run is configured for 12 epochs, enough to measure that scatter, so the short-run
shape rule does not judge its first epochs.

A breast-cancer classifier that converges in a few epochs and then grows over-confident: its
validation loss rises by ~20% while its accuracy holds at 0.965. Past the 15% rise the finding is
a WARNING, and its message says that the accuracy held; since hind18 it is a WARNING before that,
once the rise has lasted 8 epochs while the training loss halved."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Digits(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Dropout(0.1), nn.Linear(96, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        self.log("val_loss", F.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def test_small_validation_set_with_early_noisy_rises_is_not_overfitting(tmp_path):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    x = ((x - 4.88) / 6.02).astype(np.float32)  # the digits' own mean and standard deviation
    perm = np.random.default_rng(2).permutation(len(x))
    x, y = torch.tensor(x[perm]), torch.tensor(y[perm])
    train = DataLoader(TensorDataset(x[:-40], y[:-40]), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(x[-40:], y[-40:]), batch_size=40)
    cb = MLCheckCallback(log_dir=False, checks=["train-val-gap"], overfit_batch=False)
    trainer = quiet_trainer(max_epochs=12, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Digits(), train, val)
    assert [f.format() for f in cb.findings if f.severity >= Severity.WARNING] == []


class Cancer(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.binary_cross_entropy_with_logits(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        z = self(x)
        self.log("val_loss", F.binary_cross_entropy_with_logits(z, y))
        self.log("val_acc", ((z > 0).float() == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def test_a_large_rise_with_accuracy_held_says_so(tmp_path):
    pl.seed_everything(0)
    x, y = load_breast_cancer(return_X_y=True)
    xt, xv, yt, yv = train_test_split(x, y, test_size=0.25, random_state=1, stratify=y)
    scaler = StandardScaler().fit(xt)
    f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    train = DataLoader(TensorDataset(f32(scaler.transform(xt)), f32(yt)), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(f32(scaler.transform(xv)), f32(yv)), batch_size=256)
    cb = MLCheckCallback(log_dir=False, checks=["train-val-gap"], overfit_batch=False)
    trainer = quiet_trainer(max_epochs=25, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Cancer(), train, val)
    (f,) = [f for f in cb.findings if f.check == "train-val-gap" and f.severity is Severity.WARNING]
    assert "Validation acc has held" in f.message, f.message
    # a WARNING past the 15% rise, or (hind18) before it: a rise of 8+ epochs while the training loss halved
    if "% is past the 15% up to which" in f.message:
        assert f.evidence["val_loss"] > 1.15 * f.evidence["best_val_loss"]
    else:
        assert "the rise has lasted" in f.message and f.evidence["epochs_since_best"] >= 8, f.message
        assert f.evidence["train_loss"] <= 0.5 * f.evidence["train_loss_at_best"], f.evidence
