"""h06 Lightning (healthy): digits as "is it a 3" (about 1:9), two logits, `CrossEntropyLoss`
weighted by sklearn's balanced class weights (n / (2 x count)) computed on the training split;
validation loss unweighted, Adam 1e-3, 10 epochs."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import digits, log_dir, quiet, report, trainer
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h06_weighted_imbalanced_classifier"


class Net(pl.LightningModule):
    def __init__(self, class_weight):
        super().__init__()
        self.register_buffer("class_weight", torch.tensor(class_weight, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, i):
        x, y = batch
        loss = F.cross_entropy(self(x), y, weight=self.class_weight)
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
    y = (y == 3).astype(np.int64)
    w = compute_class_weight("balanced", classes=np.array([0, 1]), y=y[:1400])
    print("class weights", w)
    x, y = torch.tensor(x), torch.tensor(y)
    tr = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 10).fit(Net(w), tr, va)
    report(NAME, cb.findings)
