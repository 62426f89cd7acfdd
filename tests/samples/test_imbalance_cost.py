"""class-imbalance judges whether the imbalance costs the rare class, from the model's own
validation predictions (real Lightning on breast_cancer subsampled to 300:10 in training; the
validation set holds 57 of the rare class, enough to judge its recall)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.samples import WeakSlice
from tests.lightning_trainer import quiet_trainer


def _fit(*, weighted: bool, imbalanced: bool = True, per_sample: bool = True):
    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_breast_cancer
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    rng = np.random.default_rng(0)
    benign, malignant = rng.permutation(np.flatnonzero(y == 1)), rng.permutation(np.flatnonzero(y == 0))
    if imbalanced:  # 300:10 in training; the rest of the rare class mostly in validation
        train, val = np.concatenate([benign[:300], malignant[:10]]), np.concatenate([benign[300:], malignant[10:67]])
    else:
        order = rng.permutation(len(y))
        train, val = order[:420], order[420:]
    weight = torch.tensor([30.0, 1.0]) if weighted else None

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2))

        def forward(self, inputs):
            return self.net(inputs)

        def training_step(self, batch, i):
            return nn.functional.cross_entropy(self(batch[0]), batch[1], weight=weight)

        def validation_step(self, batch, i):
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    def loader(rows, shuffle):
        data = torch.utils.data.TensorDataset(torch.tensor(x[rows]), torch.tensor(y[rows]))
        return torch.utils.data.DataLoader(data, batch_size=32, shuffle=shuffle)

    # the validation set is balanced on purpose (a rare class's recall needs samples): label-shift off
    checks = [c for c in default_checks() if c.id != "label-shift"] + ([WeakSlice()] if per_sample else [])
    cb = MLCheckCallback(checks=checks, overfit_batch=False, log_dir=False)
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=10, callbacks=[cb], accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Net(), loader(train, True), loader(val, False))
    return [f for f in cb.findings if f.check == "class-imbalance"]


def test_an_imbalance_that_costs_the_rare_class_is_a_warning():
    found = _fit(weighted=False)
    (cost,) = [f for f in found if "minority_val_recall" in f.evidence]
    assert cost.severity.value == "warning", cost.message
    assert cost.evidence["minority_recall_high"] < 0.8 and cost.evidence["majority_val_recall"] > 0.9
    assert "costs the rare class" in cost.message
    # without per-sample outputs the same run stays INFO, and says how to find out
    (plain,) = _fit(weighted=False, per_sample=False)
    assert plain.severity.value == "info" and "weak-slice" in plain.hint


@pytest.mark.parametrize("imbalanced", [True, False], ids=["rare-class-learned", "balanced"])
def test_an_imbalance_the_model_copes_with_stays_info(imbalanced):
    found = _fit(weighted=True, imbalanced=imbalanced)
    assert all(f.severity.value == "info" for f in found), [f.message for f in found]
    if imbalanced:
        assert any("does not visibly cost" in f.message for f in found)
    else:
        assert found == []
