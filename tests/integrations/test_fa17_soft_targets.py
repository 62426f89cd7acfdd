"""Distillation on soft targets alone, on a real Lightning fit of the digits (/tmp/fa17/l4): a
student trained by the cross-entropy of its softened outputs against a trained teacher's
(T = 4, no hard labels), validated by plain cross-entropy. Its training loss cannot fall below
the teacher's softened entropy (~0.9 here) while the validation cross-entropy falls to ~0.2 at
95% accuracy. Before, the run got an ERROR `overfit-batch` ("cannot fit a single batch: the loss
only went from 2.302 to 1.173", every sample of the batch classified right) and a WARNING
`suspicious-val` ("validation loss 22% of the training loss"): both read a loss with a floor of
its own as if it could reach 0 or shared the validation loss's scale. Now, for a loss that
matches none of the common losses of the outputs and labels, overfit-batch also reads the
labels' cross-entropy under the outputs, and suspicious-val's ratio is an INFO. The same student
distilled from a teacher that was never trained (its softened outputs near uniform, nothing
about the labels) still cannot fit a batch: ERROR."""

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
    def __init__(self, teacher: nn.Module):
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, _ = batch
        with torch.no_grad():
            soft = F.softmax(self.teacher(x) / T, 1)
        return -(soft * F.log_softmax(self(x) / T, 1)).sum(1).mean()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        s = self(x)
        self.log_dict({"val_loss": F.cross_entropy(s, y), "val_acc": (s.argmax(1) == y).float().mean()})

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), 3e-3)


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    return torch.tensor(x[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])


def _teacher(x, y, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(teacher.parameters(), 1e-3)
    for _ in range(epochs):
        for j in range(0, 1400, 32):
            opt.zero_grad()
            F.cross_entropy(teacher(x[j : j + 32]), y[j : j + 32]).backward()
            opt.step()
    return teacher


@pytest.mark.parametrize("teacher_epochs", [20, 0], ids=["trained-teacher", "untrained-teacher"])
def test_fa17_soft_target_distillation_is_no_failed_fit_nor_leak(teacher_epochs):
    x, y = _digits()
    teacher = _teacher(x, y, teacher_epochs)
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=10 if teacher_epochs else 1, num_sanity_val_steps=0, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_Student(teacher), train, val)
    loud = [f for f in cb.findings if f.severity >= Severity.WARNING]
    if teacher_epochs:
        assert trainer.callback_metrics["val_acc"] > 0.9  # healthy: the student learns
        assert not loud, [f.format() for f in loud]  # before: ERROR overfit-batch, WARNING suspicious-val
        told = [f for f in cb.findings if f.check == "suspicious-val"]
        assert [f.key for f in told] == ["other-objective"], [f.format() for f in told]
    else:
        fit = [f for f in loud if f.check == "overfit-batch"]
        assert fit and fit[0].severity == Severity.ERROR, [f.format() for f in cb.findings]
