"""A binary cross-entropy on targets between 0 and 1 has a floor of the targets' own entropy
(BCE(y, p) >= H(y), equal at p = y), not 0 (issue 12, branch fa26; the dev run
`handson-ml3-17-...-c147-13`, a denoising autoencoder on CIFAR-10 pixels, sat at 0.56 with a floor
near 0.55). Live, the callbacks see the targets: `loss-plateau` and `lr-too-low` measure the fall
as (initial - loss) / (initial - floor), the floor the first pass's mean target entropy, and
`overfit-batch` judges its batch above that batch's own. Real fits of an autoencoder on the digits
(pixels / 16, squeezed into [0.25, 0.75]: soft targets whose floor, ~0.60, sits near ln 2) in
Lightning and Keras: the one that learns is silent (before: ERROR `overfit-batch` "the loss only
went from 0.69 to 0.61", and in Lightning a WARNING `loss-plateau` "only 7% below its initial");
the same at a learning rate of 1e-7 is still told."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import Severity


def _pixels() -> np.ndarray:
    return (0.25 + 0.5 * load_digits().data / 16).astype("float32")


def test_fa26_soft_target_entropy_is_the_floor_of_a_binary_cross_entropy():
    from mlcheck.task import soft_target_entropy

    y = np.array([0.25, 0.5, 0.75, 1.0], dtype="float32")
    h = -(y[:3] * np.log(y[:3]) + (1 - y[:3]) * np.log(1 - y[:3]))
    assert soft_target_entropy(y) == pytest.approx(h.sum() / 4)
    p = np.clip(y, 1e-7, 1 - 1e-7)
    assert soft_target_entropy(y) <= float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))) + 1e-6
    # hard labels (floor 0), integers, values outside [0, 1]: no floor
    for hard in (np.array([0.0, 1.0, 1.0]), np.array([0, 1, 1]), np.array([0.5, 2.0])):
        assert soft_target_entropy(hard) is None


def _lightning(lr: float):
    import lightning.pytorch as pl
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from mlcheck.integrations.lightning import MLCheckCallback
    from tests.lightning_trainer import quiet_trainer

    torch.set_num_threads(1)

    class AutoEncoder(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(64, 32),
                nn.Tanh(),
                nn.Linear(32, 16),
                nn.Tanh(),
                nn.Linear(16, 32),
                nn.Tanh(),
                nn.Linear(32, 64),
            )

        def forward(self, x):
            return torch.sigmoid(self.net(x))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.binary_cross_entropy(self(x), y)
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", F.binary_cross_entropy(self(x), y))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr)

    torch.manual_seed(0)
    t = torch.tensor(_pixels())
    n = int(0.8 * len(t))
    train = DataLoader(TensorDataset(t[:n], t[:n]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(t[n:], t[n:]), batch_size=64)
    cb = MLCheckCallback()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_trainer(max_epochs=15, callbacks=[cb]).fit(AutoEncoder(), train, val)
    return cb.findings


def _keras(lr: float, tmp_path):
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    keras.utils.set_random_seed(0)
    x = _pixels()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(64, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy")
    cb = MLCheckCallback(log_dir=str(tmp_path / "logs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, x, epochs=12, batch_size=32, validation_split=0.2, verbose=0, callbacks=[cb])
    return cb.findings


def _told(findings) -> list[str]:
    return [f"{f.check}: {f.message}" for f in findings if f.severity >= Severity.WARNING]


def test_fa26_lightning_autoencoder_on_soft_targets_that_learns_is_silent():
    assert _told(_lightning(1e-3)) == []


def test_fa26_lightning_autoencoder_on_soft_targets_that_cannot_learn_is_told():
    told = _told(_lightning(1e-7))
    assert any(t.startswith(("loss-plateau", "lr-too-low", "overfit-batch")) for t in told), told


def test_fa26_keras_autoencoder_on_soft_targets_that_learns_is_silent(tmp_path):
    assert _told(_keras(1e-3, tmp_path)) == []


def test_fa26_keras_autoencoder_on_soft_targets_that_cannot_learn_is_told(tmp_path):
    told = _told(_keras(1e-7, tmp_path))
    assert any(t.startswith(("loss-plateau", "lr-too-low", "overfit-batch")) for t in told), told
