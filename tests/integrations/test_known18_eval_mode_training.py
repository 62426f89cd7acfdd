"""A LightningModule left in evaluation mode during training (batch 17's b11): a manual
hold-out check in `on_train_epoch_end` calls `self.eval()` and never `self.train()`, so from
epoch 1 on every training step runs with dropout passing everything through (and BatchNorm
frozen at its running statistics). Lightning restores the mode it saw before its own
validation, so it stays so. Before, nothing was said (validation accuracy 0.975). Now the
callback reads the module's `training` flag at the end of each training batch, and where it
is False at two in a row (the step between ran so) the layers that act differently in training, and `train-val-gap`
says so once (WARNING, key `eval-mode-training`: no check id of the fixed catalogue is about
a layer's mode at training, and `train-val-gap` already owns its mirror, `train-mode-validation`).
Healthy twins stay silent: the same check followed by `self.train()`, and only a frozen
backbone's BatchNorm put in eval mode on purpose (the module itself in training mode; its
running statistics learned before, as a pre-trained backbone's are)."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class HoldOut(pl.LightningModule):
    """Digits MLP with BatchNorm and dropout; `variant` names what `on_train_epoch_end` does."""

    def __init__(self, variant: str, holdout: tuple[torch.Tensor, torch.Tensor]):
        super().__init__()
        self.variant = variant
        self.holdout = holdout
        self.backbone = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(self.backbone(x))

    def training_step(self, batch, batch_idx):
        loss = F.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def on_train_epoch_start(self):
        if self.variant == "frozen-bn":  # fine-tuning: the backbone's statistics kept on purpose
            self.backbone.eval()

    def on_train_epoch_end(self):
        if self.variant in ("eval-left", "eval-undone"):
            self.eval()  # a manual hold-out check
            with torch.no_grad():
                accuracy = (self(self.holdout[0]).argmax(1) == self.holdout[1]).float().mean()
            self.log("holdout_acc", accuracy)
            if self.variant == "eval-undone":
                self.train()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def fit(variant: str, tmp_path) -> list:
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order] / 16, dtype=torch.float32), torch.tensor(y[order])
    pl.seed_everything(0)
    train = DataLoader(TensorDataset(x[:1200], y[:1200]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1200:1500], y[1200:1500]), batch_size=256)
    model = HoldOut(variant, (x[1500:], y[1500:]))
    if variant == "frozen-bn":
        # a pre-trained backbone: running statistics learned before (training-mode passes); a
        # fresh one frozen at (0, 1) is batch 35's b04, named by `frozen-parameters` (batchnorm-eval)
        with torch.no_grad():
            for i in range(0, 1200, 32):
                model.backbone(x[i : i + 32])
    cb = MLCheckCallback(log_dir=tmp_path / variant)
    trainer = quiet_trainer(max_epochs=3, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(model, train, val)
    return cb.findings


def test_known18_a_module_left_in_eval_mode_during_training_is_named(tmp_path):
    findings = fit("eval-left", tmp_path)
    (told,) = [f for f in findings if f.check == "train-val-gap" and f.key == "eval-mode-training"]
    assert told.severity is Severity.WARNING
    # epoch 1's first step (1200 rows in batches of 32: 38 steps an epoch) ran so; read at its end
    assert (told.evidence["since_epoch"], told.evidence["since_step"]) == (1, 39)
    assert told.evidence["layers"] == [
        "backbone.1 (BatchNorm1d)",
        "head.0 (Dropout)",
    ]
    assert "self.train()" in told.hint


@pytest.mark.parametrize("variant", ["eval-undone", "frozen-bn"])
def test_known18_eval_mode_undone_or_on_a_frozen_backbone_alone_is_silent(tmp_path, variant):
    findings = fit(variant, tmp_path)
    assert not [f for f in findings if f.severity >= Severity.WARNING], findings


def test_known18_eval_mode_names_only_the_layers_that_act_differently():
    from mlcheck.integrations.torch_live import eval_mode_layers

    net = nn.Sequential(
        nn.Linear(3, 3),
        nn.BatchNorm1d(3, track_running_stats=False),  # the batch's statistics in both modes
        nn.BatchNorm1d(3),
        nn.Dropout(0.0),
        nn.Dropout(0.2),
    )
    assert eval_mode_layers(net) == ()
    net.eval()
    assert eval_mode_layers(net) == ("2 (BatchNorm1d)", "4 (Dropout)")
