"""b02 Lightning: a hand-written Dataset whose `__len__` returns `self.x.shape[1]` (the 64
features) instead of `shape[0]`: the sampler draws from the first 64 of 1400 rows only, so every
epoch trains on the same 64 digits (2 batches), and the model memorises them."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b02_dataset_len_is_feature_count"


class Digits(Dataset):
    def __init__(self, x, y):
        self.x, self.y = torch.tensor(x), torch.tensor(y)

    def __len__(self):
        return self.x.shape[1]  # BUG: shape[0] meant (rows), this is the number of features

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)

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
        return torch.optim.Adam(self.parameters(), lr=3e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    tr = DataLoader(Digits(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(torch.utils.data.TensorDataset(torch.tensor(x[1400:]), torch.tensor(y[1400:])), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 30).fit(Net(), tr, va)
    report(NAME, cb.findings)
