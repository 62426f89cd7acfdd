"""`loss-plateau`'s hint follows the update sizes the run measured. A classifier whose
gradients are clipped to 1e-5 under SGD (a typo for 1.0) learns nothing: its validation loss
never beats the class prior, and the finding told the user that "the labels likely carry no
information about the inputs". The training loss did not beat the prior either, and the
updates were 1e-6 of the weights: the hint now names the clipping. A model fed labels shuffled
apart from its inputs moves its weights at a usual rate; its plateau at chance now says a
learning rate too low is unlikely and names the labels first, where it said "raise the
learning rate". The twin with the clipping at 1.0 learns and stays silent."""

from __future__ import annotations

import os
import warnings

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)
assert os.environ.get("KERAS_BACKEND") == "torch"  # tests/conftest.py


class _Cancer(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


@pytest.mark.parametrize("clip", [1e-5, 1.0])
def test_validation_at_the_prior_with_clipped_gradients_names_the_clipping(tmp_path, clip):
    pl.seed_everything(0)
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)[order]
    x, y = torch.tensor(x), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:455], y[:455]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[455:], y[455:]), batch_size=64)
    cb = LightningCallback(log_dir=str(tmp_path), every_n_steps=5)
    trainer = quiet_trainer(max_epochs=8, gradient_clip_val=clip, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_Cancer(), train, val)
    plateau = [f for f in cb.findings if f.check == "loss-plateau" and f.severity >= Severity.WARNING]
    if clip < 1:
        (finding,) = plateau
        assert "clipped to 1e-05" in finding.hint, finding.hint  # before: "the labels likely carry no information"
        assert "labels likely carry no information" not in finding.hint
    else:
        assert plateau == []


def test_plateau_at_chance_with_usual_updates_names_the_labels(tmp_path):
    keras.utils.set_random_seed(1)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x = x[np.random.default_rng(1).permutation(len(x))]  # the inputs alone: labels no longer match
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    cb = KerasCallback(log_dir=str(tmp_path), every_n_steps=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=8, verbose=0, callbacks=[cb])
    (finding,) = [f for f in cb.findings if f.check == "loss-plateau"]
    assert "a learning rate too low is unlikely" in finding.hint or "shuffled and split together" in finding.hint
    assert "raise the learning rate" not in finding.hint  # before: the first thing it suggested
