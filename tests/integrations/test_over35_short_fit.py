"""`train-val-gap` on real 10-epoch Lightning fits (issue 12, branch over35: "short runs (8-10
epochs) must be judged too"): a digits MLP memorising half-wrong labels on 200 samples is told
as overfitting by its 9th epoch (no later than before the short-run early test); the same MLP on
1,200 clean samples stays silent. Branch over38 (the short-run early test kept, in runs of up to 10
validations): a 12-epoch fit memorising half-wrong labels told an epoch earlier, worded as what a
short run knows; a clean 15-epoch fit silent."""

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


class Digits(pl.LightningModule):
    def __init__(self, lr: float):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

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
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _fit(tmp_path, wrong: float, n_train: int, lr: float, epochs: int = 10) -> list:
    """`epochs` epochs on `n_train` digits, a share `wrong` of their labels drawn at random; validation on
    500 other digits with their true labels. The `train-val-gap` findings."""
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    x = ((x - 4.88) / 6.02).astype(np.float32)  # the digits' own mean and standard deviation
    rng = np.random.default_rng(2)
    perm = rng.permutation(len(x))
    x, y = x[perm], y[perm].copy()
    xt, yt = x[:n_train], y[:n_train].copy()
    flip = rng.random(n_train) < wrong
    yt[flip] = rng.integers(0, 10, int(flip.sum()))
    train = DataLoader(TensorDataset(torch.tensor(xt), torch.tensor(yt)), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(torch.tensor(x[-500:]), torch.tensor(y[-500:])), batch_size=500)
    cb = MLCheckCallback(log_dir=False, checks=["train-val-gap"], overfit_batch=False)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Digits(lr), train, val)
    return [f for f in cb.findings if f.check == "train-val-gap"]


def test_a_short_fit_memorising_wrong_labels_is_told(tmp_path):
    warned = [f for f in _fit(tmp_path, 0.5, 200, 1e-2) if f.severity >= Severity.WARNING]
    assert warned, "a 10-epoch fit memorising half-wrong labels was not told"
    assert warned[0].epoch <= 9, warned[0].format()  # epoch 9 (best 4) before this change, and with it


def test_a_short_clean_fit_stays_silent(tmp_path):
    assert [f.format() for f in _fit(tmp_path, 0.0, 1200, 1e-3) if f.severity >= Severity.WARNING] == []


def test_a_12_epoch_fit_memorising_wrong_labels_is_told_at_epoch_9(tmp_path):
    # main: epoch 10 (best 6); the mean of the last three epochs clears the short test's bar at 9
    warned = [f for f in _fit(tmp_path, 0.5, 200, 3e-3, epochs=12) if f.severity >= Severity.WARNING]
    assert warned and warned[0].epoch == 9, [f.format() for f in warned]
    assert warned[0].message.startswith("The model may be overfitting"), warned[0].message
    assert "may still come back" in warned[0].message and warned[0].evidence["validations"] == 10


def test_a_15_epoch_clean_fit_stays_silent(tmp_path):
    assert [f.format() for f in _fit(tmp_path, 0.0, 1200, 1e-3, epochs=15) if f.severity >= Severity.WARNING] == []
