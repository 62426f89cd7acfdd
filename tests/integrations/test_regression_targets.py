"""Regression targets the loss cannot fit, in real Lightning and Keras fits on tiny data:

- house prices (~2.5e5) left unscaled under MSE: `unnormalized-input` (key `targets`) names their
  mean and standard deviation at the first batch, and the overfit-batch ERROR that follows says
  it likely comes from them (before, its hint blamed wiring, and loss-plateau the rate);
- digits' class indices 0..9 fed to MSE through one output unit: `output-loss-mismatch` (key
  `class-indices`) INFO at the start, a WARNING once the run logs an accuracy.

Their healthy twins stay silent: standardised targets, and a Poisson-like count regression.
"""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning
from mlcheck.findings import Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


def house_prices(scaled: bool) -> tuple[np.ndarray, np.ndarray]:
    """8 standardised features and a price around 2.5e5 (std ~7e4) linear in them plus noise;
    `scaled`: the price standardised with its own mean and standard deviation."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(480, 8)).astype(np.float32)
    y = 2.5e5 + 6e4 * (x @ rng.normal(size=8)) / 3 + 1e4 * rng.normal(size=len(x))
    if scaled:
        y = (y - y.mean()) / y.std()
    return x, y.astype(np.float32)


def digit_indices() -> tuple[np.ndarray, np.ndarray]:
    """Digits' pixels in [0, 1] and their labels 0..9 as float targets (what MSE takes)."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:480]
    return (x[order] / 16.0).astype(np.float32), y[order].astype(np.float32)


