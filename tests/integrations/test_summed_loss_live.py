"""A loss summed over the batch, on a real Lightning fit of the digits (/tmp/bugs10/b03:
`nn.CrossEntropyLoss(reduction="sum")` at batch 256 with SGD 0.1, a rate tuned for the mean).
The loss at init is 256 x ln(10) and the first steps throw the weights away. Before, the run
got `lr-too-high` ("lower the learning rate 10-100x") and `loss-divergence`, neither naming the
sum; `loss-at-init`, which knows the summed loss, ran in `mlcheck sanity` only. Now it runs at
train start too, for the summed loss alone (a batch's loss equals the sum of its halves'), and
the curve checks name it as their likely cause. The same with `F.cross_entropy(...,
reduction="sum")` called in `training_step` (no loss object: the torch adapter's loss fingerprint
now recognises n times a mean loss). The same module with the mean loss is silent."""

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

torch.set_num_threads(1)


class _Digits(pl.LightningModule):
    def __init__(self, reduction: str):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        self.reduction = reduction
        # "inline": F.cross_entropy(..., reduction="sum") in training_step, no loss object
        self.loss_fn = None if reduction == "inline" else nn.CrossEntropyLoss(reduction=reduction)

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
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("reduction", ["sum", "inline", "mean"])
def test_summed_loss_is_named_live(reduction):
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))[:1400]
    x = torch.tensor(digits.data[order] / 16.0, dtype=torch.float32)
    loader = DataLoader(TensorDataset(x, torch.tensor(digits.target[order])), batch_size=256, shuffle=True)
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=None)
    trainer = pl.Trainer(
        max_epochs=12,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_Digits(reduction), loader)
    found = cb.findings
    if reduction == "mean":
        assert not [f for f in found if f.severity >= Severity.WARNING]
        return
    (summed,) = [f for f in found if f.check == "loss-at-init"]  # before: none live
    assert summed.key == "summed" and summed.severity == Severity.WARNING and summed.step == 0
    assert summed.evidence["batch"] == 256 and 200 < summed.evidence["ratio"] < 320
    assert "reduction='mean'" in summed.hint
    followers = [f for f in found if f.check in ("lr-too-high", "loss-divergence", "loss-plateau")]
    assert followers and all(f.evidence.get("likely_cause") == "loss-at-init" for f in followers)
