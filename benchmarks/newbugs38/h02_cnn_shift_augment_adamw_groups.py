"""h02 Lightning (healthy): a digits 8x8 CNN with random one-pixel shifts and Gaussian noise on the
training set only, dropout 0.25, AdamW(weight_decay=0.05) on the conv and linear weights with the
biases and BatchNorm parameters in a no-decay group, cosine annealing per epoch."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h02_cnn_shift_augment_adamw_groups"
EPOCHS = 12


class Shifted(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        img = self.x[i]
        dx, dy = torch.randint(-1, 2, (2,)).tolist()
        img = torch.roll(img, shifts=(dy, dx), dims=(1, 2))
        return img + 0.05 * torch.randn_like(img), self.y[i]


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 16, 10))

    def forward(self, x):
        return self.head(self.features(x))

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
        decay = [p for n, p in self.named_parameters() if p.ndim > 1]
        no_decay = [p for n, p in self.named_parameters() if p.ndim <= 1]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=2e-3
        )
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)}


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x).reshape(-1, 1, 8, 8), torch.tensor(y)
    tr = DataLoader(Shifted(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, EPOCHS).fit(Net(), tr, va)
    report(NAME, cb.findings)
