"""A hand-written PyTorch training loop watched by `mlcheck.Monitor`.

Run:  python examples/plain_loop.py [--lr 0.001]
Try `--lr 3` to see mlcheck catch a learning rate that is far too high.
TensorBoard:  tensorboard --logdir runs/plain_loop
Afterwards:   mlcheck analyze runs/plain_loop   (Monitor keeps the curves it was given and its findings)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck import Monitor


def main(lr: float = 1e-3, epochs: int = 10, log_dir: str = "runs/plain_loop") -> Monitor:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, val = order[:1400], order[1400:]
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    xv, yv = torch.from_numpy(x[val]), torch.from_numpy(y[val])

    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    steps_per_epoch = len(train) // 32

    monitor = Monitor(log_dir=log_dir)
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
    args = parser.parse_args()
    m = main(args.lr, args.epochs)
    for f in m.findings:
        print(f.format())
    print(f"{len(m.findings)} finding(s). TensorBoard: tensorboard --logdir runs/plain_loop")
