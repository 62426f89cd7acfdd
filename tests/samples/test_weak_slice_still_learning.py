"""`weak-slice` on a short healthy run (issue #15, round 23): while the model is still learning
(the error still falls beyond binomial noise), a slice's gap stays INFO, never a WARNING."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

from mlcheck.checks.samples import WeakSlice  # noqa: E402
from mlcheck.findings import Severity  # noqa: E402
from mlcheck.integrations.lightning import MLCheckCallback  # noqa: E402
from tests.lightning_trainer import quiet_trainer  # noqa: E402


class _MLP(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, t = batch
        loss = nn.functional.cross_entropy(self(x), t)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, t = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), t))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


def test_weak_slice_stays_info_while_a_healthy_digits_mlp_still_learns(tmp_path):
    """The round-23 program (/tmp/u23/c/feats.py, case `limit`): a digits MLP, 6 epochs of 5
    batches; the validation error falls from 80% to 48%, a feature range trails by 47 points.
    A WARNING before the fix; now INFO (the run is still learning)."""
    torch.manual_seed(0)
    x, y = sklearn_datasets.load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=64)
    cb = MLCheckCallback(checks=[WeakSlice()], log_dir=str(tmp_path))
    quiet_trainer(
        max_epochs=6, limit_train_batches=5, limit_val_batches=2, callbacks=[cb], default_root_dir=str(tmp_path)
    ).fit(_MLP(), train, val)
    weak = [f for f in cb.findings if f.check == "weak-slice"]
    assert weak, "the slice's gap is still reported, as INFO"
    assert all(f.severity is Severity.INFO for f in weak), [(f.severity, f.message) for f in weak]
    errors = [e for e in weak[0].evidence["overall_error_by_pass"] if e is not None]
    assert errors[0] - errors[-1] > 0.1  # it was still learning


def test_weak_slice_learning_rule_judges_the_fall_against_binomial_noise():
    """The rule itself: a fall of the error beyond 1.96 pooled standard errors over the last 3
    passes is learning; the same fall on few rows, or a flat error, is not."""
    check = WeakSlice()
    check._overall = {"val": [[400, 80], [400, 60], [400, 50], [400, 48]]}
    assert check._learning("val")  # 20% -> 12% on 400 rows: z ~ 3.1
    check._overall = {"val": [[40, 8], [40, 6], [40, 5], [40, 5]]}
    assert not check._learning("val")  # the same rates on 40 rows: z ~ 1.0
    check._overall = {"val": [[400, 52], [400, 50], [400, 51], [400, 50]]}
    assert not check._learning("val")
    # the training passes count too when validation is judged
    check._overall = {"val": [[400, 52], [400, 50], [400, 51], [400, 50]], "train": [[1400, 125], [1400, 78]]}
    assert check._learning("val")
    assert np.isfinite(check.learning_z)
