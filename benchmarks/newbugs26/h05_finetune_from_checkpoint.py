"""h05 Lightning (healthy): a digits MLP trained for 5 epochs on the first 700 rows and saved with
`trainer.save_checkpoint`, then loaded with `load_from_checkpoint(..., lr=1e-4)` and fine-tuned
on the next 700 rows for 8 epochs at that small rate (mlcheck watches the fine-tuning run)."""

import os

import lightning.pytorch as pl
import torch
from _common import digits, log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h05_finetune_from_checkpoint"


class Net(pl.LightningModule):
    def __init__(self, lr: float = 1e-3):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

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
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    x, y = digits()
    x, y = torch.tensor(x), torch.tensor(y)
    va = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)
    pre = pl.Trainer(
        max_epochs=5, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    pre.fit(Net(lr=1e-3), DataLoader(TensorDataset(x[:700], y[:700]), batch_size=32, shuffle=True), va)
    ckpt = os.path.join(log_dir(NAME), "pretrained.ckpt")
    os.makedirs(os.path.dirname(ckpt), exist_ok=True)
    pre.save_checkpoint(ckpt)

    model = Net.load_from_checkpoint(ckpt, lr=1e-4)
    tr = DataLoader(TensorDataset(x[700:1400], y[700:1400]), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(model, tr, va)
    report(NAME, cb.findings)
