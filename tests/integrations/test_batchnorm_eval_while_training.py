"""A "freeze BatchNorm" hook from a fine-tuning recipe (`m.eval()` on every BatchNorm2d in
`on_train_epoch_start`) in a CNN trained from scratch (batch 35's b04): the running statistics
stay at their initial (0, 1) and the layers normalise nothing. `frozen-parameters` names it
(key `batchnorm-eval`) from the sampled steps' layer statistics: a BatchNorm in inference mode
during a training step, whose running statistics were never updated. Controls, silent: the same
CNN without the hook, and the hook in a fine-tuning that loaded trained weights first (the
practice the recipe is for: its running statistics are not 0 and 1)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations import lightning as mlcheck_lightning
from tests.lightning_trainer import quiet_trainer


class Net(pl.LightningModule):
    def __init__(self, freeze_bn: bool) -> None:
        super().__init__()
        self.freeze_bn = freeze_bn
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)

    def on_train_epoch_start(self):
        if self.freeze_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def _loader() -> DataLoader:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    return DataLoader(TensorDataset(x[:1024], torch.tensor(y[:1024])), batch_size=32, shuffle=True)


def _fit(model: Net, tmp_path) -> list:
    cb = mlcheck_lightning.MLCheckCallback(log_dir=str(tmp_path))
    quiet_trainer(max_epochs=3, callbacks=[cb]).fit(model, _loader())
    return [f for f in cb.findings if f.check == "frozen-parameters"]


@pytest.mark.parametrize("case", ["from-scratch", "no-hook", "fine-tune"])
def test_newbugs35_b04_batchnorm_in_eval_mode_while_training(tmp_path, case):
    pl.seed_everything(0)
    model = Net(freeze_bn=case != "no-hook")
    if case == "fine-tune":
        pretrained = Net(freeze_bn=False)
        quiet_trainer(max_epochs=1).fit(pretrained, _loader())  # trained: running statistics moved
        model.load_state_dict(pretrained.state_dict())
    found = _fit(model, tmp_path / "run")
    if case != "from-scratch":
        assert found == []
        return
    assert [f.key for f in found] == ["batchnorm-eval"]  # was: silent
    assert found[0].severity is Severity.WARNING
    assert found[0].evidence["layers"] == ["net.1", "net.4"]
