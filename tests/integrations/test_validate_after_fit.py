"""`trainer.validate()` after `fit`, with the callback: Lightning logs the evaluation at the fit's
final step in epoch `max_epochs`, where no training ran, and `mlcheck analyze` read it as one more
epoch of the run's validation curve (HCDescamps' log: "6 epochs" for 5). The live run never took
it (the callback's fit is over); the log's reading now leaves it out too."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Clf(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def test_validate_after_fit_is_no_epoch_of_the_run(tmp_path):
    pl.seed_everything(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(640, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
    xs, ys = torch.tensor(x), torch.tensor(y)
    train = DataLoader(TensorDataset(xs[:512], ys[:512]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(xs[512:], ys[512:]), batch_size=64)
    model, cb = Clf(), MLCheckCallback()
    trainer = quiet_trainer(max_epochs=5, callbacks=[cb], logger=CSVLogger(tmp_path), log_every_n_steps=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, train, val)
        trainer.validate(model, val, verbose=False)
        trainer.validate(model, val, verbose=False)  # twice: both at the fit's final step
    assert cb.live.monitor.run.val_loss.finite_count == 5  # the live run took the fit's five alone
    log = tmp_path / "lightning_logs" / "version_0"
    assert (log / "metrics.csv").read_text().count("\n5,80,") == 2  # what Lightning wrote

    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "--json", str(log)], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["epochs"] == 5, run  # was 6
