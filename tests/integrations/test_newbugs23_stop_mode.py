"""Batch 23 of new users' programs, b10: an early stopping that reads its metric the wrong way.

`EarlyStopping(monitor="val_loss", mode="max", restore_best_weights=True)` (Keras; a mode copied
from an accuracy monitor): every fall of the loss counts as no improvement, so training stops
after `patience` epochs and the weights of epoch 0, the worst, are restored. Lightning's
`EarlyStopping` and `ModelCheckpoint` take the same `mode`. Before, nothing was said (the curves
of the 4 epochs are healthy); now `train-val-gap` names the mode at the first epoch's end
(WARNING, key stop-mode). The right mode, and "auto": silent.
"""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
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


def _stop_mode(findings):
    return [f for f in findings if f.check == "train-val-gap" and f.key == "stop-mode"]


@pytest.mark.parametrize("mode", ["max", "min", "auto"])
def test_newbugs23_keras_early_stopping_mode_max_on_val_loss_is_named(tmp_path, mode):
    keras.utils.set_random_seed(0)
    x, y = _wine()
    model = keras.Sequential(
        [keras.Input((13,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = KerasCallback(log_dir=tmp_path / "logs")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", mode=mode, patience=3, restore_best_weights=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x[:140],
            y[:140],
            validation_data=(x[140:], y[140:]),
            epochs=2,
            batch_size=16,
            verbose=0,
            callbacks=[cb, stop],
        )
    found = _stop_mode(cb.findings)
    if mode != "max":
        assert found == [], [f.format() for f in cb.findings]
        return
    (finding,) = found
    assert finding.severity == Severity.WARNING and finding.epoch == 0, finding.format()
    assert finding.evidence == {
        "callbacks": ["EarlyStopping(monitor='val_loss', mode='max')"],
        "monitor": "val_loss",
        "mode": "max",
    }
    assert "mode='min'" in finding.hint


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))

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
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.parametrize("wrong", [True, False])
def test_newbugs23_lightning_checkpoint_mode_min_on_accuracy_is_named(tmp_path, wrong):
    pl.seed_everything(0)
    x, y = (torch.tensor(a) for a in _wine())
    train = DataLoader(TensorDataset(x[:140], y[:140]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    callbacks = [
        cb,
        EarlyStopping(monitor="val_loss", mode="min", patience=3),
        ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_acc", mode="min" if wrong else "max"),
    ]
    trainer = quiet_trainer(max_epochs=2, callbacks=callbacks, default_root_dir=tmp_path, enable_checkpointing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Net(), train, val)
    found = _stop_mode(cb.findings)
    if not wrong:
        assert found == [], [f.format() for f in cb.findings]
        return
    (finding,) = found
    assert finding.severity == Severity.WARNING, finding.format()
    assert finding.evidence["callbacks"] == ["ModelCheckpoint(monitor='val_acc', mode='min')"]
    assert "mode='max'" in finding.hint
