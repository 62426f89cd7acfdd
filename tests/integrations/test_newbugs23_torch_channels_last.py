"""Batch 23 of new users' programs, b01: channels-last images fed to a torch `nn.Conv2d`.

Images kept `(N, H, W, 1)` (as Keras stores them) into a CNN that reads `in_channels` from
`x.shape[1]`: `nn.Conv2d` reads an Hx1 image of H channels and still trains, more weakly. The Keras
side of `unnormalized-input`'s `channels-first` key existed; now the Lightning callback reads the
first `nn.Conv2d`'s input at the first training step (`RunInfo.conv_input`, channels first) and
the same rule names it. The right layout, a
channels-first input of 3 channels whose side is 3, and a model without convolutions stay silent.
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


class _CNN(pl.LightningModule):
    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(shape[0], 16, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16 * shape[1] * shape[2], 10),
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _fit(tmp_path, x, model):
    pl.seed_everything(0)
    _, y = load_digits(return_X_y=True)
    loader = DataLoader(TensorDataset(x, torch.tensor(y[: len(x)])), batch_size=64, shuffle=True)
    cb = MLCheckCallback(log_dir=str(tmp_path / "logs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=1, callbacks=[cb]).fit(model, loader)
    return cb


def _digits(n=512):
    x, _ = load_digits(return_X_y=True)
    return torch.tensor(x[:n] / 16.0, dtype=torch.float32)


def test_newbugs23_b01_channels_last_images_into_a_torch_conv2d_are_named(tmp_path):
    x = _digits().reshape(-1, 8, 8, 1)  # channels last
    cb = _fit(tmp_path, x, _CNN(tuple(x.shape[1:])))
    (finding,) = [f for f in cb.findings if f.key == "channels-first"]
    assert finding.check == "unnormalized-input" and finding.severity == Severity.WARNING, finding.format()
    assert finding.evidence["input_shape"] == [8, 8, 1] and finding.evidence["data_format"] == "channels_first"
    assert "nn.Conv2d 'net.0'" in finding.message and "a 8x1 image of 8 channels" in finding.message, finding.message
    assert "x.permute(0, 3, 1, 2)" in finding.hint and "in_channels is 1" in finding.hint, finding.hint
    assert cb._conv_hook is None  # the pre-hook removed itself


@pytest.mark.parametrize(
    "case",
    ["channels-first", "three-channels-of-side-3", "no-convolution"],
)
def test_inputs_the_torch_conv2d_reads_as_meant_stay_silent(tmp_path, case):
    if case == "channels-first":
        x = _digits().reshape(-1, 1, 8, 8)
        model = _CNN((1, 8, 8))
    elif case == "three-channels-of-side-3":  # (3, 3, 3): as long a channel axis as a side, but 3 is an image's
        x = _digits()[:, 18:45].reshape(-1, 3, 3, 3)
        model = _CNN((3, 3, 3))
    else:
        x = _digits().reshape(-1, 8, 8, 1)
        model = _CNN((8, 8, 1))
        model.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    cb = _fit(tmp_path, x, model)
    loud = [f.format() for f in cb.findings if f.severity != Severity.INFO]
    assert not loud, loud
    assert not [f for f in cb.findings if f.key == "channels-first"]
    if case == "no-convolution":
        assert cb.live.monitor.run.info.conv_input is None
    else:
        assert cb.live.monitor.run.info.conv_input[2] == "channels_first"
