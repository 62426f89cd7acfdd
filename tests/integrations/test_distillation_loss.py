"""Knowledge distillation on a real Lightning fit of the digits (/tmp/healthy11/l3): a student
trained on 0.7 x KL(student/T || teacher/T) x T^2 + 0.3 x cross-entropy (T = 4, Hinton et al.'s
T^2 scaling), validated by plain cross-entropy. Its training loss starts at ~11 = 4.8 x ln(10)
before any update and falls to ~0.2; the validation cross-entropy falls from 1.9 to 0.14 at
95% accuracy. Before, the run got `lr-too-high` ("stays at 9.6, 4.2x the 2.303 a uniform guess
scores: confidently wrong") and `suspicious-val` ("validation loss 11% of the training loss"):
both read the training loss against a cross-entropy's scale that it is not on. Now a training
loss already above 2 x ln(C) at its first step is not read so. The same student trained by
cross-entropy at Adam 1.0 (thrown off, then stuck far above chance) still gets `lr-too-high`."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)
T = 4.0


class _Student(pl.LightningModule):
    def __init__(self, teacher: nn.Module, lr: float, distil: bool):
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)
        self.net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
        self.lr, self.distil = lr, distil

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        s = self(x)
        if not self.distil:
            return F.cross_entropy(s, y)
        with torch.no_grad():
            t = self.teacher(x)
        kd = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
        return 0.7 * kd + 0.3 * F.cross_entropy(s, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        s = self(x)
        self.log_dict({"val_loss": F.cross_entropy(s, y), "val_acc": (s.argmax(1) == y).float().mean()})

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), self.lr)


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(13).permutation(len(y))
    return torch.tensor(x[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])


def _teacher(x, y) -> nn.Module:
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(teacher.parameters(), 1e-3)
    for _ in range(20):
        for j in range(0, 1400, 32):
            opt.zero_grad()
            F.cross_entropy(teacher(x[j : j + 32]), y[j : j + 32]).backward()
            opt.step()
    return teacher


@pytest.mark.parametrize("case", ["distil", "ce-lr-1.0"])
def test_healthy11_distillation_loss_is_not_read_against_chance(case):
    x, y = _digits()
    teacher = _teacher(x, y)
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    pl.seed_everything(13)
    cb = MLCheckCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=6, num_sanity_val_steps=0, callbacks=[cb])
    student = _Student(teacher, lr=3e-3, distil=True) if case == "distil" else _Student(teacher, lr=1.0, distil=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(student, train, val)
    loud = [f for f in cb.findings if f.severity >= Severity.WARNING]
    if case == "distil":
        assert trainer.callback_metrics["val_acc"] > 0.85  # healthy: the student learns
        assert not loud, [f.format() for f in loud]  # before: lr-too-high and suspicious-val
    else:
        assert "lr-too-high" in {f.check for f in loud}
