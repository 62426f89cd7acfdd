"""A clean PyTorch Lightning run on scikit-learn's digits with mlcheck watching.

    python examples/lightning_digits.py
    tensorboard --logdir lightning_logs

A healthy run raises no warning; the script prints what mlcheck found (usually nothing, or an
INFO note) and where TensorBoard finds the run, with mlcheck's markers beside the loss curves.
Runs in seconds on a CPU. Works the same with `import pytorch_lightning as L`.
"""

from __future__ import annotations

import lightning.pytorch as L
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck.integrations.lightning import MLCheckCallback


class DigitsClassifier(L.LightningModule):
    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        loss = nn.functional.cross_entropy(out, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        self.log("train_acc", (out.argmax(1) == y).float().mean(), on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def digits_loaders(batch_size: int = 32):
    """Train/validation loaders over the 1,797 8x8 digits, scaled to [0, 1] and split 80/20."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order]), torch.tensor(y[order])
    cut = int(0.8 * len(x))
    train = torch.utils.data.TensorDataset(x[:cut], y[:cut])
    val = torch.utils.data.TensorDataset(x[cut:], y[cut:])
    return (
        torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True),
        torch.utils.data.DataLoader(val, batch_size=256),
    )


if __name__ == "__main__":
    L.seed_everything(0)
    train, val = digits_loaders()
    cb = MLCheckCallback()  # every default check, overfit-a-batch at the start
    trainer = L.Trainer(max_epochs=10, callbacks=[cb], log_every_n_steps=10, enable_progress_bar=False)
    trainer.fit(DigitsClassifier(), train, val)

    print()
    if cb.findings:
        for finding in cb.findings:
            print(finding.format())
    else:
        print("mlcheck: no findings - the run looks healthy.")
    print(f"TensorBoard run: {cb.resolved_log_dir}")
    print(f"Open it with:    tensorboard --logdir {cb.resolved_log_dir.parent}")
