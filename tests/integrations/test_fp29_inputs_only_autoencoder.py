"""An autoencoder whose batch holds its inputs alone (`TensorDataset(x)` gives `(x,)`, a loader
over a tensor gives `x`) and whose `training_step` computes `BCE(decoder(encoder(x)), x)` or
`MSE(recon, x)` (issue 12, branch fp29; fa26's leftover). The torch adapter saw no targets, so a
binary cross-entropy's floor (the inputs' own entropy, BCE(y, p) >= H(y)) was unknown and the
batch judged against 0: `overfit-batch` said ERROR on a healthy reconstruction, and
`input-independence` trained a copy on zeroed inputs, whose targets were zeroed with them (a
WARNING "as good as the real inputs"). Now the adapter matches the step's own loss against the
common losses of the outputs against the inputs (`LossConfig.target_is_input`); a loss it cannot
name on such a batch has an unknown floor, and `overfit-batch` says INFO `unknown-floor` rather
than ERROR. Real Lightning fits and the real `mlcheck sanity` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import Severity

REPO = Path(__file__).resolve().parents[2]


def _pixels(squeezed: bool) -> np.ndarray:
    x = load_digits().data / 16
    return (0.25 + 0.5 * x if squeezed else x).astype("float32")


def _module(loss: str = "bce", lr: float = 1e-3, penalty: float = 0.0):
    import lightning.pytorch as pl
    import torch
    import torch.nn.functional as F
    from torch import nn

    class AutoEncoder(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh())
            self.dec = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 64))

        def forward(self, x):
            return torch.sigmoid(self.dec(self.enc(x)))

        def _loss(self, batch):
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            recon = self(x)
            value = F.binary_cross_entropy(recon, x) if loss == "bce" else F.mse_loss(recon, x)
            return value + penalty * self.enc(x).pow(2).mean() if penalty else value

        def training_step(self, batch, batch_idx):
            value = self._loss(batch)
            self.log("train_loss", value, on_epoch=True)
            return value

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self._loss(batch))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr)

    return AutoEncoder()


def _live(lr: float):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from mlcheck.integrations.lightning import MLCheckCallback
    from tests.lightning_trainer import quiet_trainer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    t = torch.tensor(_pixels(squeezed=True))
    n = int(0.8 * len(t))
    train = DataLoader(TensorDataset(t[:n]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(t[n:]), batch_size=64)
    cb = MLCheckCallback()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_trainer(max_epochs=15, callbacks=[cb]).fit(_module(lr=lr), train, val)
    return cb.findings


def _told(findings) -> list[str]:
    return [f"{f.check}: {f.message}" for f in findings if f.severity >= Severity.WARNING]


@pytest.mark.parametrize(("loss", "wrap"), [("bce", True), ("mse", False)])
def test_fp29_the_loss_of_a_batch_of_inputs_alone_is_named_against_the_inputs(loss, wrap):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from mlcheck.integrations.torch import LightningTrainable

    torch.manual_seed(0)
    t = torch.tensor(_pixels(squeezed=False))
    data = DataLoader(TensorDataset(t) if wrap else t, batch_size=32)
    cfg = LightningTrainable(_module(loss), train_data=data).loss_config()
    assert (cfg.loss, cfg.target_is_input) == (loss, True)
    # a loss with a term of its own (a VAE's penalty on the code) is no common loss: unknown
    cfg = LightningTrainable(_module(loss, penalty=0.5), train_data=data).loss_config()
    assert (cfg.loss, cfg.target_is_input) == (None, False)


def test_fp29_lightning_autoencoder_on_its_inputs_alone_that_learns_is_silent():
    # before: ERROR overfit-batch "the loss only went from 0.6946 to 0.6025" (floor ~0.60)
    assert _told(_live(1e-3)) == []


def test_fp29_lightning_autoencoder_on_its_inputs_alone_that_cannot_learn_is_told():
    told = _told(_live(1e-7))
    assert any(t.startswith(("loss-plateau", "lr-too-low", "overfit-batch")) for t in told), told


MODEL = """
import torch, torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import lightning.pytorch as pl
from sklearn.datasets import load_digits

torch.manual_seed(0)
PENALTY = {penalty}


class AutoEncoder(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 16), nn.Tanh())
        self.dec = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 64))

    def forward(self, x):
        return torch.sigmoid(self.dec(self.enc(x)))

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return F.binary_cross_entropy(self(x), x) + PENALTY * self.enc(x).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 3e-3)


x = torch.tensor(load_digits().data / 16 {squeeze}, dtype=torch.float32)
train_loader = DataLoader(TensorDataset(x), batch_size=32, shuffle=True)
model = AutoEncoder()
"""


def _sanity(tmp_path: Path, penalty: float, squeeze: str = "") -> list[dict]:
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(MODEL.format(penalty=penalty, squeeze=squeeze)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)["findings"]


def test_fp29_sanity_on_an_autoencoder_fed_its_inputs_alone_is_silent(tmp_path):
    # before: WARNING input-independence "Training on all-zero inputs reached a loss of 5.7e-09"
    findings = _sanity(tmp_path, penalty=0.0)
    assert [f for f in findings if f["severity"] in ("warning", "error")] == []
    skipped = [f for f in findings if f["check"] == "input-independence"]
    assert skipped and "zeroed inputs would zero the targets" in skipped[0]["message"]


def test_fp29_sanity_on_a_loss_of_unknown_floor_is_inconclusive_not_an_error(tmp_path):
    # before: ERROR overfit-batch; the penalty on the code keeps the loss far above 0
    findings = _sanity(tmp_path, penalty=0.5, squeeze="* 0.5 + 0.25")
    assert [f for f in findings if f["severity"] == "error"] == []
    overfit = [f for f in findings if f["check"] == "overfit-batch"]
    assert overfit and overfit[0]["severity"] == "info"
