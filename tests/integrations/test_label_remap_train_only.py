"""Training labels remapped by a wrong dict (5-9 -> 6, 7, 8, 9, 0) while validation keeps the
right ones, on real Lightning fits of the digits: class 5 has no training label, so the two
splits' numbers mean different classes and the validation loss climbs. It was called
overfitting; `label-shift` now names the class training never has (key `unseen-classes`) and
`train-val-gap` points to it. Where per-sample outputs are recorded (weak-slice on), a mapping
that only permutes classes (3 <-> 8 in training), which leaves the class counts alike, is named
from the validation confusion (key `mapping-differs`). The right mapping, and a validation set
that misses a class (nothing unseen there), stay silent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.checks.base import default_checks
from mlcheck.checks.samples import WeakSlice
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

WRONG = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 7, 7: 8, 8: 9, 9: 0}


def _fit(tmp_path, *, train_map=None, val_drop=None, epochs: int = 8, samples: bool = False) -> MLCheckCallback:
    import lightning.pytorch as pl

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16, dtype=torch.float32)
    y_train = np.array([train_map[v] for v in y[:1200]]) if train_map else y[:1200]
    x_val, y_val = x[1200:], y[1200:]
    if val_drop is not None:
        x_val, y_val = x_val[y_val != val_drop], y_val[y_val != val_drop]

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            out = self(batch[0])
            self.log("val_loss", nn.functional.cross_entropy(out, batch[1]))
            self.log("val_acc", (out.argmax(1) == batch[1]).float().mean())

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-3)

    pl.seed_everything(0)
    checks = [*default_checks(), WeakSlice()] if samples else None  # weak-slice records per-sample outputs
    cb = MLCheckCallback(log_dir=str(tmp_path), checks=checks)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb])
    train = DataLoader(TensorDataset(x[:1200], torch.tensor(y_train)), batch_size=32, shuffle=True)
    trainer.fit(Module(), train, DataLoader(TensorDataset(x_val, torch.tensor(y_val)), batch_size=64))
    return cb


def test_training_only_label_remap_is_named(tmp_path):
    cb = _fit(tmp_path, train_map=WRONG)
    (unseen,) = [f for f in cb.findings if f.check == "label-shift"]  # was: not said
    assert unseen.key == "unseen-classes" and unseen.severity == Severity.WARNING and unseen.epoch == 0
    assert unseen.evidence["unseen_in_train"] == [5] and unseen.evidence["train_counts"]["5"] == 0
    # was: "The model is overfitting", with overfitting's advice
    gaps = [f for f in cb.findings if f.check == "train-val-gap"]
    assert gaps and all(f.evidence.get("likely_cause") == "label-shift" for f in gaps)


@pytest.mark.parametrize("kw", [{}, {"val_drop": 5}], ids=["right-labels", "class-missing-in-validation"])
def test_same_labels_stay_silent(tmp_path, kw):
    cb = _fit(tmp_path, epochs=3, **kw)
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == []


def test_a_permuted_mapping_is_named_from_the_validation_confusion(tmp_path):
    cb = _fit(tmp_path, train_map={**{v: v for v in range(10)}, 3: 8, 8: 3}, samples=True)
    (mapping,) = [f for f in cb.findings if f.check == "label-shift"]  # was: weak-slice class=8 alone
    assert mapping.key == "mapping-differs" and mapping.severity == Severity.WARNING
    assert {(r["class"], r["predicted"]) for r in mapping.evidence["read_as"]} == {(3, 8), (8, 3)}
    assert mapping.evidence["train_accuracy"] >= 0.9
    slices = [f for f in cb.findings if f.check == "weak-slice" and f.key.startswith("class=")]
    assert slices and all(f.evidence.get("likely_cause") == "label-shift" for f in slices)


def test_right_labels_with_per_sample_outputs_leave_label_shift_silent(tmp_path):
    cb = _fit(tmp_path, samples=True)
    assert [f for f in cb.findings if f.check == "label-shift"] == []
