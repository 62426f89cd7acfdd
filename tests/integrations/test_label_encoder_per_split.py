"""`loss-plateau` (key `val-prior`) on labels encoded apart per split (/tmp/bugs11/b06): wine with
string class names, a validation set without one class, and a second `LabelEncoder` fitted on the
validation names, so grignolino is 2 in training and 1 in validation. The finding (validation
never beat the class prior while training fell to ~0) said the labels likely carry no
information, naming shuffling and the label column; it now also names a per-split encoding."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder, StandardScaler
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _Wine(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Linear(64, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        self.log("val_loss", F.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def test_newbugs11_validation_labels_from_a_second_label_encoder(tmp_path):
    pl.seed_everything(0)
    data = load_wine()
    names = np.array(["barolo", "grignolino", "barbera"])[data.target]
    xtr, xva, ntr, nva = train_test_split(data.data, names, test_size=0.25, random_state=0)
    keep = nva != "barolo"
    xva, nva = xva[keep], nva[keep]
    scaler = StandardScaler().fit(xtr)
    ytr = LabelEncoder().fit_transform(ntr)  # barbera 0, barolo 1, grignolino 2
    yva = LabelEncoder().fit_transform(nva)  # the bug: barbera 0, grignolino 1
    tensors = lambda a, b: TensorDataset(torch.tensor(a, dtype=torch.float32), torch.tensor(b))  # noqa: E731
    train = DataLoader(tensors(scaler.transform(xtr), ytr), batch_size=16, shuffle=True)
    val = DataLoader(tensors(scaler.transform(xva), yva), batch_size=64)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=8, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(_Wine(), train, val)
    (finding,) = [f for f in cb.findings if f.check == "loss-plateau" and f.key == "val-prior"]
    assert "LabelEncoder" in finding.hint and "fitted per split" in finding.hint  # before: not named
