"""A tiny softmax regression in numpy implementing `mlcheck.trainable.Trainable`: lets the
runner's own behaviour (budgets, failures, random state) be tested in milliseconds, and shows
that users' own frameworks can be checked through the interface."""

from __future__ import annotations

import copy

import numpy as np

from mlcheck.trainable import LossConfig, Trainable


class NumpyTrainable(Trainable):
    framework = "numpy"

    def __init__(self, x, y, x_val=None, y_val=None, classes=None, lr=0.5, batch_size=32, seed=0):
        self.x, self.y = np.asarray(x, dtype=float), np.asarray(y)
        self.x_val, self.y_val = x_val, y_val
        self.classes = classes or int(self.y.max()) + 1
        rng = np.random.default_rng(seed)
        self.w = rng.normal(0, 0.01, (self.x.shape[1], self.classes))
        self.b = np.zeros(self.classes)
        self.lr = lr
        self.batch_size = batch_size
        self.steps = 0

    def batches(self, split="train", n=1):
        x, y = (self.x, self.y) if split == "train" else (self.x_val, self.y_val)
        if x is None:
            return []
        bs = self.batch_size
        return [(x[i : i + bs], y[i : i + bs]) for i in range(0, min(len(x), n * bs), bs)]

    def to_numpy(self, batch):
        return batch

    def from_numpy(self, inputs, targets):
        return (inputs, targets)

    def clone(self):
        return copy.deepcopy(self)

    def forward(self, batch):
        with np.errstate(all="ignore"):  # non-finite data are a finding, not a crash
            return batch[0] @ self.w + self.b

    def _probs(self, batch):
        with np.errstate(all="ignore"):
            z = self.forward(batch)
            z = z - z.max(1, keepdims=True)
            p = np.exp(z)
            return p / p.sum(1, keepdims=True)

    def loss(self, batch):
        p = self._probs(batch)
        return float(-np.log(p[np.arange(len(p)), batch[1]] + 1e-12).mean())

    def gradients(self, batch):
        x, y = batch
        p = self._probs(batch)
        p[np.arange(len(p)), y] -= 1
        p /= len(x)
        return {"w": x.T @ p, "b": p.sum(0)}

    def train_step(self, batch):
        before = self.loss(batch)
        g = self.gradients(batch)
        self.w -= self.lr * g["w"]
        self.b -= self.lr * g["b"]
        self.steps += 1
        return before

    def input_gradient(self, batch, index):
        out = np.zeros_like(batch[0], dtype=float)
        out[index] = self.w.sum(1)
        return out

    def parameters(self):
        return {"w": self.w.copy(), "b": self.b.copy()}

    def optimizer_parameters(self):
        return {"w", "b"}

    def loss_config(self):
        return LossConfig(
            loss="cross_entropy",
            from_logits=True,
            output_activation="linear",
            output_units=self.classes,
            task="classification",
        )

    def get_lr(self):
        return self.lr

    def set_lr(self, lr):
        self.lr = lr


def blobs(n=600, features=8, classes=3, seed=0):
    """Separable Gaussian blobs, shuffled, scaled to unit size: (x_train, y_train, x_val, y_val)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = rng.normal(0, 2, (classes, features))
    x = (centers[y] + rng.normal(size=(n, features))) / 2
    cut = int(0.8 * n)
    return x[:cut], y[:cut], x[cut:], y[cut:]
