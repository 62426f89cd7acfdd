"""Batch 20 of new users' programs, b11: a ReduceLROnPlateau that reads its metric the wrong way.

`ReduceLROnPlateau(monitor="val_accuracy", mode="min")` (Keras), or torch's `ReduceLROnPlateau`
at its default `mode="min"` under Lightning's `monitor="val_acc"`: each epoch the accuracy rises
counts as a stall, so the rate is cut after every `patience` epochs however well the run goes
(wine, SGD 0.01, patience 1: 5e-16 by epoch 20). Before, the first WARNING blamed the labels
(`loss-plateau` val-prior) and the decay was an INFO; now `lr-schedule` names the mode at the first
judged step or epoch end (WARNING, key plateau-mode). The right mode: silent.
"""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


def _wine():
    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x = (x - x[:140].mean(0)) / x[:140].std(0)
    return x.astype(np.float32), y.astype(np.int64)


def _plateau_mode(findings):
    return [f for f in findings if f.check == "lr-schedule" and f.key == "plateau-mode"]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_newbugs20_keras_plateau_mode_min_on_accuracy_is_named(tmp_path, mode):
    keras.utils.set_random_seed(0)
    x, y = _wine()
    model = keras.Sequential(
        [keras.Input((13,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = KerasCallback(log_dir=tmp_path / "logs")
    reduce = keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode=mode, patience=1, factor=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x[:140],
            y[:140],
            validation_data=(x[140:], y[140:]),
            epochs=2,
            batch_size=16,
            verbose=0,
            callbacks=[reduce, cb],
        )
    found = _plateau_mode(cb.findings)
    if mode == "max":
        assert found == [], [f.format() for f in cb.findings]
        return
    (finding,) = found
    assert finding.severity == Severity.WARNING and finding.epoch == 0, finding.format()
    assert finding.evidence == {"monitor": "val_accuracy", "mode": "min", "higher_is_better": True}
    assert "mode='max'" in finding.hint


class Net(pl.LightningModule):
    def __init__(self, mode: str | None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
        self.mode = mode

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.01)
        kw = {} if self.mode is None else {"mode": self.mode}
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.2, **kw)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_acc"}}


@pytest.mark.parametrize("mode", [None, "max"])
def test_newbugs20_lightning_plateau_default_mode_on_accuracy_is_named(tmp_path, mode):
    pl.seed_everything(0)
    x, y = (torch.tensor(a) for a in _wine())
    train = DataLoader(TensorDataset(x[:140], y[:140]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Net(mode), train, val)
    found = _plateau_mode(cb.findings)
    if mode == "max":
        assert found == [], [f.format() for f in cb.findings]
        return
    (finding,) = found
    assert finding.severity == Severity.WARNING, finding.format()
    assert finding.evidence["monitor"] == "val_acc" and finding.evidence["mode"] == "min"
