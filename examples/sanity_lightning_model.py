"""A digits classifier in Lightning, ready for a pre-flight check before training.

    mlcheck sanity examples/sanity_lightning_model.py      # seconds: is it fit to train?
    python examples/sanity_lightning_model.py              # then train it

mlcheck imports this file to find the model, so training lives under
`if __name__ == "__main__":`. `mlcheck_target()` names what to check; without it mlcheck
would find the LightningModule and LightningDataModule classes by itself.
"""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitsData(pl.LightningDataModule):
    """sklearn's 8x8 digits (1797 images, 10 classes), pixels scaled to [0, 1], split 80/20."""

    def __init__(self, batch_size: int = 32, seed: int = 0):
        super().__init__()
        self.batch_size = batch_size
        self.seed = seed

    def setup(self, stage: str | None = None) -> None:
        x, y = load_digits(return_X_y=True)
        order = np.random.default_rng(self.seed).permutation(len(x))
        x = torch.tensor(x[order] / 16.0, dtype=torch.float32)
        y = torch.tensor(y[order], dtype=torch.long)
        cut = int(0.8 * len(x))
        self.train_set = TensorDataset(x[:cut], y[:cut])
        self.val_set = TensorDataset(x[cut:], y[cut:])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256)


class DigitsClassifier(pl.LightningModule):
    """A two-layer MLP trained with cross-entropy on logits and Adam."""

    def __init__(self, hidden: int = 128, lr: float = 1e-3):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", self.loss_fn(logits, y))
        self.log("val_accuracy", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def mlcheck_target() -> dict:
    """What `mlcheck sanity` checks: the model and its data (the optimizer comes from
    configure_optimizers)."""
    pl.seed_everything(0, verbose=False)
    return {"model": DigitsClassifier(), "train_data": DigitsData()}


def train(max_epochs: int = 20, max_steps: int = -1, **trainer_kwargs) -> pl.Trainer:
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_epochs=max_epochs, max_steps=max_steps, **trainer_kwargs)
    trainer.fit(DigitsClassifier(), datamodule=DigitsData())
    return trainer


if __name__ == "__main__":
    train()
