"""h04 Lightning (healthy): 200 training digits (20 a class) with strong augmentation in the
training Dataset only (a random shift of up to 1 pixel each way, pixel noise sigma 0.15, random
erasing of a 3x3 patch), a small CNN with dropout, 25 epochs; validation on 397 clean images."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h04_tiny_data_strong_augmentation"


class Augmented(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = self.x[i].view(1, 8, 8)
        dx, dy = np.random.randint(-1, 2, size=2)
        img = torch.roll(img, shifts=(int(dy), int(dx)), dims=(1, 2))
        img = img + 0.15 * torch.randn_like(img)
        r, c = np.random.randint(0, 6, size=2)
        img = img.clone()
        img[:, r : r + 3, c : c + 3] = 0.0
        return img, self.y[i]


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(32 * 16, 10))

    def forward(self, x):
        return self.head(self.conv(x))

    def training_step(self, batch, i):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", F.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    keep = np.concatenate([np.flatnonzero(y[:1400] == c)[:20] for c in range(10)])
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(Augmented(x[keep], y[keep]), batch_size=16, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:].view(-1, 1, 8, 8), y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 25).fit(Net(), tr, va)
    report(NAME, cb.findings)
