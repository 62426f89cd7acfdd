"""The pre-flight checks need nothing but the `Trainable` interface: a numpy-only softmax
regression (no torch anywhere) is checked exactly like a torch model, as the Keras adapter is."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

import mlcheck.checks.preflight as preflight_package
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
from mlcheck.preflight_context import Budget, PreflightContext
from mlcheck.trainable import LossConfig, Trainable


class NumpySoftmax(Trainable):
    """Multinomial logistic regression trained by plain SGD, in numpy."""

    framework = "numpy"

    def __init__(self, X, y, classes=10, lr=0.5, batch=32, ignore_input=False, seed=0):
        rng = np.random.default_rng(seed)
        self.X, self.y, self.batch, self.lr = X, y, batch, lr
        self.W = rng.normal(scale=0.01, size=(X.shape[1], classes))
        self.b = np.zeros(classes)
        self.ignore_input = ignore_input

    def batches(self, split="train", n=1):
        if split != "train":
            return []
        return [
            (self.X[i : i + self.batch], self.y[i : i + self.batch])
            for i in range(0, min(len(self.X), n * self.batch), self.batch)
        ]

    def to_numpy(self, batch):
        return batch

    def from_numpy(self, inputs, targets):
        return (inputs.astype(self.X.dtype), targets)

    def clone(self):
        return copy.deepcopy(self)

    def _logits(self, x):
        return (0 * x if self.ignore_input else x) @ self.W + self.b

    def forward(self, batch):
        return self._logits(batch[0])

    def _loss_and_grads(self, batch):
        x, y = batch
        z = self._logits(x)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        loss = float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))
        d = p.copy()
        d[np.arange(len(y)), y] -= 1
        d /= len(y)
        xin = 0 * x if self.ignore_input else x
        return loss, xin.T @ d, d.sum(0)

    def loss(self, batch):
        return self._loss_and_grads(batch)[0]

    def train_step(self, batch):
        loss, gW, gb = self._loss_and_grads(batch)
        self.W -= self.lr * gW
        self.b -= self.lr * gb
        return loss

    def gradients(self, batch):
        _, gW, gb = self._loss_and_grads(batch)
        return {"W": gW, "b": gb}

    def input_gradient(self, batch, index):
        grad = np.zeros_like(batch[0], dtype=np.float64)
        if not self.ignore_input:
            grad[index] = self.W.sum(1)
        return grad

    def parameters(self):
        return {"W": self.W.copy(), "b": self.b.copy()}

    def optimizer_parameters(self):
        return {"W", "b"}

    def loss_config(self):
        return LossConfig("sparse_categorical_crossentropy", True, "linear", self.W.shape[1], "classification")

    def get_lr(self):
        return self.lr

    def set_lr(self, lr):
        self.lr = lr


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


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    return (X[order] / 16.0).astype(np.float32), y[order]


def run(t):
    ctx = PreflightContext(t, Budget(seconds=120))
    found = []
    for cls in ALL:
        ctx.budget = ctx.budget.restart()
        found += [f for f in cls().preflight(ctx) if f.severity >= Severity.WARNING]
    return found


def test_numpy_trainable_clean_and_unchanged(digits):
    t = NumpySoftmax(*digits)
    W, b = t.W.copy(), t.b.copy()
    assert run(t) == []
    assert np.array_equal(W, t.W) and np.array_equal(b, t.b) and t.lr == 0.5


def test_numpy_trainable_bugs_are_found(digits):
    assert {f.check for f in run(NumpySoftmax(*digits, ignore_input=True))} >= {"input-independence", "overfit-batch"}
    slow = {f.check for f in run(NumpySoftmax(*digits, lr=1e-7))}
    assert "lr-too-low" in slow and "lr-too-high" not in slow
    X, y = digits
    (labels,) = OutputLossMismatch().preflight(PreflightContext(NumpySoftmax(X, y, classes=5)))
    assert labels.check == "output-loss-mismatch" and labels.evidence["label_max"] == 9


PREFLIGHT_MODULES = sorted(Path(preflight_package.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", PREFLIGHT_MODULES, ids=[p.stem for p in PREFLIGHT_MODULES])
def test_check_code_imports_no_framework(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"torch", "keras", "lightning", "pytorch_lightning", "tensorflow"}
