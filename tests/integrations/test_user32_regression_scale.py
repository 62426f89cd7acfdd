"""user32: a regression on `load_diabetes` (targets 25-346, "in the hundreds") under MSE, a healthy
Lightning fit with a functional `mse_loss` and a Keras fit with `loss="mse"`: `exploding-gradient`
raised a WARNING ("a gradient norm 26.22x its weight norm, on every sampled step since step 0"),
though the run learns as it should (validation MSE ~2,600, a linear model's ~2,900). MSE hands back
its residual, in the targets' units; the rule now judges the gradient per unit of the loss's root
mean square error (`layers._residual_scale`). Standardised targets and classification runs are
judged as before (the scale is 1 there)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

os.environ.setdefault("KERAS_BACKEND", "torch")

from mlcheck import MLCheckWarning  # noqa: E402
from tests.lightning_trainer import quiet_trainer  # noqa: E402

pl = pytest.importorskip("lightning.pytorch")


def _diabetes() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], y[order].astype(np.float32)


class Regressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))

    def training_step(self, batch, _):
        x, t = batch
        loss = nn.functional.mse_loss(self.net(x).squeeze(-1), t)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, t = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x).squeeze(-1), t))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 0.05)


def _no_warnings(findings) -> list[str]:
    return [f"{f.check}: {f.message}" for f in findings if f.severity.value != "info"]


def test_user32_lightning_diabetes_targets_in_the_hundreds_are_no_exploding_gradient(tmp_path):
    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = _diabetes()
    torch.manual_seed(0)
    train = DataLoader(TensorDataset(torch.tensor(x[:350]), torch.tensor(y[:350])), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(torch.tensor(x[350:]), torch.tensor(y[350:])), batch_size=64)
    # the train-start checks on, as a user has them: they read the loss (MSE) off the first batch
    cb = MLCheckCallback(every_n_steps=5, log_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=8, callbacks=[cb], default_root_dir=tmp_path).fit(Regressor(), train, val)
    assert _no_warnings(cb.findings) == []


def test_user32_keras_diabetes_targets_in_the_hundreds_are_no_exploding_gradient(tmp_path):
    keras = pytest.importorskip("keras")
    from mlcheck.integrations.keras import MLCheckCallback

    x, y = _diabetes()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.05), "mse")
    cb = MLCheckCallback(log_dir=tmp_path, every_n_steps=5, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, validation_split=0.2, epochs=8, batch_size=32, verbose=0, callbacks=[cb])
    assert _no_warnings(cb.findings) == []


def test_reg33_lightning_diabetes_with_the_train_start_checks_off_is_no_exploding_gradient(tmp_path):
    """reg33: with `overfit_batch=False` the loss is never named (the train-start checks read it);
    the first batch's targets, whole numbers 25-346 into a one-unit output, tell a regression
    (`mlcheck.task.from_targets`), and the scale follows from that."""
    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = _diabetes()
    torch.manual_seed(0)
    train = DataLoader(TensorDataset(torch.tensor(x[:350]), torch.tensor(y[:350])), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(torch.tensor(x[350:]), torch.tensor(y[350:])), batch_size=64)
    cb = MLCheckCallback(every_n_steps=5, log_dir=tmp_path, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=8, callbacks=[cb], default_root_dir=tmp_path).fit(Regressor(), train, val)
    assert cb.live.monitor.run.info.task == "regression"
    assert _no_warnings(cb.findings) == []


class DeepRegressor(Regressor):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), 0.5)


def test_review38_lightning_sgd_whose_loss_overflows_gets_its_nonfinite_origin(tmp_path):
    """user35/reg33's leftover: raw diabetes targets under SGD 0.5 grow the weights to ~5e31 in
    four steps and the loss overflows to Inf. The held losses are read every 16 steps, after the
    optimizer stepped on the Inf, and the re-run took a sampled step's weights (its loss finite
    there), while the weights of the Inf step read as non-finite (their L2 norm overflows): no
    `nonfinite-origin`. Now the loss is looked at before its backward on the CPU, the weights
    that produced it are kept, and finiteness is read from the largest |weight|."""
    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = _diabetes()
    torch.manual_seed(0)
    train = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=tmp_path, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=1, callbacks=[cb], default_root_dir=tmp_path).fit(DeepRegressor(), train)
    (loss,) = [f for f in cb.findings if f.check == "nonfinite-loss" and "training loss" in f.message]
    (origin,) = [f for f in cb.findings if f.check == "nonfinite-origin"]
    assert origin.step == loss.step, (origin.format(), loss.format())
    assert origin.evidence["cause"] == "overflow", origin.format()  # the weights grew: lower the rate
