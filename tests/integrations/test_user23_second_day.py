"""A new user's second day (round 23): the newer features tried as README and docs/ describe them.

Each test is a real fit or the real `mlcheck` command, and failed before its fix.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from mlcheck import MLCheckWarning
from tests.lightning_trainer import quiet_trainer

pytest.importorskip("lightning")


def _digits_overfit_module():
    import lightning.pytorch as pl
    import torch
    from torch import nn

    class Net(pl.LightningModule):
        """A wide MLP that learns 120 digits' labels by heart."""

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self(x), y))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    return Net


def _digits_loaders(n_val_loaders: int):
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from torch.utils.data import DataLoader, TensorDataset

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])
    # labels shuffled apart from their inputs: the network can only learn them by heart, so its
    # validation loss climbs from the first epochs while the training loss falls to ~0
    shuffled = y[:120][torch.randperm(120, generator=torch.Generator().manual_seed(0))]
    train = DataLoader(TensorDataset(x[:120], shuffled), batch_size=30, shuffle=True)
    xv, yv = x[120:720], y[120:720]
    val = [
        DataLoader(TensorDataset(xv[k::n_val_loaders], yv[k::n_val_loaders]), batch_size=100)
        for k in range(n_val_loaders)
    ]
    return train, val


@pytest.mark.parametrize("n_val_loaders", [1, 2])
def test_user23_several_validation_loaders_keep_the_validation_loss(tmp_path, n_val_loaders):
    """With two validation loaders Lightning logs `val_loss/dataloader_idx_0` and `..._1`; the
    callback read neither as the validation loss, so `train-val-gap` never ran (and `mlcheck
    analyze` of the same run's event files read no validation curve). The first loader's is
    judged now, live and in `mlcheck analyze`."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import TensorBoardLogger

    from mlcheck.integrations.lightning import MLCheckCallback

    pl.seed_everything(0, verbose=False)
    train, val = _digits_loaders(n_val_loaders)
    cb = MLCheckCallback()
    trainer = quiet_trainer(
        max_epochs=30, callbacks=[cb], logger=TensorBoardLogger(tmp_path, name="runs"), log_every_n_steps=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(_digits_overfit_module()(), train, val if n_val_loaders > 1 else val[0])
    gaps = [f for f in cb.findings if f.check == "train-val-gap"]
    assert [f.severity.value for f in gaps][:1] == ["warning"], [f.format() for f in cb.findings]

    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(tmp_path / "runs"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1), out.stderr
    report = json.loads(out.stdout)
    assert any(f["check"] == "train-val-gap" for f in report["findings"]), out.stdout
    (run,) = report["runs"]
    assert run["series"].get("val_loss", "").startswith("val_loss"), run
