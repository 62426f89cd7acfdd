"""b01 Lightning: a diabetes regressor whose head is `nn.Linear(32, 1)` (outputs (N, 1)) trained with
`F.mse_loss(pred, y)` on targets of shape (N,): the difference broadcasts to (N, N), every
prediction is compared with every target, and the best the network can do is predict the batch
mean. PyTorch's "target size" UserWarning is filtered away with the others."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import diabetes, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b01_mse_target_shape_broadcast"


class Regressor(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        loss = F.mse_loss(self(x), y)  # BUG: (N, 1) against (N,) broadcasts to (N, N)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = diabetes()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:350], y[:350]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[350:], y[350:]), batch_size=128)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 40).fit(Regressor(), tr, va)
    report(NAME, cb.findings)