def counts() -> tuple[np.ndarray, np.ndarray]:
    """A count regression: Poisson counts whose rate grows with the features (mean ~2)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(480, 8)).astype(np.float32)
    rate = np.exp(0.5 + 0.4 * x[:, 0] - 0.3 * x[:, 1])
    return x, rng.poisson(rate).astype(np.float32)


DATA = {"prices": lambda: house_prices(False), "scaled": lambda: house_prices(True), "digits": digit_indices}
DATA["counts"] = counts


class Regressor(pl.LightningModule):
    """A one-unit MLP regression under MSE; logs a rounded-prediction accuracy when asked."""

    def __init__(self, features: int, log_accuracy: bool) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 1))
        self.log_accuracy = log_accuracy

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def _loss(self, batch, split):
        x, y = batch
        out = self(x)
        loss = F.mse_loss(out, y)
        self.log(f"{split}_loss", loss)
        if self.log_accuracy:
            self.log(f"{split}_acc", (out.round() == y).float().mean())
        return loss

    def training_step(self, batch, batch_idx):
        return self._loss(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._loss(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def lightning_fit(tmp_path, name, log_accuracy=False):
    x, y = DATA[name]()
    pl.seed_everything(0, verbose=False)

    def loader(rows, shuffle):
        return DataLoader(TensorDataset(torch.tensor(x[rows]), torch.tensor(y[rows])), batch_size=32, shuffle=shuffle)

    cb = LightningCallback()
    trainer = pl.Trainer(
        max_epochs=2,
        default_root_dir=str(tmp_path),
        callbacks=[cb],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Regressor(x.shape[1], log_accuracy), loader(slice(0, 384), True), loader(slice(384, None), False))
    return cb.findings


def keras_fit(tmp_path, name, metrics=()):
    x, y = DATA[name]()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((x.shape[1],)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse", metrics=list(metrics))
    cb = KerasCallback(log_dir=str(tmp_path / "logs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x[:384], y[:384], validation_data=(x[384:], y[384:]), epochs=2, batch_size=32, verbose=0, callbacks=[cb]
        )
    return cb.findings


def of(findings, check, key=None):
    return [f for f in findings if f.check == check and (key is None or f.key == key)]


def loud(findings):
    return [(f.check, f.key, f.message) for f in findings if f.severity >= Severity.WARNING]


def assert_unscaled_targets(findings) -> None:
    [f] = of(findings, "unnormalized-input", "targets")
    assert f.severity == Severity.WARNING
    assert f.step == 0
    assert f.evidence["loss_name"] == "mse"
    assert 2.3e5 < f.evidence["target_mean"] < 2.7e5
    assert 4e4 < f.evidence["target_std"] < 1e5
    assert "Standardise the targets" in f.hint and "log(y)" in f.hint
    # the symptoms that follow name it as their likely cause instead of blaming wiring or the rate
    for other in findings:
        if other.check in ("overfit-batch", "loss-plateau", "lr-too-low") and other.severity >= Severity.WARNING:
            assert other.evidence.get("likely_cause") == "unnormalized-input", other.message


def test_lightning_unscaled_price_targets_are_named(tmp_path):
    assert_unscaled_targets(lightning_fit(tmp_path, "prices"))


def test_keras_unscaled_price_targets_are_named(tmp_path):
    assert_unscaled_targets(keras_fit(tmp_path, "prices"))


@pytest.mark.parametrize("name", ["scaled", "counts"])
def test_lightning_healthy_regressions_stay_silent(tmp_path, name):
    findings = lightning_fit(tmp_path, name)
    assert not of(findings, "unnormalized-input"), [f.message for f in findings]
    assert not of(findings, "output-loss-mismatch"), [f.message for f in findings]
    assert not loud(findings)


@pytest.mark.parametrize("name", ["scaled", "counts"])
def test_keras_healthy_regressions_stay_silent(tmp_path, name):
    findings = keras_fit(tmp_path, name)
    assert not of(findings, "unnormalized-input"), [f.message for f in findings]
    assert not of(findings, "output-loss-mismatch"), [f.message for f in findings]
    assert not loud(findings)


def assert_class_indices(findings, accuracy: bool) -> None:
    [info] = of(findings, "output-loss-mismatch", "class-indices")
    assert info.severity == Severity.INFO
    assert info.evidence["classes"] == 10
    assert "10 units" in info.hint and "cross-entropy" in info.hint
    confirmed = of(findings, "output-loss-mismatch", "class-indices-accuracy")
    if accuracy:
        [warning] = confirmed
        assert warning.severity == Severity.WARNING
        assert warning.evidence["metric_value"] < 0.5  # rounding a regression is no classifier
        assert warning.evidence["chance"] == pytest.approx(0.1)
    else:
        assert not confirmed  # ordinal scores look the same: INFO only
    assert not of(findings, "unnormalized-input")  # 0..9 is unit scale enough


@pytest.mark.parametrize("accuracy", [True, False])
def test_lightning_class_indices_under_mse(tmp_path, accuracy):
    assert_class_indices(lightning_fit(tmp_path, "digits", log_accuracy=accuracy), accuracy)


def test_keras_class_indices_under_mse(tmp_path):
    assert_class_indices(keras_fit(tmp_path, "digits", metrics=["accuracy"]), accuracy=True)


class IndexBroadcast(pl.LightningModule):
    """4 classes, a 4-unit output; `loss` "mse" / "l1": the regression loss between the 4 outputs
    and the class index expanded to (N, 4) (the /tmp bug shape, as users write it to silence
    torch's size warning); "ce": cross-entropy, the healthy twin."""

    def __init__(self, loss: str) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
        self.loss = loss

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        if self.loss == "ce":
            loss = F.cross_entropy(out, y)
        else:
            fn = F.mse_loss if self.loss == "mse" else F.l1_loss
            loss = fn(out, y.float().unsqueeze(1).expand(-1, 4))
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("loss", ["mse", "l1", "ce"])
def test_class_indices_broadcast_to_a_k_unit_output_under_a_regression_loss(tmp_path, loss):
    """A 4-unit classifier trained with MSE (or L1) against the class index copied to every
    unit: `output-loss-mismatch` (key `class-indices-broadcast`) ERROR at train start, with
    cross-entropy as the fix. The same model under cross-entropy stays silent."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=480, n_features=20, n_informative=10, n_classes=4, random_state=0)
    loader = DataLoader(TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y)), batch_size=32)
    pl.seed_everything(0, verbose=False)
    cb = LightningCallback(log_dir=str(tmp_path / "mlcheck"), overfit_steps=20)
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(IndexBroadcast(loss), loader)
    found = [f for f in cb.findings if f.check == "output-loss-mismatch"]
    if loss == "ce":
        assert not found and not [f for f in cb.findings if f.severity >= Severity.WARNING], cb.findings
        return
    (finding,) = found
    assert (finding.key, finding.severity) == ("class-indices-broadcast", Severity.ERROR)
    assert finding.evidence["error"] == {"mse": "squared", "l1": "absolute"}[loss]
    assert finding.evidence["output_shape"][1:] == [4] and finding.evidence["target_shape"][1:] == []
    assert "CrossEntropyLoss" in finding.hint and "(N, 4)" in finding.hint
