"""Bug: a learning rate 100x too high -> the loss overflows -> `nonfinite-loss` (ERROR).

    python examples/buggy_lr_too_high.py

A regression on the digits' pixels with SGD at lr=5.0 where 0.05 trains well. Before the first
step, `overfit-batch` (WARNING) finds that one batch fits at a hundredth of the rate but not at
it. Within a few dozen steps the loss becomes Inf; mlcheck names the step (`nonfinite-loss`) and
where the Inf was made (`nonfinite-origin`: the loss, computed after the model, whose own output
was still finite), and `stop_on="error"` ends the run instead of wasting the rest of it.
"""

from __future__ import annotations

import lightning.pytorch as L
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck.integrations.lightning import MLCheckCallback

LR = 5.0  # the bug: 100x the 0.05 this model trains well with


class PixelRegressor(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR, momentum=0.9)


if __name__ == "__main__":
    L.seed_everything(0)
    x, _ = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    w = np.random.default_rng(1).normal(size=(64, 1)).astype(np.float32) / 8
    y = x @ w + 0.05 * np.random.default_rng(2).normal(size=(len(x), 1)).astype(np.float32)
    data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    train, val = torch.utils.data.random_split(data, [1437, 360])
    cb = MLCheckCallback(stop_on="error")
    trainer = L.Trainer(max_epochs=10, callbacks=[cb], enable_progress_bar=False)
    trainer.fit(
        PixelRegressor(),
        torch.utils.data.DataLoader(train, batch_size=32, shuffle=True),
        torch.utils.data.DataLoader(val, batch_size=256),
    )
    print()
    for finding in cb.findings:
        print(finding.format())
    print(f"stopped at step {trainer.global_step}; TensorBoard: tensorboard --logdir {cb.resolved_log_dir}")
