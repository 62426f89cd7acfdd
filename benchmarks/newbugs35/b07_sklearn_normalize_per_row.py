"""b07 Lightning: raw breast_cancer features scaled with `sklearn.preprocessing.normalize(x)`
(each ROW to unit L2 norm) where `StandardScaler` (each column to mean 0, variance 1) was meant:
the area columns (~1e3) take almost the whole norm, so `worst area` is ~0.9 in every row and the
texture, smoothness and symmetry columns are squeezed to 1e-3..1e-5."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from _common import breast_cancer, log_dir, quiet, report, trainer
from sklearn.preprocessing import normalize
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "b07_sklearn_normalize_per_row"


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)

    def training_step(self, batch, i):
        x, y = batch
        loss = F.binary_cross_entropy_with_logits(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self(x)
        self.log("val_loss", F.binary_cross_entropy_with_logits(out, y))
        self.log("val_acc", ((out > 0).float() == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = breast_cancer(scale=False)
    x = normalize(x)  # BUG: per-row L2 normalisation, StandardScaler (per column) meant
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    tr = DataLoader(TensorDataset(x[:450], y[:450]), batch_size=16, shuffle=True)
    va = DataLoader(TensorDataset(x[450:], y[450:]), batch_size=128)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 20).fit(Net(), tr, va)
    report(NAME, cb.findings)
