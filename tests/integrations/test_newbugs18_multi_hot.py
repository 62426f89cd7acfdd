"""Batch 18 of new users' programs: a multi-label task trained with a softmax cross-entropy.

`F.cross_entropy(logits, y)` with multi-hot float targets (5 tags, one or more on a row) runs
without an error (torch reads float targets as class probabilities), but the softmax makes the
tags share one unit of probability: a row with two tags scores at best 0.5 on each and the loss
cannot reach 0. Before, only `overfit-batch`'s generic "wiring bug" ERROR came. Now
`output-loss-mismatch` names the multi-hot targets (WARNING, key multi-hot) at train start, and
`overfit-batch` says it follows from it. The same targets under `BCEWithLogitsLoss`, and one-hot
float targets under `F.cross_entropy`, stay silent.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Tagger(pl.LightningModule):
    def __init__(self, loss):
        super().__init__()
        self.loss = loss
        self.net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(out, y)
        return F.cross_entropy(out, y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def data(one_hot: bool):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(640, 20)).astype("float32")
    scores = x @ rng.normal(size=(20, 5)) + rng.normal(size=(640, 5))
    if one_hot:
        y = np.eye(5, dtype="float32")[scores.argmax(1)]
    else:
        y = (scores > 0.8).astype("float32")  # 1-2 tags on a row, some rows none
    return DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=64, shuffle=True)


def fit(module, loader, tmp_path):
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(module, loader)
    return cb.findings


def test_newbugs18_multi_hot_targets_under_softmax_cross_entropy_are_named(tmp_path):
    pl.seed_everything(0)
    findings = fit(Tagger("ce"), data(one_hot=False), tmp_path)
    hot = [f for f in findings if f.check == "output-loss-mismatch" and f.key == "multi-hot"]
    assert len(hot) == 1, [f.format() for f in findings]
    f = hot[0]
    assert f.severity == Severity.WARNING and f.step == 0
    assert f.evidence["rows_with_several_labels"] >= 2 and f.evidence["max_labels_per_row"] >= 2
    assert "multi-hot" in f.message and "BCEWithLogitsLoss" in f.hint and "binary_crossentropy" in f.hint
    for other in findings:
        if other.check == "overfit-batch" and other.severity >= Severity.WARNING:
            assert other.evidence.get("likely_cause") == "output-loss-mismatch", other.format()


@pytest.mark.parametrize("loss,one_hot", [("bce", False), ("ce", True)])
def test_newbugs18_multi_hot_twins_stay_silent(tmp_path, loss, one_hot):
    pl.seed_everything(0)
    findings = fit(Tagger(loss), data(one_hot=one_hot), tmp_path)
    assert not [f for f in findings if f.check == "output-loss-mismatch"], [f.format() for f in findings]
    assert not [f for f in findings if f.severity >= Severity.WARNING], [f.format() for f in findings]
