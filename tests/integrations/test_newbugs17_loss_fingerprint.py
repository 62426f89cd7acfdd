"""Batch 17 of new users' programs: losses the torch adapter could not read.

- `F.cross_entropy(logits, y, label_smoothing=0.9)` written inline in `training_step` (meant 0.1):
  no `nn.CrossEntropyLoss` module holds the smoothing, so before the loss was left unnamed and
  `overfit-batch` read the fitted batch at the smoothed floor (2.266 next to ln(10) = 2.303) as a
  wiring bug (ERROR). Now the adapter solves the smoothing from the loss's value (checked on each
  quarter of the batch) and the smoothing is the finding (WARNING, key label-smoothing); 0.1 is silent.
- `nn.MSELoss(reduction="sum")` on a 3-output regression: summed over 64 rows x 3 outputs = 192
  values; before `loss-at-init` compared the loss with batch size x the expected level (64x), found
  no sum and said nothing, so the blow-up (`nonfinite-loss`) named no cause. Now the sum is named
  with its 192 values, and `nonfinite-loss` says it follows from it.
- `nn.L1Loss()` on (N, 1) outputs against (N,) targets: broadcast to N x N, the model learns the
  targets' median. At init the outputs sit below every target (diabetes / 100 is 0.25-3.46), where
  the broadcast and the paired absolute errors are equal (mean(y) - mean(out)), so the loss's value
  could not tell them apart and only `overfit-batch`'s generic "wiring bug" ERROR came. Now torch's
  own broadcasting warning, caught while the adapter measures the loss, settles it:
  `output-loss-mismatch` (key broadcast). `out.squeeze(-1)`: silent.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


def fit(module, train, val, tmp_path, epochs):
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        warnings.filterwarnings("ignore", message=".*different to the input size")
        trainer.fit(module, train, val)
    return cb.findings


def loaders(x, y, n_train, batch_size=32):
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order], dtype=torch.float32), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=256)
    return train, val


class InlineSmoothed(pl.LightningModule):
    def __init__(self, smoothing):
        super().__init__()
        self.smoothing = smoothing
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y, label_smoothing=self.smoothing)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("smoothing", [0.9, 0.1])
def test_newbugs17_inline_label_smoothing_is_read_from_the_loss(tmp_path, smoothing):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    train, val = loaders(x / 16.0, y, 1400)
    findings = fit(InlineSmoothed(smoothing), train, val, tmp_path, epochs=2)
    serious = [f for f in findings if f.severity >= Severity.WARNING]
    if smoothing < 0.5:
        assert serious == [], [f.format() for f in findings]
        return
    assert not any(f.severity >= Severity.ERROR for f in findings), [f.format() for f in findings]
    (finding,) = [f for f in findings if f.check == "overfit-batch"]
    assert finding.severity == Severity.WARNING and finding.key == "label-smoothing", finding.format()
    assert finding.evidence["label_smoothing"] == pytest.approx(0.9, abs=1e-3)
    assert finding.evidence["loss_floor"] == pytest.approx(2.266, abs=1e-3)


def test_newbugs17_inline_smoothing_solved_only_where_every_part_agrees():
    # the adapter's reading, and what it must not read: a plain cross-entropy (no smoothing), a
    # cross-entropy plus an L2 penalty (a loss above the plain one by a constant, not a smoothing)
    from mlcheck.integrations.torch import LightningTrainable

    x, y = load_digits(return_X_y=True)
    data = (torch.tensor((x[:256] / 16.0).astype(np.float32)), torch.tensor(y[:256]))

    class Penalised(InlineSmoothed):
        def training_step(self, batch, batch_idx):
            x, y = batch
            penalty = sum((p**2).sum() for p in self.parameters())
            return F.cross_entropy(self(x), y) + 1e-3 * penalty

    def read(module):
        torch.manual_seed(0)
        cfg = LightningTrainable(module, train_data=data).loss_config()
        return cfg.loss, cfg.label_smoothing

    assert read(InlineSmoothed(0.9)) == ("cross_entropy", pytest.approx(0.9, abs=1e-3))
    # a small smoothing moves fresh, near-uniform outputs' loss less than a match's tolerance: the
    # plain cross-entropy is read (harmless: the floor of 0.1 is far below the chance level)
    assert read(InlineSmoothed(0.1))[0] == "cross_entropy"
    assert read(InlineSmoothed(0.0)) == ("cross_entropy", None)
    assert read(Penalised(0.0))[1] is None


class MultiOutput(pl.LightningModule):
    def __init__(self, reduction):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 3))
        self.loss_fn = nn.MSELoss(reduction=reduction)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_newbugs17_a_sum_over_a_multi_output_batch_is_named(tmp_path, reduction):
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 10)).astype(np.float32)
    y = (np.tanh(x @ rng.normal(size=(10, 3))) + 0.1 * rng.normal(size=(1000, 3))).astype(np.float32)
    train, val = loaders(x, y, 800, batch_size=64)
    findings = fit(MultiOutput(reduction), train, val, tmp_path, epochs=2)
    if reduction == "mean":
        assert [f for f in findings if f.severity >= Severity.WARNING] == [], [f.format() for f in findings]
        return
    (summed,) = [f for f in findings if f.check == "loss-at-init"]
    assert summed.key == "summed" and summed.severity == Severity.INFO, summed.format()
    assert summed.evidence["batch"] == 64 and summed.evidence["summed_values"] == 192
    assert "192 values" in summed.message and "64 rows x 3 outputs" in summed.message
    blown = [f for f in findings if f.check == "nonfinite-loss"]
    assert blown and all(f.evidence.get("likely_cause") == "loss-at-init" for f in blown), [
        f.format() for f in findings
    ]


class Regressor(pl.LightningModule):
    def __init__(self, squeeze):
        super().__init__()
        self.squeeze = squeeze
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))
        self.loss_fn = nn.L1Loss()

    def forward(self, x):
        out = self.net(x)
        return out.squeeze(-1) if self.squeeze else out

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", self.loss_fn(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


@pytest.mark.parametrize("squeeze", [False, True])
def test_newbugs17_absolute_error_broadcast_while_outputs_sit_below_the_targets(tmp_path, squeeze):
    pl.seed_everything(0)
    x, y = load_diabetes(return_X_y=True)
    x = (x - x[:350].mean(0)) / x[:350].std(0)
    train, val = loaders(x, (y / 100.0).astype(np.float32), 350)
    findings = fit(Regressor(squeeze), train, val, tmp_path, epochs=3)
    mismatch = [f for f in findings if f.check == "output-loss-mismatch"]
    if squeeze:
        assert mismatch == [], [f.format() for f in findings]
        return
    (finding,) = mismatch
    assert finding.key == "broadcast", finding.format()
    assert "median" in finding.message and "different to the input size" in finding.evidence["framework_warning"]
    # the paired and broadcast errors are equal at init here: the value alone could not tell
    assert finding.evidence["paired_loss"] == pytest.approx(finding.evidence["loss"], rel=1e-4)


class Blocks(pl.LightningModule):
    """Hidden blocks kept in a plain Python list (the bug), an nn.ModuleList, or a plain list
    holding a frozen teacher called under torch.no_grad() (on purpose: not a finding)."""

    def __init__(self, holder):
        super().__init__()
        self.holder = holder
        self.inp = nn.Linear(30, 32)
        blocks = [nn.Sequential(nn.Linear(32, 32), nn.ReLU()) for _ in range(3)]
        if holder == "list":
            self.blocks = blocks
        elif holder == "modulelist":
            self.blocks = nn.ModuleList(blocks)
        else:
            self.blocks = []
            self.teacher = [nn.Linear(30, 2).requires_grad_(False)]
        self.out = nn.Linear(32, 2)

    def forward(self, x):
        h = torch.relu(self.inp(x))
        for block in self.blocks:
            h = block(h)
        return self.out(h)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        if self.holder == "teacher":
            with torch.no_grad():
                soft = self.teacher[0](x).softmax(-1)
            loss = loss + 0.1 * F.cross_entropy(self(x), soft)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("holder", ["list", "modulelist", "teacher"])
def test_newbugs17_layers_in_a_plain_list_are_named(tmp_path, holder):
    from sklearn.datasets import load_breast_cancer

    pl.seed_everything(0)
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x[:450].mean(0)) / x[:450].std(0)
    train, val = loaders(x, y, 450)
    findings = fit(Blocks(holder), train, val, tmp_path, epochs=2)
    unused = [f for f in findings if f.check == "unused-parameters"]
    if holder != "list":
        assert unused == [], [f.format() for f in findings]
        return
    (finding,) = unused
    assert finding.key == "unregistered" and finding.severity == Severity.WARNING, finding.format()
    assert finding.evidence["containers"] == {"blocks": 6}, finding.format()
