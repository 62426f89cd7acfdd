"""A slow but healthy fine-tune (healthy-programs batch 12, l1b): a classifier pretrained for two
epochs on half of the data, its `state_dict` loaded into a fresh LightningModule, fine-tuned on the
other half at Adam 1e-4. Its first 10 steps' loss is 0.77 (0.56 x ln 4), above the half of ln(4)
that marked a trained start, and it falls slowly by choice: `lr-too-low` warned "falls steadily but
slowly". No prediction that ignores the labels scores below their entropy (ln 4 here), so a first
10 steps' mean loss 3 standard errors below it shows weights that know the task. The same network
from scratch at a rate 100x too small keeps the WARNING."""

from __future__ import annotations

import io

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer


class Classifier(pl.LightningModule):
    def __init__(self, optimizer: str, lr: float) -> None:
        super().__init__()
        self.optimizer, self.lr = optimizer, lr
        self.net = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 4))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return getattr(torch.optim, self.optimizer)(self.parameters(), self.lr)


def _fit(model: pl.LightningModule, loader: DataLoader, epochs: int, callbacks=()) -> None:
    quiet_trainer(max_epochs=epochs, callbacks=list(callbacks)).fit(model, loader)


@pytest.mark.parametrize("start", ["fine-tune", "scratch-sgd-1e-4"])
def test_a_fine_tune_from_a_loaded_state_dict_is_not_told_to_raise_its_rate(tmp_path, start):
    pl.seed_everything(21)
    x, y = make_classification(
        n_samples=6000, n_features=20, n_informative=8, n_classes=4, class_sep=1.0, flip_y=0.02, random_state=21
    )
    x = torch.tensor(StandardScaler().fit_transform(x).astype(np.float32))
    y = torch.tensor(y).long()

    def loader(a: int, b: int) -> DataLoader:
        return DataLoader(TensorDataset(x[a:b], y[a:b]), batch_size=32, shuffle=True)

    if start == "fine-tune":
        pretrained = Classifier("Adam", 1e-3)
        _fit(pretrained, loader(0, 3000), epochs=2)
        saved = io.BytesIO()
        torch.save(pretrained.state_dict(), saved)
        saved.seek(0)
        model = Classifier("Adam", 1e-4)
        model.load_state_dict(torch.load(saved))
    else:
        model = Classifier("SGD", 1e-4)  # from scratch, far too small a rate for plain SGD
    cb = MLCheckCallback(log_dir=str(tmp_path))
    _fit(model, loader(3000, 6000), epochs=12, callbacks=[cb])
    slow = [f for f in cb.findings if f.check == "lr-too-low" and f.severity >= Severity.WARNING]
    if start == "fine-tune":
        assert slow == []  # was: "The training loss falls steadily but slowly: only 19.4% in 768 steps"
    else:
        assert slow, "a run from scratch at a rate 100x too small is still told to raise it"
