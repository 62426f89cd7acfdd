"""A forecaster's input window of a trending, weekly-seasonal series holds lags that each predict
the next value near-perfectly (the same weekday one to four weeks back: held-out R^2 0.985 from
one column): they are lags of the inputs' own series, not copies of the target, and raise no
`feature-leakage` ERROR (healthy-programs batch 13, l3: four ERRORs before). The same window shifted
one step, so that it holds the target itself, keeps the ERROR on that column."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations import lightning as mlcheck_lightning
from tests.lightning_trainer import quiet_trainer

WINDOW = 28


def _windows(holds_target: bool) -> tuple[np.ndarray, np.ndarray]:
    """1,200 days: a linear trend, a weekly season and AR(1) noise; the last 28 values (or, with
    `holds_target`, the last 27 and the target itself) predict the next; standardised with the
    training period's target mean and spread; the first 80% of time, shuffled."""
    rng = np.random.default_rng(3)
    n = 1200
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = 0.6 * noise[i - 1] + rng.normal()
    t = np.arange(n)
    s = 50 + 0.08 * t + 3 * np.sin(2 * np.pi * t / 7) + noise
    shift = 1 if holds_target else 0
    x = np.stack([s[i - WINDOW + shift : i + shift] for i in range(WINDOW, n)])
    y = s[WINDOW:]
    train = int(0.8 * len(x))
    mean, std = y[:train].mean(), y[:train].std()
    return ((x[:train] - mean) / std).astype(np.float32), ((y[:train] - mean) / std).astype(np.float32)


class Forecaster(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(WINDOW, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return x[:, -1] + self.net(x - x[:, -1:]).squeeze(-1)  # the last value plus a learned change

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


@pytest.mark.parametrize("holds_target", [False, True], ids=["lags", "window-holds-target"])
def test_healthy13_lags_of_a_trending_series_are_not_leaks(tmp_path, holds_target):
    x, y = _windows(holds_target)
    pl.seed_everything(3)
    cb = mlcheck_lightning.MLCheckCallback(log_dir=str(tmp_path))
    quiet_trainer(max_epochs=2, callbacks=[cb]).fit(
        Forecaster(), DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True)
    )
    leaks = [f for f in cb.findings if f.check == "feature-leakage"]
    if not holds_target:
        assert leaks == []  # was: ERROR on features 0, 7, 14 and 21 (R^2 0.985-0.987)
        return
    assert [f.evidence["feature"] for f in leaks] == [WINDOW - 1]
    assert leaks[0].severity is Severity.ERROR and leaks[0].evidence["r2"] > 0.99


def _smooth_windows(width: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Batch 23's h08: windows of a smooth series (two sines and a slow random walk) whose last
    value predicts the next near-perfectly (R^2 0.996) and whose last but one does too (0.989,
    two steps on), the training period's windows shuffled."""
    rng = np.random.default_rng(0)
    t = np.arange(4000)
    s = np.sin(t / 25.0) + 0.5 * np.sin(t / 7.3) + np.cumsum(rng.normal(0, 0.05, len(t)))
    s = (s - s[:3000].mean()) / s[:3000].std()
    x = np.stack([s[i : i + width] for i in range(len(s) - width - 1)])[:3000]
    y = s[width : len(s) - 1][:3000]
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), y[order].astype(np.float32)


def _fit(tmp_path, x, y):
    pl.seed_everything(3)
    cb = mlcheck_lightning.MLCheckCallback(log_dir=str(tmp_path))
    model = nn.Sequential(nn.Linear(x.shape[1], 32), nn.ReLU(), nn.Linear(32, 1))

    class Regressor(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model

        def training_step(self, batch, batch_idx):
            return F.mse_loss(self.net(batch[0]).squeeze(-1), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-3)

    quiet_trainer(max_epochs=1, callbacks=[cb]).fit(
        Regressor(), DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=64, shuffle=True)
    )
    return [f for f in cb.findings if f.check == "feature-leakage"]


def test_newbugs23_two_near_perfect_lags_of_a_smooth_series_are_not_leaks(tmp_path):
    x, y = _smooth_windows()
    assert _fit(tmp_path, x, y) == []  # was: ERROR on feature 47 (R^2 0.996): its lag 46 was near-perfect too


def test_two_noisy_copies_of_the_target_are_still_leaks(tmp_path):
    rng = np.random.default_rng(5)
    honest = rng.normal(size=(3000, 8))
    y = honest @ rng.normal(size=8) + rng.normal(0, 0.5, 3000)
    y = (y - y.mean()) / y.std()
    copies = np.stack([y + rng.normal(0, 0.03, 3000), 2 * y + 1 + rng.normal(0, 0.06, 3000)], 1)
    x = np.concatenate([honest, copies], 1).astype(np.float32)
    leaks = _fit(tmp_path, x, y.astype(np.float32))
    assert sorted(f.evidence["feature"] for f in leaks) == [8, 9], [f.format() for f in leaks]
