"""`train-val-overlap` on inputs larger than its probe (3x20x20 images), in real Lightning and
Keras runs: a copy matched on the probe in the first epoch is confirmed, value by value, when
its training sample comes by again in the second epoch; a one-epoch run leaves it an INFO."""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from torch import nn

from mlcheck import MLCheckWarning, Severity
from mlcheck.checks.leakage import TrainValOverlap
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer

SHAPE = (3, 20, 20)  # 1,200 values: above the 1,024 hashed whole, so two stages


def _images(copied: int):
    rng = np.random.default_rng(0)
    x = rng.random((480, *SHAPE), dtype=np.float32)
    y = (x[:, 0].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    xv = rng.random((96, *SHAPE), dtype=np.float32)
    xv[:copied] = x[100 : 100 + copied]
    yv = (xv[:, 0].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    return x, y, xv, yv


class _Net(lpt.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(SHAPE)), 2))

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _lightning(tmp_path, epochs: int, copied: int):
    x, y, xv, yv = _images(copied)
    loader = torch.utils.data.DataLoader
    data = torch.utils.data.TensorDataset
    train = loader(data(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True)
    val = loader(data(torch.tensor(xv), torch.tensor(yv)), batch_size=32)
    cb = LightningCallback(checks=[TrainValOverlap()], overfit_batch=False, log_dir=None)
    lpt.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=epochs, default_root_dir=str(tmp_path), callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        warnings.filterwarnings("ignore", message=".*(num_workers|log_every_n_steps).*")
        trainer.fit(_Net(), train, val)
    return cb.findings


def _keras(tmp_path, epochs: int, copied: int):
    x, y, xv, yv = _images(copied)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    cb = KerasCallback(checks=[TrainValOverlap()], overfit_batch=False, log_dir=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32, verbose=0, callbacks=[cb])
    return cb.findings


@pytest.mark.parametrize("fit", [_lightning, _keras], ids=["lightning", "keras"])
def test_copies_of_large_samples_are_confirmed_in_the_second_epoch(tmp_path, fit):
    (error,) = [f for f in fit(tmp_path, epochs=2, copied=24) if f.severity is Severity.ERROR]
    assert error.check == "train-val-overlap" and error.epoch == 1  # the confirming pass
    assert error.evidence["probe_matches"] == 24 and error.evidence["val_in_train"] >= 5


@pytest.mark.parametrize("fit", [_lightning, _keras], ids=["lightning", "keras"])
def test_one_epoch_reports_the_unconfirmed_matches_as_info(tmp_path, fit):
    findings = fit(tmp_path, epochs=1, copied=24)
    assert [(f.check, f.severity) for f in findings] == [("train-val-overlap", Severity.INFO)]
    assert findings[0].evidence["unconfirmed"] == 24


@pytest.mark.parametrize("fit", [_lightning, _keras], ids=["lightning", "keras"])
def test_distinct_splits_stay_silent(tmp_path, fit):
    assert fit(tmp_path, epochs=2, copied=0) == []
