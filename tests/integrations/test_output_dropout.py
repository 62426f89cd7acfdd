"""A dropout layer placed after the model's softmax output (/tmp/bugs10/b10: Keras
`Dense(3, activation="softmax")` then `Dropout(0.3)` on the wine data). In training it zeroes
some predicted probabilities and scales the rest by 1 / (1 - rate): the loss goes NaN within a
few steps. Before, the run got `nonfinite-loss` ("lower the learning rate") and a
`nonfinite-origin` naming code "after dropout"; the output activation was read from the
dropout layer (none), so `output-loss-mismatch` said nothing. Now the output activation is read
past a trailing dropout and `output-loss-mismatch` names the dropout (key `output-dropout`) at
step 0, in Keras and in Lightning (`nn.Sequential(..., nn.Sigmoid(), nn.Dropout(0.3))` under
`BCELoss`). The same models with the dropout before the output layer are silent."""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def wine():
    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x = (x - x[:140].mean(0)) / x[:140].std(0)
    return x.astype(np.float32), y


@pytest.mark.parametrize("after_output", [True, False])
def test_keras_dropout_after_softmax(tmp_path, wine, after_output):
    x, y = wine
    keras.utils.set_random_seed(0)
    hidden = [keras.Input((13,)), keras.layers.Dense(32, activation="relu")]
    head = [keras.layers.Dense(3, activation="softmax"), keras.layers.Dropout(0.3)]
    model = keras.Sequential(hidden + (head if after_output else head[::-1]))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = KerasCallback(log_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=3, batch_size=16, verbose=0, callbacks=[cb]
        )
    _judge(cb.findings, after_output)
    if after_output:  # the NaN it causes names it (before: "lower the learning rate")
        assert [f for f in cb.findings if f.check == "nonfinite-loss"]


class _Wine(lpt.LightningModule):
    """Cultivar 0 or not, one sigmoid unit under BCELoss."""

    def __init__(self, after_output: bool):
        super().__init__()
        head = [nn.Linear(32, 1), nn.Sigmoid(), nn.Dropout(0.3)]
        if not after_output:
            head = [nn.Dropout(0.3), nn.Linear(32, 1), nn.Sigmoid()]
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), *head)
        self.loss_fn = nn.BCELoss()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("after_output", [True, False])
def test_lightning_dropout_after_softmax(wine, after_output):
    x, y = wine
    lpt.seed_everything(0)
    first = torch.tensor(y[:140] == 0, dtype=torch.float32).unsqueeze(1)
    loader = DataLoader(TensorDataset(torch.tensor(x[:140]), first), batch_size=16, shuffle=True)
    cb = LightningCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=3, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_Wine(after_output), loader)
    _judge(cb.findings, after_output, "sigmoid")


def _judge(found, after_output, activation="softmax"):
    dropout = [f for f in found if f.check == "output-loss-mismatch" and f.key == "output-dropout"]
    if not after_output:
        assert not [f for f in found if f.severity >= Severity.WARNING]
        return
    (finding,) = dropout  # before: none
    assert finding.severity == Severity.WARNING and finding.step == 0
    assert finding.evidence["output_dropout"] == pytest.approx(0.3)
    assert finding.evidence["output_activation"] == activation
    nonfinite = [f for f in found if f.check in ("nonfinite-loss", "nonfinite-origin")]
    assert all(f.evidence.get("likely_cause") == "output-loss-mismatch" for f in nonfinite)
