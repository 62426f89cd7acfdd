"""mlcheck calls a LightningModule's `training_step` outside the Trainer (the loss at init, the
loss's reduction, the train-start checks' error path, the trace of a module without forward):
it once ran on the run's own module, so a step that counts its calls or keeps its outputs (the
Lightning 2 way of averaging over an epoch, `self.training_step_outputs.append(loss)`) saw
four more calls than the run made, and its epoch average took in mlcheck's losses. Those calls
now run on a copy that shares the module's weights (`_shell`): real Lightning fits of the
digits, with and without a forward."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)

BATCHES = 19  # 600 rows in batches of 32


class Counting(pl.LightningModule):
    def __init__(self, with_forward: bool) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        self.with_forward = with_forward
        self.calls = 0
        self.training_step_outputs: list[torch.Tensor] = []
        self.epoch_means: list[float] = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        self.calls += 1
        x, y = batch
        loss = F.cross_entropy(self(x) if self.with_forward else self.net(x.flatten(1)), y)
        self.training_step_outputs.append(loss.detach())
        return loss

    def on_train_epoch_end(self):
        self.epoch_means.append(float(torch.stack(self.training_step_outputs).mean()))
        self.training_step_outputs.clear()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _fit(with_forward: bool, watched: bool) -> Counting:
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    if not with_forward:
        x = x.reshape(-1, 1, 8, 8)
    pl.seed_everything(0)
    module = Counting(with_forward)
    trainer = quiet_trainer(max_epochs=1, callbacks=[MLCheckCallback(log_dir=False)] if watched else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, DataLoader(TensorDataset(x[:600], y[:600]), batch_size=32, shuffle=True))
    return module


@pytest.mark.parametrize("with_forward", [True, False], ids=["forward", "no-forward"])
def test_the_steps_own_state_sees_only_the_runs_steps(with_forward):
    watched = _fit(with_forward, watched=True)
    assert watched.calls == BATCHES  # was 23 with a forward, 20 without (mlcheck's calls counted)
    alone = _fit(with_forward, watched=False)
    assert watched.epoch_means == alone.epoch_means  # was: mlcheck's losses at init averaged in
