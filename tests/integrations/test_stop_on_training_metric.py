"""`train-val-gap` key `stop-on-training` (issue 12, branch bugs38): an early stopping that watches
the training loss while the run validates.

Batch 38's b09 (Keras, 300 digits, a wide MLP) passed `EarlyStopping(monitor="loss",
restore_best_weights=True)`, the Keras docs' example for a fit without validation data, to a fit
with validation data: the training loss kept falling, the run went all its 80 epochs while the
validation loss rose from its best at epoch 35, and the weights restored were the last. main said
nothing above INFO. The same fit watching "val_loss" (and one without early stopping) is not told.
Real Keras and Lightning fits.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

torch.set_num_threads(1)


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32), y[order].astype(np.int64)


def _keras_told(monitor: str | None):
    keras.utils.set_random_seed(0)
    x, y = _digits()
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    stops = [] if monitor is None else [keras.callbacks.EarlyStopping(monitor=monitor, restore_best_weights=True)]
    cb = KerasCallback(log_dir=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x[:300],
            y[:300],
            validation_data=(x[1000:], y[1000:]),
            epochs=3,
            batch_size=32,
            verbose=0,
            callbacks=[cb, *stops],
        )
    return [f for f in cb.findings if f.key == "stop-on-training"]


@pytest.mark.parametrize("monitor", ["loss", "accuracy"])
def test_bugs38_keras_early_stopping_on_a_training_metric_is_a_warning(monitor):
    (f,) = _keras_told(monitor)
    assert (f.check, f.severity, f.epoch) == ("train-val-gap", Severity.WARNING, 0)
    assert f.evidence["monitor"] == monitor and f.evidence["validation"] == f"val_{monitor}"
    assert f"monitor='val_{monitor}'" in f.hint


@pytest.mark.parametrize("monitor", ["val_loss", None])
def test_bugs38_keras_early_stopping_on_validation_is_not_told(monitor):
    assert _keras_told(monitor) == []


def test_bugs38_lightning_early_stopping_on_train_loss_is_a_warning(tmp_path):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from mlcheck.integrations.lightning import MLCheckCallback
    from tests.lightning_trainer import quiet_trainer

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, i):
            loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, i):
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    pl.seed_everything(0)
    x, y = (torch.tensor(a) for a in _digits())
    tr = DataLoader(TensorDataset(x[:300], y[:300]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1000:], y[1000:]), batch_size=256)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=3, callbacks=[cb, EarlyStopping(monitor="train_loss")]).fit(Net(), tr, va)
    (f,) = [f for f in cb.findings if f.key == "stop-on-training"]
    assert f.severity is Severity.WARNING and f.evidence["monitor"] == "train_loss"
