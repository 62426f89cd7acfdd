"""`lr-too-low` names a tiny gradient clipping threshold as the cause of negligible updates:
`gradient_clip_val=1e-6` (Lightning) or `clipnorm=1e-6` (Keras), a typo for 1.0, under plain SGD
at a healthy rate 0.1 caps every step at 1e-7. The finding used to tell the user to raise the
learning rate, which is fine already. A usual threshold (1.0) leaves the run silent."""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def wine():
    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    return x[order], y[order]


class _WineNet(lpt.LightningModule):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(13, 64), nn.Tanh(), nn.Linear(64, 3))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.layers(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _low(findings):
    return [f for f in findings if f.check == "lr-too-low" and f.severity >= Severity.WARNING]


@pytest.mark.parametrize("clip", [1e-6, 1.0])
def test_lightning_tiny_gradient_clip_is_named(tmp_path, wine, clip):
    x, y = wine
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=16, shuffle=True)
    cb = LightningCallback(log_dir=str(tmp_path), every_n_steps=5, overfit_batch=False)
    trainer = quiet_trainer(max_epochs=25, gradient_clip_val=clip, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_WineNet(), loader)
    low = _low(cb.findings)
    if clip < 1:
        assert len(low) == 1 and "clipped to 1e-06" in low[0].message and low[0].evidence["grad_clip"] == clip
        assert "clipping threshold" in low[0].hint  # before: "Raise the learning rate 3-10x"
    else:
        assert low == []


def test_keras_tiny_clipnorm_is_named(tmp_path, wine):
    x, y = wine
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((13,)), keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, clipnorm=1e-6),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    cb = KerasCallback(log_dir=str(tmp_path), every_n_steps=5, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=25, batch_size=16, verbose=0, callbacks=[cb])
    low = _low(cb.findings)
    assert len(low) == 1 and "clipped to 1e-06" in low[0].message and "clipping threshold" in low[0].hint
