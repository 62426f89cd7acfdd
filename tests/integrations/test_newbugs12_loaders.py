"""Loader bugs of new users' programs, batch 12, on real Lightning fits: the same batch every
step (`train-val-overlap` `one-batch`), random augmentation applied to the validation split too
(`train-val-overlap` `val-changes`) and regression targets standardised for training only
(`label-shift` `target-scale`); each beside the healthy program it must stay silent on."""

from __future__ import annotations

import warnings

import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32), y[order]


class Net(lpt.LightningModule):
    def __init__(self, inputs: int = 64, outputs: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, 32), nn.ReLU(), nn.Linear(32, outputs))
        self.regression = outputs == 1

    def forward(self, x):
        out = self.net(x)
        return out.squeeze(1) if self.regression else out

    def _loss(self, batch):
        x, y = batch
        return F.mse_loss(self(x), y) if self.regression else F.cross_entropy(self(x), y)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


class Flips(Dataset):
    """A random flip and noise on each digit drawn (augmentation)."""

    def __init__(self, x, y, augment: bool) -> None:
        self.x, self.y, self.augment = torch.from_numpy(x), torch.from_numpy(y), augment

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        image = self.x[i].view(8, 8)
        if self.augment:
            if torch.rand(()) < 0.5:
                image = image.flip(1)
            image = image + 0.2 * torch.randn_like(image)
        return image.reshape(64), self.y[i]


def _fit(tmp_path, model, train, val, epochs=2, checks=None, **trainer) -> MLCheckCallback:
    cb = MLCheckCallback(log_dir=str(tmp_path), **({"checks": checks} if checks else {}))
    t = lpt.Trainer(
        max_epochs=epochs,
        callbacks=[cb],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        **trainer,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        t.fit(model, train, val)
    return cb


def _serious(cb) -> list[str]:
    return [f.format() for f in cb.findings if f.severity >= Severity.WARNING]


@pytest.mark.parametrize("bug", [True, False])
def test_a_loader_over_one_batch_is_named(tmp_path, digits, bug):
    # b03: `DataLoader([first_batch] * n, batch_size=None)`: 16 distinct rows of 144, 11% distinct,
    # above `train-repeats`' 10%, so nothing at all was said; now a WARNING `one-batch`, since every
    # sample of the epoch was in its first batch. The batches of the loader: silent.
    lpt.seed_everything(0, verbose=False)
    x, y = digits
    loader = DataLoader(TensorDataset(torch.from_numpy(x[:1200]), torch.from_numpy(y[:1200])), batch_size=16)
    first = next(iter(loader))
    train = DataLoader([first] * 9, batch_size=None, shuffle=True) if bug else loader
    val = DataLoader(TensorDataset(torch.from_numpy(x[1200:]), torch.from_numpy(y[1200:])), batch_size=128)
    cb = _fit(tmp_path, Net(), train, val)
    found = [f for f in cb.findings if f.key == "one-batch"]
    if bug:
        (finding,) = found
        assert finding.severity == Severity.WARNING, finding.format()
        assert finding.evidence["train_distinct"] == 16 and finding.evidence["train_rows"] == 144
    else:
        assert found == [] and _serious(cb) == []


def test_one_batch_is_off_with_the_repeats_note(tmp_path, digits):
    # a training set that really is one batch, looped within an epoch: min_distinct_share=0 turns both off
    from mlcheck.checks.leakage import TrainValOverlap

    lpt.seed_everything(0, verbose=False)
    x, y = digits
    first = (torch.from_numpy(x[:16]), torch.from_numpy(y[:16]))
    train = DataLoader([first] * 9, batch_size=None)
    val = DataLoader(TensorDataset(torch.from_numpy(x[1200:]), torch.from_numpy(y[1200:])), batch_size=128)
    cb = _fit(tmp_path, Net(), train, val, checks=[TrainValOverlap(min_distinct_share=0)])
    assert [f for f in cb.findings if f.check == "train-val-overlap"] == []


def test_overfit_batches_is_not_one_batch(tmp_path, digits):
    # Trainer(overfit_batches=1) trains on one batch on purpose, one step per epoch: no repeat within an epoch
    lpt.seed_everything(0, verbose=False)
    x, y = digits
    train = DataLoader(TensorDataset(torch.from_numpy(x[:1200]), torch.from_numpy(y[:1200])), batch_size=128)
    val = DataLoader(TensorDataset(torch.from_numpy(x[1200:]), torch.from_numpy(y[1200:])), batch_size=128)
    cb = _fit(tmp_path, Net(), train, val, epochs=6, overfit_batches=1)
    assert [f for f in cb.findings if f.check == "train-val-overlap" and f.key in ("one-batch", "train-repeats")] == []


@pytest.mark.parametrize("augmented_val", [True, False])
def test_augmented_validation_is_named(tmp_path, digits, augmented_val):
    # b01: one Dataset class with random flips and noise, used for the validation split too: no
    # finding before (the curves look normal); now a WARNING `val-changes`: the second pass's first
    # 64 validation samples, their labels in the first pass's order, match none of the first pass.
    # Augmentation on the training split only: silent.
    lpt.seed_everything(0, verbose=False)
    x, y = digits
    train = DataLoader(Flips(x[:1200], y[:1200], True), batch_size=32, shuffle=True)
    val = DataLoader(Flips(x[1200:], y[1200:], augmented_val), batch_size=128)
    cb = _fit(tmp_path, Net(), train, val)
    found = [f for f in cb.findings if f.key == "val-changes"]
    if augmented_val:
        (finding,) = found
        assert finding.severity == Severity.WARNING and finding.evidence["recurring"] == 0, finding.format()
        assert finding.evidence["compared"] == 64
    else:
        assert found == [] and _serious(cb) == []


def test_a_shuffled_validation_loader_is_not_augmented(tmp_path, digits):
    # the same samples in another order each pass: every one recurs, nothing to say
    lpt.seed_everything(0, verbose=False)
    x, y = digits
    train = DataLoader(Flips(x[:1200], y[:1200], False), batch_size=32, shuffle=True)
    val = DataLoader(Flips(x[1200:], y[1200:], False), batch_size=64, shuffle=True)
    cb = _fit(tmp_path, Net(), train, val)
    assert [f for f in cb.findings if f.key == "val-changes"] == []


@pytest.mark.parametrize("scaled_val", [False, True])
def test_validation_targets_left_unscaled_are_named(tmp_path, scaled_val):
    # b05: diabetes targets standardised with the training mean and std, the validation targets
    # left raw (mean ~150): validation MSE 27,000 against 0.4, and no finding; now `label-shift`
    # WARNING `target-scale`. Both splits scaled: silent.
    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x = ((x - x[:350].mean(0)) / x[:350].std(0)).astype(np.float32)
    mean, std = y[:350].mean(), y[:350].std()
    ytr = ((y[:350] - mean) / std).astype(np.float32)
    yva = ((y[350:] - mean) / std if scaled_val else y[350:]).astype(np.float32)
    lpt.seed_everything(0, verbose=False)
    train = DataLoader(TensorDataset(torch.from_numpy(x[:350]), torch.from_numpy(ytr)), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(torch.from_numpy(x[350:]), torch.from_numpy(yva)), batch_size=128)
    cb = _fit(tmp_path, Net(10, 1), train, val)
    found = [f for f in cb.findings if f.key == "target-scale"]
    if not scaled_val:
        (finding,) = found
        assert finding.check == "label-shift" and finding.severity == Severity.WARNING, finding.format()
        assert finding.evidence["mean_distance_in_train_std"] > 100
    else:
        assert found == [] and _serious(cb) == []
