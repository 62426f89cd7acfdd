"""Batch 23's b08: `Adam(lr=1e-3, eps=1.0)` where 1e-8 was meant.

Adam's step is lr x m_hat / (sqrt(v_hat) + eps): with gradients of ~1e-2 and eps 1, the
denominator is ~1 and each step ~lr x g, ~100x smaller than Adam's. Before, the run got a
generic `overfit-batch` ERROR and a `loss-plateau` near chance; nothing named the eps. Now both
adapters read the optimizer's own state at the first epoch's end (`RunInfo.adam_step_share`: the
median share of Adam's normalised step the weights take) and `lr-too-low` names the eps (WARNING,
key `eps`) when eps is far above its defaults, the share under 0.1, the updates small and the loss
barely fallen. Healthy: torch's default eps (1e-8), Keras' (1e-7), and eps=1 with a rate raised to
match (TensorFlow's Inception recipe) stay silent.
"""

from __future__ import annotations

import os
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

EPOCHS = 4


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:960]
    return (x[order] / 16.0).astype(np.float32), y[order]


class Digits(pl.LightningModule):
    def __init__(self, lr, eps):
        super().__init__()
        self.lr, self.eps = lr, eps
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, eps=self.eps)


def _told(findings):
    return [f for f in findings if f.severity is not Severity.INFO]


@pytest.mark.parametrize("lr, eps", [(1e-3, 1.0), (1e-3, 1e-8), (0.3, 1.0)])
def test_lightning_adam_eps_far_above_the_gradients_is_named(tmp_path, lr, eps):
    pl.seed_everything(0)
    x, y = _digits()
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=False, overfit_batch=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Digits(lr, eps), loader)
    eps_told = [f for f in cb.findings if f.key == "eps"]
    if eps != 1.0 or lr > 1e-2:
        assert _told(cb.findings) == [], [f.format() for f in cb.findings]
        return
    (f,) = eps_told  # before: none
    assert f.check == "lr-too-low" and f.severity is Severity.WARNING, f.format()
    assert f.evidence["adam_eps"] == 1.0 and f.evidence["adam_step_share"] < 0.1
    assert _told(cb.findings)[0] is f, [g.format() for g in cb.findings]


@pytest.mark.parametrize("lr, eps", [(1e-3, 1.0), (1e-3, 1e-7), (0.3, 1.0)])
def test_keras_adam_epsilon_far_above_the_gradients_is_named(tmp_path, monkeypatch, lr, eps):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

    x, y = _digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(lr, epsilon=eps), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = KerasCallback(log_dir=None, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=EPOCHS, batch_size=32, verbose=0, callbacks=[cb])
    eps_told = [f for f in cb.findings if f.key == "eps"]
    if eps != 1.0 or lr > 1e-2:
        assert _told(cb.findings) == [], [f.format() for f in cb.findings]
        return
    (f,) = eps_told  # before: none
    assert f.check == "lr-too-low" and f.severity is Severity.WARNING, f.format()
    assert f.evidence["adam_eps"] == 1.0 and f.evidence["adam_step_share"] < 0.1
