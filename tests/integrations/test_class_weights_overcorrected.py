"""Class weights that overshoot (newbugs29 b11): breast_cancer (class 0, malignant, is 37%) fit with
`class_weight={0: 50, 1: 1}`, a weight copied from a 1:500 fraud notebook, so the loss counts the
smaller class ~30 times over the larger. `class-imbalance` names it after the first epoch (key
`weights-overcorrected`); balancing weights and a mild cost choice ({0: 3, 1: 1}: 1.8:1 the other
way) stay silent. The Lightning twin: `CrossEntropyLoss(weight=torch.tensor([50., 1.]))`."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations import lightning as mlcheck_lightning
from mlcheck.integrations.keras import MLCheckCallback
from tests.lightning_trainer import quiet_trainer


def _data():
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x = (x - x[:450].mean(0)) / x[:450].std(0)
    return x.astype(np.float32), y.astype(np.int64)


def _keras_fit(tmp_path, class_weight) -> MLCheckCallback:
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((30,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=str(tmp_path))
    model.fit(
        x[:450],
        y[:450],
        validation_data=(x[450:], y[450:]),
        epochs=2,
        batch_size=32,
        class_weight=class_weight,
        verbose=0,
        callbacks=[cb],
    )
    return cb


def test_newbugs29_keras_class_weight_copied_from_a_far_more_skewed_data_set_is_named(tmp_path):
    cb = _keras_fit(tmp_path, {0: 50.0, 1: 1.0})
    (over,) = [f for f in cb.findings if f.key == "weights-overcorrected"]  # was: no finding at all
    assert over.check == "class-imbalance" and over.severity == Severity.WARNING and over.epoch == 0
    assert over.evidence["favoured_class"] == 0 and over.evidence["favoured_weight"] == 50.0
    assert over.evidence["weighted_ratio"] > 20
    assert "overshoot" in over.message and "compute_class_weight('balanced'" in over.hint


@pytest.mark.parametrize(
    "class_weight",
    [{0: 1.34, 1: 0.8}, {0: 3.0, 1: 1.0}, None],
    ids=["balancing", "mild-cost-choice", "none"],
)
def test_balancing_and_mild_class_weights_stay_silent(tmp_path, class_weight):
    cb = _keras_fit(tmp_path, class_weight)
    assert [f for f in cb.findings if f.key == "weights-overcorrected"] == []
    assert [f for f in cb.findings if f.check == "class-imbalance" and f.severity >= Severity.WARNING] == []


def _lightning_fit(tmp_path, weight) -> mlcheck_lightning.MLCheckCallback:
    import lightning.pytorch as pl

    x, y = (torch.tensor(a) for a in _data())

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2))
            self.loss_fn = nn.CrossEntropyLoss(weight=weight)

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
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb])
    train = DataLoader(TensorDataset(x[:450], y[:450]), batch_size=32, shuffle=True)
    trainer.fit(Module(), train, DataLoader(TensorDataset(x[450:], y[450:]), batch_size=64))
    return cb


def test_newbugs29_lightning_loss_weight_that_overshoots_is_named(tmp_path):
    cb = _lightning_fit(tmp_path, torch.tensor([50.0, 1.0]))
    (over,) = [f for f in cb.findings if f.key == "weights-overcorrected"]
    assert over.check == "class-imbalance" and over.severity == Severity.WARNING and over.epoch == 0
    assert over.evidence["favoured_class"] == 0 and over.evidence["other_weight"] == 1.0


def test_lightning_balanced_loss_weight_stays_silent(tmp_path):
    cb = _lightning_fit(tmp_path, torch.tensor([1.34, 0.8]))
    assert [f for f in cb.findings if f.check == "class-imbalance" and f.severity >= Severity.WARNING] == []
