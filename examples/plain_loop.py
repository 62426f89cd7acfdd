"""A hand-written PyTorch training loop watched by `mlcheck.Monitor`.

Run:  python examples/plain_loop.py [--lr 0.001] [--no-zero-grad]
Try `--lr 3` to see mlcheck catch a learning rate that is far too high, and `--no-zero-grad` to
see it name a forgotten `optimizer.zero_grad()` (`Monitor(optimizer=...)` measures the gradients).
TensorBoard:  tensorboard --logdir runs/plain_loop
Afterwards:   mlcheck analyze runs/plain_loop   (Monitor keeps the curves it was given and its findings)
Before it:    mlcheck sanity examples/plain_loop.py   (model and loss bugs, which Monitor cannot see:
              it reads `mlcheck_target()` below)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Monitor


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits, pixels scaled to [0, 1]: 1400 training and 397 validation images."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    train, val = order[:1400], order[1400:]
    return torch.from_numpy(x[train]), torch.from_numpy(y[train]), torch.from_numpy(x[val]), torch.from_numpy(y[val])


def build(lr: float = 1e-3) -> tuple[nn.Module, torch.optim.Optimizer, nn.Module]:
    """The model, its optimizer and the loss."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    return model, torch.optim.Adam(model.parameters(), lr=lr), nn.CrossEntropyLoss()


def mlcheck_target() -> dict:
    """What `mlcheck sanity examples/plain_loop.py` checks before the run: the same model, loss,
    optimizer and data as the loop below."""
    xt, yt, xv, yv = digits()
    model, optimizer, loss_fn = build()
    return {
        "model": model,
        "train_data": DataLoader(TensorDataset(xt, yt), batch_size=32, shuffle=True),
        "val_data": DataLoader(TensorDataset(xv, yv), batch_size=128),
        "loss": loss_fn,
        "optimizer": optimizer,
    }


def main(lr: float = 1e-3, epochs: int = 10, log_dir: str = "runs/plain_loop", zero_grad: bool = True) -> Monitor:
    xt, yt, xv, yv = digits()
    model, optimizer, loss_fn = build(lr)
    steps_per_epoch = len(xt) // 32

    # optimizer=: a hook on optimizer.step() measures the gradients on a few steps (stale-gradients)
    monitor = Monitor(log_dir=log_dir, optimizer=optimizer)
    monitor.run.info.total_steps = epochs * steps_per_epoch
    monitor.run.info.num_classes = 10
    monitor.run.info.task = "classification"
    step = 0
    with monitor:
        for epoch in range(epochs):
            perm = torch.randperm(len(xt))
            losses = []
            for i in range(steps_per_epoch):
                idx = perm[i * 32 : (i + 1) * 32]
                if step % monitor.every_n_steps == 0:
                    monitor.log_batch(xt[idx], yt[idx], split="train", step=step)
                loss = loss_fn(model(xt[idx]), yt[idx])
                if zero_grad:
                    optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                monitor.log_step(step, loss=loss.item(), lr=optimizer.param_groups[0]["lr"], epoch=epoch)
                losses.append(loss.item())
                step += 1
            with torch.no_grad():
                logits = model(xv)
                val_loss = loss_fn(logits, yv).item()
                val_acc = (logits.argmax(1) == yv).float().mean().item()
            monitor.log_epoch(
                epoch,
                step=step,
                train_loss=float(np.mean(losses)),
                val_loss=val_loss,
                val_metrics={"accuracy": val_acc},
            )
            if monitor.should_stop:
                break
    return monitor


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--no-zero-grad", action="store_true", help="plant the bug: gradients never zeroed")
    args = parser.parse_args()
    m = main(args.lr, args.epochs, zero_grad=not args.no_zero_grad)
    for f in m.findings:
        print(f.format())
    print(f"{len(m.findings)} finding(s). TensorBoard: tensorboard --logdir runs/plain_loop")
