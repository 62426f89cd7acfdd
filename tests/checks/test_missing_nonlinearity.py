"""`missing-nonlinearity` on real torch models with digits rows: fires on stacked linear layers
(also behind BatchNorm in eval mode, a final softmax or sigmoid, convolutions), silent on models
with activations, on logistic regression and on CNNs with ReLU and pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck.checks.preflight import MissingNonlinearity
from mlcheck.findings import Severity
from mlcheck.integrations.torch import TorchTrainable
from mlcheck.preflight_context import Budget, PreflightContext

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    return (X[order] / 16.0).astype(np.float32), y[order]


def verdict(model, data, loss=None):
    torch.manual_seed(0)
    t = TorchTrainable(model, loss or nn.CrossEntropyLoss(), None, data)
    found = list(MissingNonlinearity().preflight(PreflightContext(t, Budget(seconds=60))))
    return [f for f in found if f.severity >= Severity.WARNING]


class Image(nn.Module):
    """(batch, 64) digits rows -> (batch, 1, 8, 8) images, then `body`."""

    def __init__(self, *body):
        super().__init__()
        self.body = nn.Sequential(*body)

    def forward(self, x):
        return self.body(x.view(-1, 1, 8, 8))


def _batchnorm_with_statistics(*layers):
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):  # running statistics of a trained model, not 0 and 1
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 3)
    return model


def test_fires_on_stacked_linear_layers(digits):
    torch.manual_seed(0)
    (f,) = verdict(nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 32), nn.Linear(32, 10)), digits)
    assert f.check == "missing-nonlinearity" and f.severity is Severity.WARNING
    assert len(f.evidence["weight_matrices"]) == 3 and f.evidence["largest_departure"] < 1e-4


@pytest.mark.parametrize(
    "name,model",
    [
        (
            "batchnorm-eval",
            lambda: _batchnorm_with_statistics(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 10)),
        ),
        ("final-softmax", lambda: nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 10), nn.Softmax(dim=1))),
        ("final-log-softmax", lambda: nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 10), nn.LogSoftmax(dim=1))),
        ("dropout", lambda: nn.Sequential(nn.Linear(64, 32), nn.Dropout(0.5), nn.Linear(32, 10))),
        (
            "cnn-without-activations",
            lambda: Image(nn.Conv2d(1, 8, 3), nn.Conv2d(8, 8, 3), nn.Flatten(), nn.Linear(128, 10)),
        ),
    ],
)
def test_fires_through_affine_layers_and_final_activations(digits, name, model):
    torch.manual_seed(0)
    assert [f.check for f in verdict(model(), digits)] == ["missing-nonlinearity"], name


def test_fires_through_a_final_sigmoid(digits):
    X, y = digits
    binary = (X, (y % 2).astype(np.float32)[:, None])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 1), nn.Sigmoid())
    assert [f.check for f in verdict(model, binary, nn.BCELoss())] == ["missing-nonlinearity"]


@pytest.mark.parametrize(
    "name,model",
    [
        ("relu-mlp", lambda: nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))),
        ("tanh-mlp", lambda: nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))),
        ("gelu-mlp-softmax", lambda: nn.Sequential(nn.Linear(64, 32), nn.GELU(), nn.Linear(32, 10), nn.Softmax(1))),
        ("logistic-regression", lambda: nn.Linear(64, 10)),
        (
            "batchnorm-relu",
            lambda: _batchnorm_with_statistics(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10)),
        ),
        (
            "cnn",
            lambda: Image(
                nn.Conv2d(1, 8, 3),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(8, 8, 2),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(32, 10),
            ),
        ),
        ("cnn-maxpool-only", lambda: Image(nn.Conv2d(1, 8, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(72, 10))),
    ],
)
def test_silent_on_nonlinear_and_deliberately_linear_models(digits, name, model):
    for seed in range(3):
        torch.manual_seed(seed)
        assert verdict(model(), digits) == [], (name, seed)


def test_silent_on_a_logistic_regression_with_sigmoid(digits):
    X, y = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 1), nn.Sigmoid())
    assert verdict(model, (X, (y % 2).astype(np.float32)[:, None]), nn.BCELoss()) == []


def test_skipped_on_integer_inputs():
    X = np.random.default_rng(0).integers(0, 50, (64, 8))
    y = np.zeros(64, dtype=np.int64)
    model = nn.Sequential(nn.Embedding(50, 8), nn.Flatten(), nn.Linear(64, 2))
    t = TorchTrainable(model, nn.CrossEntropyLoss(), None, (X, y))
    (f,) = MissingNonlinearity().preflight(PreflightContext(t))
    assert f.severity is Severity.INFO and f.key == "skipped"
