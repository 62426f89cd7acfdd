"""A training set whose loader repeats a few rows (1,000 rows, 20 distinct: an index that does
not advance), on real Lightning and Keras fits of the digits: `train-val-overlap`, which
fingerprints every training sample of the first epoch, says so in one INFO (key
`train-repeats`) naming the counts. It stays silent on data with a few duplicate rows, on
oversampling (a `WeightedRandomSampler` balancing 10:1 classes), on random augmentation of the
repeated rows (every sample distinct) and on inputs whose value space forces repeats (see
tests/checks/test_leakage_checks.py)."""

from __future__ import annotations

import keras
import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32), y[order]


class Net(lpt.LightningModule):
    def __init__(self, noise: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.noise = noise

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


class Jitter(TensorDataset):
    """Random augmentation in the dataset: every sample drawn differs from every other."""

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x + 0.05 * torch.randn_like(x), y


def _lightning(tmp_path, x, y, xv, yv, *, sampler=None, dataset=TensorDataset) -> LightningCallback:
    lpt.seed_everything(0, verbose=False)
    train = dataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = DataLoader(train, batch_size=32, shuffle=sampler is None, sampler=sampler)
    cb = LightningCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb])
    val = DataLoader(TensorDataset(torch.from_numpy(xv), torch.from_numpy(yv)), batch_size=64)
    trainer.fit(Net(), loader, val)
    return cb


def _repeats(cb) -> list:
    return [f for f in cb.findings if f.check == "train-val-overlap" and f.key == "train-repeats"]


def test_lightning_loader_repeating_20_rows_is_named(tmp_path, digits):
    x, y = digits
    idx = np.arange(1000) % 20  # the loading bug: 20 rows, 50 times each
    cb = _lightning(tmp_path, x[idx], y[idx], x[1400:], y[1400:])
    (finding,) = _repeats(cb)  # was: nothing; the run looked healthy
    assert finding.severity == Severity.INFO and finding.epoch == 0
    assert finding.evidence["train_rows"] == 1000 and finding.evidence["train_distinct"] == 20
    assert "1000 samples but only 20 distinct ones (2.0%; each seen 50 times" in finding.message
    assert "min_distinct_share=0" in finding.hint


def test_keras_fit_on_repeated_rows_is_named(tmp_path, digits):
    x, y = digits
    idx = np.arange(1000) % 20
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    cb = KerasCallback(log_dir=str(tmp_path))
    model.fit(x[idx], y[idx], validation_data=(x[1400:], y[1400:]), epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    (finding,) = _repeats(cb)
    assert finding.evidence["train_rows"] == 1000 and finding.evidence["train_distinct"] == 20


def test_healthy_repeats_stay_silent(tmp_path, digits):
    x, y = digits
    rng = np.random.default_rng(0)
    # tabular data with a few duplicate rows (5%)
    dup = np.concatenate([np.arange(1000), rng.integers(0, 1000, 50)])
    assert _repeats(_lightning(tmp_path / "dups", x[dup], y[dup], x[1400:], y[1400:])) == []
    # oversampling: a 10:1 imbalance (10 samples of class 0 beside 100 of the others)
    # balanced by a WeightedRandomSampler drawing with replacement
    minority = np.flatnonzero(y[:1400] == 0)[:10]
    majority = np.flatnonzero(y[:1400] != 0)[:100]
    idx = np.concatenate([minority, majority])
    binary = (y[idx] == 0).astype(np.int64)
    weights = torch.tensor(np.where(binary == 1, 1 / 10, 1 / 100), dtype=torch.double)
    sampler = WeightedRandomSampler(weights, num_samples=len(idx), replacement=True)
    cb = _lightning(tmp_path / "sampler", x[idx], binary, x[1400:], (y[1400:] == 0).astype(np.int64), sampler=sampler)
    assert _repeats(cb) == []
    # random augmentation of the repeated rows: every sample drawn is distinct
    idx = np.arange(1000) % 20
    cb = _lightning(tmp_path / "jitter", x[idx], y[idx], x[1400:], y[1400:], dataset=Jitter)
    assert _repeats(cb) == []
