"""b05 Lightning: an augmenting Dataset that calls `torch.manual_seed(0)` at the top of
`__getitem__` "for reproducibility": every sample gets the same shift and the same noise, and
the global generator is reset before every training step, so the model's `Dropout(0.5)` draws the
same mask at every step: the same half of the hidden units is dropped for the whole run and never
trained, then switched on (untrained) in validation."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b05_manual_seed_in_getitem"


class Augmented(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        torch.manual_seed(0)  # BUG: reseeds the global generator for every sample
        img = self.x[i].reshape(8, 8)
        shift = int(torch.randint(-1, 2, ()))
        img = torch.roll(img, shift, dims=1) + 0.05 * torch.randn(8, 8)
        return img.reshape(64), self.y[i]


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))

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
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(Augmented(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 10).fit(Net(), tr, va)
    report(NAME, cb.findings)
