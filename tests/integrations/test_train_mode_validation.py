"""Dropout and BatchNorm left in training mode at validation, on real Lightning fits of the
digits: a `validation_step` that calls `self.model.train()`, and a network whose `train()`
ignores `mode=False`. Validation then goes through dropout and batch statistics (its loss sits
above training's, which reads as overfitting). The callback reads the layers' modes once, at the
first validation batch, and `train-val-gap` says so (key `train-mode-validation`); a module
left alone, where Lightning puts it in evaluation mode for validation, stays silent."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback


def _fit(tmp_path, bug: str) -> MLCheckCallback:
    import lightning.pytorch as pl

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers = [nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10)]
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            return self.body(x)

        def train(self, mode: bool = True):
            return super().train(True if bug == "train-override" else mode)

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = Net()

        def forward(self, x):
            return self.model(x)

        def training_step(self, batch, batch_idx):
            loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            if bug == "train-in-validation-step":
                self.model.train()
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-3)

    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    train = DataLoader(TensorDataset(x[:600], y[:600]), batch_size=32, shuffle=True)
    trainer.fit(Module(), train, DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=64))
    return cb


@pytest.mark.parametrize("bug", ["train-in-validation-step", "train-override"])
def test_layers_in_training_mode_at_validation_are_named(tmp_path, bug):
    cb = _fit(tmp_path, bug)
    (told,) = [f for f in cb.findings if f.key == "train-mode-validation"]  # was: not noticed
    assert told.check == "train-val-gap" and told.severity == Severity.WARNING and told.epoch == 0
    assert told.evidence["layers"] == ["model.body.1 (BatchNorm1d)", "model.body.3 (Dropout)"]
    assert "dropout and the batch statistics of BatchNorm" in told.message and "validation_step" in told.hint


def test_evaluation_mode_at_validation_stays_silent(tmp_path):
    cb = _fit(tmp_path, "none")
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == []
