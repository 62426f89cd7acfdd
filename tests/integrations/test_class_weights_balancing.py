"""A 40:1 imbalance that the loss already balances (sklearn's 'balanced' class weights: the
`weight=` of a Lightning module's `CrossEntropyLoss`, Keras' `class_weight=`) is an INFO that says
so, not a WARNING advising the weights the run already has (healthy-programs batch 12, l3: a
WARNING before). The same fits without weights keep the WARNING."""

from __future__ import annotations

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations import lightning as mlcheck_lightning
from mlcheck.integrations.keras import MLCheckCallback
from tests.lightning_trainer import quiet_trainer


def _data() -> tuple[np.ndarray, np.ndarray]:
    """4,000 of class 0 against 100 of class 1 (40:1; the ratio's conservative bound ~28, over
    the WARNING's 20), the rare class shifted so that a weighted loss learns it."""
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(size=(4000, 8)), rng.normal(size=(100, 8)) + 1.5].astype(np.float32)
    y = np.r_[np.zeros(4000), np.ones(100)].astype(np.int64)
    order = rng.permutation(len(x))
    return x[order], y[order]


def _balanced(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y)
    return len(y) / (len(counts) * counts)  # sklearn's compute_class_weight("balanced")


def _imbalance(findings) -> list:
    return [f for f in findings if f.check == "class-imbalance"]


@pytest.mark.parametrize("weighted", [True, False], ids=["balanced-weights", "no-weights"])
def test_lightning_loss_weights_that_balance_the_classes_keep_it_info(tmp_path, weighted):
    x, y = _data()
    weight = torch.tensor(_balanced(y), dtype=torch.float32) if weighted else None

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
            self.loss_fn = nn.CrossEntropyLoss(weight=weight)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return self.loss_fn(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 2e-3)

    pl.seed_everything(0)
    cb = mlcheck_lightning.MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=1, callbacks=[cb])
    trainer.fit(Module(), DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=64, shuffle=True))
    (found,) = _imbalance(cb.findings)
    if not weighted:
        assert found.severity == Severity.WARNING and "weighted_ratio" not in found.evidence
        return
    assert found.severity == Severity.INFO  # was: WARNING
    assert found.evidence["weighted_ratio"] == pytest.approx(1.0, rel=0.05)
    assert "count them 1.0:1" in found.message and "Nothing to change in the loss" in found.hint


@pytest.mark.parametrize("weighted", [True, False], ids=["balanced-weights", "no-weights"])
def test_keras_class_weight_that_balances_the_classes_keeps_it_info(tmp_path, weighted):
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile("adam", "binary_crossentropy")
    cb = MLCheckCallback(log_dir=str(tmp_path))
    class_weight = dict(enumerate(_balanced(y).tolist())) if weighted else None
    model.fit(x, y.astype(np.float32), epochs=1, batch_size=64, verbose=0, callbacks=[cb], class_weight=class_weight)
    (found,) = _imbalance(cb.findings)
    if not weighted:
        assert found.severity == Severity.WARNING
        return
    assert found.severity == Severity.INFO  # was: WARNING
    assert found.evidence["weighted_ratio"] == pytest.approx(1.0, rel=0.05)
