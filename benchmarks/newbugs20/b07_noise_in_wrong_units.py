"""b07 Lightning: Gaussian-noise augmentation with sigma=2.0, chosen for raw 0-16 digit pixels, added
after the pixels were scaled to [0, 1]: the training inputs are mostly noise."""

import lightning.pytorch as pl
import torch
from _common import digits, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b07_noise_in_wrong_units"
SIGMA = 2.0  # BUG: meant for 0-16 pixels; the pixels were divided by 16 already


class Noisy(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] + SIGMA * torch.randn_like(self.x[i]), self.y[i]


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(Noisy(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=f"/tmp/newbugs20-logs/{NAME}")
    trainer(NAME, cb, 8).fit(Net(), tr, va)
    report(NAME, cb.findings)
