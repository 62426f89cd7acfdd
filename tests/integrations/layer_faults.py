"""Models with planted per-layer faults, and their healthy counterparts, for the layer checks'
tests and the fault benchmark: real Lightning training on sklearn's digits (seconds each)."""

from __future__ import annotations

import lightning.pytorch as L
import numpy as np
import torch
from torch import nn

from tests.lightning_trainer import quiet_trainer


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16).astype(np.float32), y[order].astype(np.int64)


_X, _Y = _digits()


def loaders(scale: float = 1.0, batch_size: int = 32, image: bool = False, n_train: int = 1200):
    x = _X * scale
    if image:
        x = x.reshape(-1, 1, 8, 8)
    ds = torch.utils.data.TensorDataset(torch.tensor(x[:n_train]), torch.tensor(_Y[:n_train]))
    val = torch.utils.data.TensorDataset(torch.tensor(x[n_train:]), torch.tensor(_Y[n_train:]))
    return (
        torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True),
        torch.utils.data.DataLoader(val, batch_size=256),
    )


class LogAt(nn.Module):
    """A custom layer that computes log(0) once the step counter reaches `at`: relu(x) is 0
    for inactive units, so log gives -inf there (and NaN after the next operations)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.training and self.calls > self.at:
            return torch.log(torch.relu(x))
        return x


class PairwiseDistanceAt(nn.Module):
    """Adds each row's mean Euclidean distance to the batch's rows from step `at`: the distance
    of a row to itself is sqrt(0), finite forward, NaN gradient (a backward origin)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.training and self.calls > self.at:
            dist = (x.unsqueeze(0) - x.unsqueeze(1)).pow(2).sum(-1).sqrt()
            return x + dist.mean(1, keepdim=True)
        return x


class Attention(nn.Module):
    """Self-attention over the 8 rows of a digit with a causal -inf mask (healthy)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.register_buffer("mask", torch.triu(torch.full((8, 8), float("-inf")), diagonal=1))

    def forward(self, x):
        seq = x.reshape(-1, 8, 8)
        out, _ = self.attn(seq, seq, seq, attn_mask=self.mask)
        return out.reshape(-1, 64)


def build(name: str) -> nn.Module:  # noqa: C901  (one branch per planted fault: flat on purpose)
    """The network of the case `name` (see CASES)."""
    torch.manual_seed(0)
    if name == "vanishing":
        layers: list[nn.Module] = []
        width = 64
        for _ in range(10):
            linear = nn.Linear(width, 64)
            nn.init.normal_(linear.weight, std=0.01)
            layers += [linear, nn.Sigmoid()]
        return nn.Sequential(*layers, nn.Linear(64, 10))
    if name == "exploding":
        layers = []
        for _ in range(6):
            linear = nn.Linear(64, 64)
            nn.init.normal_(linear.weight, std=1.0)  # Kaiming: sqrt(2 / 64) = 0.18
            layers += [linear, nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(64, 10))
    if name == "dead":
        hidden = nn.Linear(64, 128)
        nn.init.constant_(hidden.bias, -10.0)
        return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), hidden, nn.ReLU(), nn.Linear(128, 10))
    if name == "dead-deep":  # six ReLU layers at SGD 0.05 + momentum 0.9: half the last ones die, loss at chance
        layers = []
        for _ in range(6):
            layers += [nn.Linear(64, 64), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(64, 10))
    if name in ("saturated", "clean-tanh"):
        return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
    if name == "frozen":
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        model[2].requires_grad_(False)  # meant model[0]
        return model
    if name == "frozen-backbone":
        backbone = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        backbone.requires_grad_(False)  # pre-trained, frozen on purpose
        return nn.Sequential(backbone, nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    if name == "nan-forward":
        return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), LogAt(60), nn.Linear(32, 10))
    if name == "nan-backward":
        return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), PairwiseDistanceAt(60), nn.Linear(32, 10))
    if name == "clean-mlp":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    if name == "clean-bn":
        return nn.Sequential(
            nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(),
            nn.Linear(64, 10),
        )  # fmt: skip
    if name == "clean-cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10),
        )  # fmt: skip
    if name == "clean-attention":
        return nn.Sequential(Attention(), nn.LayerNorm(64), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    raise KeyError(name)


#: case -> (expected check id or None for silence, the layer it must name, input scale, image)
CASES = {
    "vanishing": ("vanishing-gradient", "net.0", 1.0, False),
    "exploding": ("exploding-gradient", "net.0", 1.0, False),
    "dead": ("dead-units", "net.3", 1.0, False),
    "saturated": ("saturated-activations", "net.1", 16 * 40.0, False),
    "frozen": ("frozen-parameters", "net.2", 1.0, False),
    "nan-forward": ("nonfinite-origin", "net.3", 1.0, False),
    "nan-backward": ("nonfinite-origin", "net.3", 1.0, False),
    "frozen-backbone": (None, None, 1.0, False),
    "clean-mlp": (None, None, 1.0, False),
    "clean-bn": (None, None, 1.0, False),
    "clean-cnn": (None, None, 1.0, True),
    "clean-tanh": (None, None, 1.0, False),
    "clean-attention": (None, None, 1.0, False),
}


#: cases trained otherwise than SGD(lr=0.05, momentum=0.9): (lr, momentum)
OPTIMIZER = {"exploding": (1e-4, 0.0)}


class Net(L.LightningModule):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.net = build(name)
        self.lr, self.momentum = OPTIMIZER.get(name, (0.05, 0.9))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=self.lr, momentum=self.momentum)


LAYER_CHECK_IDS = (
    "vanishing-gradient",
    "exploding-gradient",
    "dead-units",
    "saturated-activations",
    "frozen-parameters",
    "nonfinite-origin",
)


def fit(name: str, root, *, epochs: int = 2, callbacks=(), every_n_steps: int | None = 5, **kwargs):
    """Trains case `name` with `MLCheckCallback(every_n_steps=...)` (the layer checks are among the
    defaults; None: the callback's own default interval); returns (callback, module)."""
    from mlcheck.integrations.lightning import MLCheckCallback

    _, _, scale, image = CASES.get(name, (None, None, 1.0, False))  # cases of one test alone: plain digits
    L.seed_everything(0, verbose=False)
    module = Net(name)
    train, val = loaders(scale=scale, image=image)
    if every_n_steps is not None:
        kwargs["every_n_steps"] = every_n_steps
    cb = MLCheckCallback(overfit_batch=False, log_dir=root, **kwargs)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb, *callbacks], default_root_dir=root)
    trainer.fit(module, train, val)
    return cb, module
