"""Keras `class_weight` upside down (the majority class weighted up, {0: 10, 1: 0.1} on a 9:1
binary task), on real fits of the digits: the callback reads the weight of each class from the
per-sample weights Keras hands each step, `class-imbalance` names the inverted weights after the
first epoch (key `weights-inverted`), and `train-val-gap`, which called the run overfitting,
points to it as the likely cause. Balancing weights, per-sample weights and no weights stay
silent. The Lightning twin: a LightningModule whose `CrossEntropyLoss(weight=w)` attribute weights
the majority up (w = counts / counts.min(), float32, as users write it)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations import lightning as mlcheck_lightning
from mlcheck.integrations.keras import MLCheckCallback
from mlcheck.integrations.torch_live import loss_class_weights
from tests.lightning_trainer import quiet_trainer


def _fit(tmp_path, *, epochs: int, **fit_kw) -> MLCheckCallback:
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16).astype(np.float32), (y == 0).astype(np.int64)  # class 1 is ~10%
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=str(tmp_path))
    model.fit(
        x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=epochs, verbose=0, callbacks=[cb], **fit_kw
    )
    return cb


def test_inverted_class_weights_are_named_and_explain_the_gap(tmp_path):
    cb = _fit(tmp_path, epochs=6, class_weight={0: 10.0, 1: 0.1})
    (inverted,) = [f for f in cb.findings if f.key == "weights-inverted"]  # was: not noticed
    assert inverted.check == "class-imbalance" and inverted.severity == Severity.WARNING and inverted.epoch == 0
    assert inverted.evidence["largest_class"] == 0 and inverted.evidence["largest_weight"] == 10.0
    assert "upside down" in inverted.message and "compute_class_weight('balanced'" in inverted.hint
    # was: "The model is overfitting", with overfitting's advice
    gaps = [f for f in cb.findings if f.check == "train-val-gap"]
    assert gaps and all(f.evidence.get("likely_cause") == "class-imbalance" for f in gaps)


@pytest.mark.parametrize(
    "fit_kw",
    [
        {"class_weight": {0: 0.55, 1: 5.0}},  # balancing, as compute_class_weight("balanced") gives
        {"sample_weight": np.random.default_rng(0).uniform(0.5, 2.0, 1400)},  # per sample, not per class
        {},
    ],
    ids=["balancing", "sample_weight", "none"],
)
def test_balancing_and_per_sample_weights_stay_silent(tmp_path, fit_kw):
    cb = _fit(tmp_path, epochs=3, **fit_kw)
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == []


# -- Lightning: the `weight` of the module's CrossEntropyLoss --------------------------------------


def _lightning_fit(tmp_path, weight_of, *, epochs: int = 3) -> mlcheck_lightning.MLCheckCallback:
    import lightning.pytorch as pl

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor((y == 0).astype(np.int64))
    counts = torch.bincount(y[:1400]).float()

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
            self.loss_fn = nn.CrossEntropyLoss(weight=weight_of(counts))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            loss = self.loss_fn(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-3)

    pl.seed_everything(0)
    cb = mlcheck_lightning.MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb])
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    trainer.fit(Module(), train, DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=64))
    return cb


def test_lightning_inverted_loss_weight_is_named(tmp_path):
    cb = _lightning_fit(tmp_path, lambda counts: counts / counts.min())  # was: no problems found
    (inverted,) = [f for f in cb.findings if f.key == "weights-inverted"]
    assert inverted.check == "class-imbalance" and inverted.severity == Severity.WARNING and inverted.epoch == 0
    assert inverted.evidence["largest_class"] == 0 and inverted.evidence["smallest_weight"] == 1.0
    assert "upside down" in inverted.message


@pytest.mark.parametrize(
    "weight_of",
    [lambda counts: counts.sum() / (2 * counts), lambda counts: None],
    ids=["balancing", "none"],
)
def test_lightning_balancing_or_no_loss_weight_stays_silent(tmp_path, weight_of):
    cb = _lightning_fit(tmp_path, weight_of)
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == []


def test_loss_weights_are_read_only_where_unambiguous():
    module = nn.Module()
    module.loss_fn = nn.CrossEntropyLoss(weight=torch.tensor([3.0, 1.0]))
    assert loss_class_weights(module) == {0: 3.0, 1: 1.0}
    module.val_loss = nn.NLLLoss()  # unweighted: no say in the matter
    assert loss_class_weights(module) == {0: 3.0, 1: 1.0}
    module.other = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]))  # which one trains is unknown
    assert loss_class_weights(module) is None
    assert loss_class_weights(nn.Sequential(nn.Linear(2, 2), nn.CrossEntropyLoss())) is None
