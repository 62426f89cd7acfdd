"""b06 Lightning: breast_cancer's training rows come as a DataFrame in the data set's column order,
the validation rows from a file written with its columns sorted by name; the StandardScaler fitted
on training is applied to `val_df.values`, so every validation column is scaled with another
feature's mean and spread (area ~ 650 divided by a smoothness spread of ~0.014)."""

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from _common import log_dir, quiet, report, trainer
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b06_val_columns_reordered"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 2))

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
    df = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0)
    train_df, val_df = df.iloc[:450], df.iloc[450:]
    val_df = val_df[sorted(val_df.columns)]  # as read back from the exported validation file
    features = [c for c in train_df.columns if c != "target"]
    scaler = StandardScaler().fit(train_df[features].values)
    xt = scaler.transform(train_df[features].values).astype(np.float32)
    # BUG: positional .values of a frame whose columns are in another order
    xv = scaler.transform(val_df.drop(columns="target").values).astype(np.float32)
    yt, yv = train_df["target"].values, val_df["target"].values
    tr = DataLoader(TensorDataset(torch.tensor(xt), torch.tensor(yt)), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(torch.tensor(xv), torch.tensor(yv)), batch_size=256)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 15).fit(Net(), tr, va)
    report(NAME, cb.findings)
