"""Batch 29's b08: `Adam(1e-3, beta_1=0.999, beta_2=0.9)`, the two betas swapped.

The momentum then averages ~1,000 steps of gradients against a scale of ~10 steps of squared
gradients: beta_1^2 / sqrt(beta_2) = 1.05, past the 1 that Adam's convergence analysis assumes
below (Kingma & Ba 2015, Theorem 4.1). Before, no finding named it. Now both adapters read the
betas at train start (`RunInfo.adam_betas`) and `lr-too-high` tells them once (WARNING, key
`betas`). The usual settings stay silent, each a case below.
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

from mlcheck import MLCheckWarning, Monitor, Severity
from mlcheck.checks.learning_rate import LRTooHigh
from mlcheck.integrations.lightning import MLCheckCallback
from mlcheck.run import RunInfo
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)

EPOCHS = 2
SWAPPED = (0.999, 0.9)
DEFAULT = (0.9, 0.999)
#: the settings in use: torch's and Keras' default, LLM pre-training (0.9, 0.95), GANs (0.5,
#: 0.999), transformers (0.9, 0.98), slow momentum (0.99, 0.999), RMSProp-like (0, 0.99),
#: (0.95, 0.999)
COMMON = [DEFAULT, (0.9, 0.95), (0.5, 0.999), (0.9, 0.98), (0.99, 0.999), (0.0, 0.99), (0.95, 0.999), (0.99, 0.99)]


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:640]
    return (x[order] / 16.0).astype(np.float32), y[order]


def _betas_told(pairs):
    """The findings of `lr-too-high` over 40 steps of a healthy falling loss with `pairs` read."""
    monitor = Monitor(checks=[LRTooHigh()], info=RunInfo(adam_betas=tuple(pairs)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        for step in range(40):
            monitor.log_step(step, loss=2.3 * 0.98**step)
        monitor.close()
    return [f for f in monitor.findings if f.key == "betas"]


@pytest.mark.parametrize("betas", COMMON)
def test_the_usual_betas_stay_silent(betas):
    assert _betas_told([betas]) == []


@pytest.mark.parametrize(
    "betas",
    [SWAPPED, (0.99, 0.9), (0.995, 0.98), (1.0, 0.999), (0.9, 1.5), (-0.1, 0.999)],
)
def test_swapped_or_out_of_range_betas_are_told_once(betas):
    (f,) = _betas_told([betas])
    assert f.check == "lr-too-high" and f.severity is Severity.WARNING, f.format()
    assert f.evidence["beta_1"] == pytest.approx(betas[0]) and f.evidence["beta_2"] == pytest.approx(betas[1])
    assert "swapped?" in f.hint


def test_the_worst_group_is_named():
    (f,) = _betas_told([DEFAULT, SWAPPED, (0.5, 0.999)])
    assert (f.evidence["beta_1"], f.evidence["beta_2"]) == SWAPPED
    assert f.evidence["beta1_sq_over_sqrt_beta2"] == pytest.approx(0.999**2 / 0.9**0.5, rel=1e-3)


class Digits(pl.LightningModule):
    def __init__(self, betas):
        super().__init__()
        self.betas = betas
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3, betas=self.betas)


def _told(findings):
    return [f for f in findings if f.severity is not Severity.INFO]


@pytest.mark.parametrize("betas", [SWAPPED, DEFAULT])
def test_lightning_swapped_adam_betas_are_told(tmp_path, betas):
    pl.seed_everything(0)
    x, y = _digits()
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=16, shuffle=True)
    cb = MLCheckCallback(log_dir=False, overfit_batch=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Digits(betas), loader)
    if betas == DEFAULT:
        assert _told(cb.findings) == [], [f.format() for f in cb.findings]
        return
    (f,) = [g for g in cb.findings if g.key == "betas"]  # before: none
    assert f.check == "lr-too-high" and f.severity is Severity.WARNING, f.format()
    assert f.step is not None and f.step < 40 and f.epoch == 0, f.format()  # within the first judgement
    assert _told(cb.findings)[0] is f, [g.format() for g in cb.findings]


@pytest.mark.parametrize("betas", [SWAPPED, DEFAULT])
def test_keras_swapped_adam_betas_are_told(tmp_path, monkeypatch, betas):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

    x, y = _digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    model.compile(
        keras.optimizers.Adam(1e-3, beta_1=betas[0], beta_2=betas[1]),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    cb = KerasCallback(log_dir=None, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0, callbacks=[cb])
    if betas == DEFAULT:
        assert _told(cb.findings) == [], [f.format() for f in cb.findings]
        return
    (f,) = [g for g in cb.findings if g.key == "betas"]  # before: none
    assert f.check == "lr-too-high" and f.severity is Severity.WARNING, f.format()
    assert f.evidence["beta_1"] == pytest.approx(0.999) and f.evidence["beta_2"] == pytest.approx(0.9)
    assert f.step is not None and f.step < 40 and f.epoch == 0, f.format()
    assert _told(cb.findings)[0] is f, [g.format() for g in cb.findings]
