"""`output-loss-mismatch` key `poisson-negative-targets` (batch 32's b10): a Poisson loss trained on
counts standardised like the features (about two thirds of the targets below zero, where the
Poisson loss has no minimum), in Keras (`loss="poisson"`, an exponential output) and Lightning
(`nn.PoissonNLLLoss()` on log-rates, and the inline `F.poisson_nll_loss` in `training_step`, named
by its value since round 35); the same runs on the raw counts stay silent."""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning
from mlcheck.findings import Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


def keys(findings):
    return {f.key for f in findings if f.check == "output-loss-mismatch" and f.severity >= Severity.WARNING}


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(480, 8)).astype(np.float32)
    y = rng.poisson(np.exp(0.5 + x @ rng.normal(0, 0.35, 8))).astype(np.float32)
    return x, y, ((y - y.mean()) / y.std()).astype(np.float32)


@pytest.mark.parametrize(("targets", "expected"), [("standardised", {"poisson-negative-targets"}), ("raw", set())])
def test_keras_poisson_on_standardised_counts(counts, targets, expected):
    x, raw, standardised = counts
    y = standardised if targets == "standardised" else raw
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1, activation="exponential")]
    )
    model.compile(optimizer="adam", loss="poisson")
    cb = KerasCallback(log_dir=None, checks=["output-loss-mismatch"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    assert keys(cb.findings) == expected
    if expected:
        (f,) = [f for f in cb.findings if f.key == "poisson-negative-targets"]
        assert 0.3 < f.evidence["share_negative"] < 0.9 and f.evidence["target_min"] < 0
        assert "raw counts" in f.hint


class PoissonRegressor(pl.LightningModule):
    def __init__(self, inline: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
        self.inline = inline  # F.poisson_nll_loss in training_step: no loss module to read the name from
        if not inline:
            self.loss = nn.PoissonNLLLoss()  # log_input=True: the outputs are log-rates

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.poisson_nll_loss(self(x), y) if self.inline else self.loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize(("targets", "expected"), [("standardised", {"poisson-negative-targets"}), ("raw", set())])
def test_lightning_poisson_nll_on_standardised_counts(counts, targets, expected, inline):
    x, raw, standardised = counts
    y = standardised if targets == "standardised" else raw
    pl.seed_everything(0)
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True)
    cb = LightningCallback(log_dir=None, checks=["output-loss-mismatch"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=1, callbacks=[cb]).fit(PoissonRegressor(inline), loader)
    assert keys(cb.findings) == expected
