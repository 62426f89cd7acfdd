"""Pre-flight checks on LightningModules: the loss is whatever training_step returns (here
F.cross_entropy, seen only through its values), optimizers come from configure_optimizers."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

from mlcheck.checks.learning_rate import LRTooHigh, LRTooLow
from mlcheck.checks.preflight import (
    BatchDependence,
    InputIndependence,
    LossAtInit,
    OutputLossMismatch,
    OverfitBatch,
    UnusedParameters,
)
from mlcheck.findings import Severity
from mlcheck.integrations.torch import LightningTrainable
from mlcheck.preflight_context import Budget, PreflightContext

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    return (X[order] / 16.0).astype(np.float32), y[order]


class Classifier(pl.LightningModule):
    def __init__(self, lr=1e-3, optimizer="adam"):
        super().__init__()
        self.lr, self.optimizer = lr, optimizer
        self.body = nn.Sequential(nn.Linear(64, 32), nn.ReLU())
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.body(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        if self.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr)
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class SoftmaxOutput(Classifier):
    def forward(self, x):
        return torch.softmax(super().forward(x), dim=-1)


class ViewBug(Classifier):
    def forward(self, x):
        return self.head(self.body(x.reshape(x.shape[1], x.shape[0]).T))


class HeadOnlyOptimizer(Classifier):
    def configure_optimizers(self):
        return torch.optim.Adam(self.head.parameters(), lr=self.lr)


class ExtraLayer(Classifier):
    def __init__(self):
        super().__init__()
        self.projection = nn.Linear(32, 32)  # defined, never called


def run(module, data, checks):
    ctx = PreflightContext(LightningTrainable(module, train_data=data), Budget(seconds=120))
    found = []
    for check in checks:
        ctx.budget = ctx.budget.restart()
        found += [f for f in check.preflight(ctx) if f.severity >= Severity.WARNING]
    return found


ALL = [
    OverfitBatch,
    LossAtInit,
    InputIndependence,
    BatchDependence,
    UnusedParameters,
    OutputLossMismatch,
    LRTooHigh,
    LRTooLow,
]


def test_clean_lightning_module_passes(digits):
    torch.manual_seed(0)
    assert run(Classifier(), digits, [c() for c in ALL]) == []


@pytest.mark.parametrize(
    "module, check, check_id",
    [
        (SoftmaxOutput, OutputLossMismatch, "output-loss-mismatch"),
        (ViewBug, BatchDependence, "batch-dependence"),
        (HeadOnlyOptimizer, UnusedParameters, "unused-parameters"),
        (ExtraLayer, UnusedParameters, "unused-parameters"),
    ],
)
def test_buggy_lightning_modules(digits, module, check, check_id):
    torch.manual_seed(0)
    found = run(module(), digits, [check()])
    assert [f.check for f in found] == [check_id], [f.format() for f in found]


def test_lightning_learning_rate_far_too_low(digits):
    torch.manual_seed(0)
    found = run(Classifier(lr=1e-6, optimizer="sgd"), digits, [LRTooHigh(), LRTooLow()])
    assert [f.check for f in found] == ["lr-too-low"]
