"""Batch 26 of new users' programs, b05: a tagger's logits with the class axis in the wrong place.

A sequence tagger's last `nn.Linear` gives (batch, time, tags) logits, which go straight into
`F.cross_entropy(logits, tags)`; torch reads dim 1 as the class axis, here the time axis. With as
many positions as tags nothing raises and the loss trains, slowly, on the wrong softmax. mlcheck
named only the symptom (`lr-too-low`). Now the adapter's loss detection sees 3-D outputs straight
from a last Linear (features on the last axis) whose measured loss is the cross-entropy over dim
1 and not the one over the last axis: `output-loss-mismatch` WARNING, key `class-axis`, at train
start. Taggers that put the classes second stay silent: transposed in `forward`, transposed in
`training_step`, flattened to (batch x time, tags), and a 1-D CNN whose channels are the classes.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)

VOCAB, T, TAGS = 30, 8, 8  # as many positions as tags: the slip raises nothing


class Tagger(pl.LightningModule):
    """An LSTM tagger; `mode` says where the class axis goes before the loss."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode
        self.emb = nn.Embedding(VOCAB, 16)
        self.rnn = nn.LSTM(16, 32, batch_first=True)
        self.out = nn.Linear(32, TAGS)

    def forward(self, tokens):
        h, _ = self.rnn(self.emb(tokens))
        logits = self.out(h)  # (batch, time, tags)
        return logits.transpose(1, 2) if self.mode == "forward-transposed" else logits

    def training_step(self, batch, batch_idx):
        tokens, tags = batch
        logits = self(tokens)
        if self.mode == "step-transposed":
            loss = F.cross_entropy(logits.transpose(1, 2), tags)
        elif self.mode == "flattened":
            loss = F.cross_entropy(logits.reshape(-1, TAGS), tags.reshape(-1))
        else:  # "wrong-axis" (the slip) and "forward-transposed" (classes second already)
            loss = F.cross_entropy(logits, tags)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


class ConvTagger(Tagger):
    """A 1-D CNN whose output channels are the tags: (batch, tags, time), classes second."""

    def __init__(self):
        super().__init__("conv")
        self.conv = nn.Conv1d(16, TAGS, kernel_size=3, padding=1)

    def forward(self, tokens):
        return self.conv(self.emb(tokens).transpose(1, 2))


def _data():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB, (256, T), generator=g)
    tags = tokens % TAGS  # each token's tag is a function of the token
    return DataLoader(TensorDataset(tokens, tags), batch_size=32, shuffle=True)


def _fit(tmp_path, module):
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(max_epochs=1, callbacks=[cb]).fit(module, _data())
    return cb, [w for w in caught if issubclass(w.category, MLCheckWarning)]


def _class_axis(cb):
    return [f for f in cb.findings if f.check == "output-loss-mismatch" and f.key == "class-axis"]


def test_time_axis_read_as_classes_is_named(tmp_path):
    cb, told = _fit(tmp_path, Tagger("wrong-axis"))
    found = _class_axis(cb)
    assert len(found) == 1, [(f.check, f.key, f.message) for f in cb.findings]
    f = found[0]
    assert f.severity is Severity.WARNING
    assert f.evidence["output_shape"][1:] == [T, TAGS]
    assert f.evidence["last_layer"] == "Linear"
    assert "transpose(1, 2)" in f.hint
    assert any("reads dim 1 as the class axis" in str(w.message) for w in told)


@pytest.mark.parametrize("mode", ["forward-transposed", "step-transposed", "flattened", "conv"])
def test_classes_second_stays_silent(tmp_path, mode):
    cb, told = _fit(tmp_path, ConvTagger() if mode == "conv" else Tagger(mode))
    assert not _class_axis(cb), [(f.check, f.key, f.message) for f in cb.findings]
    assert not [f for f in cb.findings if f.check == "output-loss-mismatch"]
