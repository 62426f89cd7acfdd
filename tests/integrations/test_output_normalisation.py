"""A normalisation layer placed after the model's softmax or sigmoid output (batch 26's b10:
Keras `BatchNormalization()` added after every Dense layer, the softmax output included). It
re-centres and re-scales the probabilities, so some are negative and the rows no longer sum to
1; the loss clips them. Before, the output activation was read from the last layer (the
normalisation, no activation) and `output-loss-mismatch` said nothing; the run got only
`loss-plateau` (validation at the class prior). Now `output-loss-mismatch` names it (key
`output-normalisation`) at step 0, in Keras and in Lightning (`nn.Sequential(..., nn.Sigmoid(),
nn.BatchNorm1d(1))` under `BCELoss`, and `nn.Softmax` then `nn.LayerNorm`). The same models with
the normalisation on the hidden layers only are silent."""

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
def test_keras_batchnorm_after_softmax(tmp_path, wine, after_output):
    x, y = wine
    keras.utils.set_random_seed(0)
    layers = [keras.Input((13,))]
    for units, act in [(32, "relu"), (16, "relu"), (3, "softmax")]:
        layers.append(keras.layers.Dense(units, activation=act))
        if act != "softmax" or after_output:
            layers.append(keras.layers.BatchNormalization())
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = KerasCallback(log_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=3, batch_size=16, verbose=0, callbacks=[cb]
        )
    _judge(cb.findings, after_output, "BatchNormalization", "softmax")


class _Wine(lpt.LightningModule):
    """Cultivar 0 or not (one sigmoid unit under BCELoss), or the three cultivars (a softmax
    under NLLLoss of its log)."""

    def __init__(self, after_output: bool, binary: bool):
        super().__init__()
        self.binary = binary
        out = [nn.Linear(32, 1), nn.Sigmoid()] if binary else [nn.Linear(32, 3), nn.Softmax(dim=1)]
        norm = nn.BatchNorm1d(1) if binary else nn.LayerNorm(3)
        hidden = [nn.Linear(13, 32), nn.BatchNorm1d(32), nn.ReLU()]
        self.net = nn.Sequential(*hidden, *out, *([norm] if after_output else []))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        if self.binary:
            loss = nn.functional.binary_cross_entropy(out.clamp(1e-7, 1 - 1e-7), y)
        else:
            loss = nn.functional.nll_loss(torch.log(out.clamp_min(1e-7)), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize(("after_output", "binary"), [(True, True), (True, False), (False, True), (False, False)])
def test_lightning_normalisation_after_output(tmp_path, wine, after_output, binary):
    x, y = wine
    lpt.seed_everything(0)
    target = torch.tensor(y[:140] == 0, dtype=torch.float32).unsqueeze(1) if binary else torch.tensor(y[:140])
    loader = DataLoader(TensorDataset(torch.tensor(x[:140]), target), batch_size=16, shuffle=True)
    cb = LightningCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=3, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_Wine(after_output, binary), loader)
    _judge(cb.findings, after_output, *(("BatchNorm1d", "sigmoid") if binary else ("LayerNorm", "softmax")))


def _judge(found, after_output, layer, activation):
    told = [f for f in found if f.check == "output-loss-mismatch" and f.key == "output-normalisation"]
    if not after_output:
        assert not [f for f in found if f.severity >= Severity.WARNING], [f.format() for f in found]
        return
    assert len(told) == 1, [f.format() for f in found]  # before: none
    (finding,) = told
    assert finding.severity == Severity.WARNING and finding.step == 0
    assert finding.evidence["output_normalisation"] == layer
    assert finding.evidence["output_activation"] == activation
