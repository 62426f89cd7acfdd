"""A loss summed over the batch, on a real Lightning fit of the digits (/tmp/bugs10/b03:
`nn.CrossEntropyLoss(reduction="sum")` at batch 256 with SGD 0.1, a rate tuned for the mean).
The loss at init is 256 x ln(10) and the first steps throw the weights away. Before, the run
got `lr-too-high` ("lower the learning rate 10-100x") and `loss-divergence`, neither naming the
sum; `loss-at-init`, which knows the summed loss, ran in `mlcheck sanity` only. Now it runs at
train start too, for the summed loss alone (a batch's loss equals the sum of its halves'), and
the curve checks name it as their likely cause. The same with `F.cross_entropy(...,
reduction="sum")` called in `training_step` (no loss object: the torch adapter's loss fingerprint
now recognises n times a mean loss). The same module with the mean loss is silent.

A sum is harmless where the learning rate was chosen for it (SGD's divided by the batch size: the
same steps as the mean at 0.1; Adam, whose steps do not depend on the loss's scale). Those runs
got the summed loss as a WARNING, and `lr-too-high` ("the training loss stays at 44.76, 19.4x the
2.303 that a uniform guess scores": a well-trained summed loss, 0.17 a row, read against a
per-row chance level). Now the summed loss is INFO live; the checks that see harm warn and name
it, and their chance level counts the summed rows (`RunInfo.loss_summed_over`)."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _Digits(pl.LightningModule):
    def __init__(self, reduction: str, optimizer: str = "sgd"):
        super().__init__()
        self.optimizer = optimizer
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        self.reduction = reduction
        # "inline": F.cross_entropy(..., reduction="sum") in training_step, no loss object
        self.loss_fn = None if reduction == "inline" else nn.CrossEntropyLoss(reduction=reduction)
        self.lr = 0.1  # tuned for the mean

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.loss_fn is None:
            loss = nn.functional.cross_entropy(self(x), y, reduction="sum")
        else:
            loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        if self.optimizer == "adam":
            return torch.optim.Adam(self.parameters(), lr=1e-3)  # steps independent of the loss's scale
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def _digits_fit(module):
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))[:1400]
    x = torch.tensor(digits.data[order] / 16.0, dtype=torch.float32)
    loader = DataLoader(TensorDataset(x, torch.tensor(digits.target[order])), batch_size=256, shuffle=True)
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=12, callbacks=[cb], log_every_n_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(module, loader)
    return cb.findings


@pytest.mark.parametrize("reduction", ["sum", "inline", "mean"])
def test_summed_loss_is_named_live(reduction):
    found = _digits_fit(_Digits(reduction))
    if reduction == "mean":
        assert not [f for f in found if f.severity >= Severity.WARNING]
        return
    (summed,) = [f for f in found if f.check == "loss-at-init"]  # before: none live
    assert summed.key == "summed" and summed.severity == Severity.INFO and summed.step == 0
    assert summed.evidence["batch"] == 256 and 200 < summed.evidence["ratio"] < 320
    assert "reduction='mean'" in summed.hint
    # the harm the rate tuned for a mean does is what warns, naming the sum
    followers = [f for f in found if f.check in ("lr-too-high", "loss-divergence", "loss-plateau")]
    assert followers and all(f.evidence.get("likely_cause") == "loss-at-init" for f in followers)
    assert any(f.severity >= Severity.WARNING for f in followers)


@pytest.mark.parametrize("optimizer", ["sgd-lr-per-row", "adam"])
def test_deliberate_sum_with_a_rate_chosen_for_it_is_not_warned(optimizer):
    module = _Digits("sum", optimizer="adam" if optimizer == "adam" else "sgd")
    module.lr = 0.1 / 256  # SGD: the mean's 0.1 over the batch's 256 rows, the same steps
    found = _digits_fit(module)
    # before: loss-at-init (summed) and lr-too-high (44.8 or 302 read as 19x or 131x ln(10)) WARNINGs
    assert not [f.format() for f in found if f.severity >= Severity.WARNING]
    (summed,) = [f for f in found if f.check == "loss-at-init"]
    assert summed.key == "summed" and summed.severity == Severity.INFO
