"""Batch 20 of new users' programs, b04: manual gradient accumulation that never steps.

A LightningModule with `automatic_optimization = False` accumulates gradients over 64 batches
while an epoch has fewer: `opt.step()` is never reached and the weights never change. mlcheck
saw no training loss (the step returns nothing) and skips `overfit-batch` under manual
optimization, so the run was silent. Now the weights' fingerprints at the epoch's start and end
show that nothing moved: `unused-parameters` ERROR, key `no-step`, at the first epoch's end.
Accumulation that does step (manual, and Lightning's own `accumulate_grad_batches` longer than
the epoch, which steps at the epoch's last batch) stays silent, and so does an epoch whose
learning rate is 0 (a per-epoch warm-up from 0: `lr-schedule` judges the rate).
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class ManualAccumulation(pl.LightningModule):
    def __init__(self, accumulate: int):
        super().__init__()
        self.automatic_optimization = False
        self.accumulate = accumulate
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        if batch_idx == 0:
            opt.zero_grad()
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.manual_backward(loss / self.accumulate)
        if (batch_idx + 1) % self.accumulate == 0:
            opt.step()
            opt.zero_grad()
        self.log("train_loss", loss)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


class Automatic(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


class WarmupFromZero(Automatic):
    """A linear warm-up stepped per epoch that starts at 0: epoch 0 moves no weight, on purpose."""

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=2e-3)
        return [opt], [torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: min(1.0, epoch / 5))]


def _fit(tmp_path, module, **trainer_args):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x[:512] / 16.0, dtype=torch.float32), torch.tensor(y[:512])
    train = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(
        max_epochs=2, limit_train_batches=8, callbacks=[cb], default_root_dir=tmp_path, **trainer_args
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(module, train)
    return cb.findings


def test_newbugs20_b04_manual_accumulation_that_never_steps_is_an_error(tmp_path):
    findings = _fit(tmp_path, ManualAccumulation(accumulate=64))
    (finding,) = [f for f in findings if f.check == "unused-parameters"]
    assert finding.severity == Severity.ERROR, finding.format()
    assert finding.key == "no-step" and finding.epoch == 0, finding.format()
    assert finding.evidence["train_batches"] == 8 and finding.evidence["optimizer_steps"] == 0, finding.evidence
    assert "opt.step()" in finding.hint and "manual optimization" in finding.hint, finding.hint


@pytest.mark.parametrize(
    ("module", "trainer_args"),
    [
        (lambda: ManualAccumulation(accumulate=4), {}),
        # Lightning steps at an epoch's last batch whatever accumulate_grad_batches says
        (Automatic, {"accumulate_grad_batches": 64}),
        (WarmupFromZero, {}),
    ],
    ids=["manual-steps-every-4", "automatic-accumulation-longer-than-the-epoch", "per-epoch-warmup-from-0"],
)
def test_accumulation_that_steps_stays_silent(tmp_path, module, trainer_args):
    findings = _fit(tmp_path, module(), **trainer_args)
    loud = [f.format() for f in findings if f.severity != Severity.INFO]
    assert not loud, loud


class ConvergedAfterEpoch0(Automatic):
    """Plain SGD whose gradients are all exactly 0 from the second epoch on: the weights moved,
    then stand still, as a logistic regression's do once its float32 sigmoid saturates (the
    fault suite's clean `early_converging` at seed 1 got this ERROR)."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss if self.current_epoch == 0 else loss * 0.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_weights_that_moved_then_stand_still_have_converged_not_failed_to_step(tmp_path):
    findings = _fit(tmp_path, ConvergedAfterEpoch0())  # 2 epochs: the second moves nothing
    assert not [f for f in findings if f.check == "unused-parameters"], [f.format() for f in findings]


def test_a_softmax_regression_under_sgd_moves_its_fingerprint():
    # a softmax cross-entropy's gradient sums to 0 over the classes: plain SGD leaves the sum of a
    # single linear layer's weights and bias where it was, so a fingerprint of sums alone read a
    # learning logistic regression as never stepping (clean early_converging, seed 2)
    from mlcheck.integrations.torch_live import weight_fingerprint

    torch.manual_seed(0)
    model = nn.Linear(30, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = weight_fingerprint(model)
    x, y = torch.randn(32, 30), torch.randint(0, 2, (32,))
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    after = weight_fingerprint(model)
    assert not torch.equal(after, before)
    assert torch.allclose(after[:, 0], before[:, 0], atol=1e-6)  # the sums alone barely move
