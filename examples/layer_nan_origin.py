"""Finds a planted NaN layer: a custom layer computes log(0) from step 60 on, and mlcheck names
it (`nonfinite-origin`), with the ranges of its inputs and outputs, instead of every parameter
the NaN reached afterwards. Also shows the per-layer recorder on a plain torch loop.

Run: python examples/layer_nan_origin.py
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck import Monitor
from mlcheck.checks.base import default_checks
from mlcheck.integrations.torch_layers import LayerRecorder


class Scores(nn.Module):
    """The planted bug: log of a ReLU output, -inf wherever a unit is inactive (from step 60)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.log(torch.relu(x)) if self.calls > 60 else x


def main() -> None:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), Scores(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    recorder = LayerRecorder(model)
    # the default checks, the layer checks and the NaN origin among them
    with Monitor(default_checks(), log_dir="runs/layer_nan_origin") as monitor:
        for step in range(100):
            rows = torch.randint(0, len(x), (32,))
            xb, yb = x[rows], y[rows]
            with recorder.step(monitor, step, sample=step % 10 == 0):  # layer statistics, 1 step in 10
                loss = nn.functional.cross_entropy(model(xb), yb)
                if not torch.isfinite(loss):
                    # re-run this batch on a copy of the model: which module produced it?
                    recorder.locate(monitor, step, lambda m, xb=xb, yb=yb: nn.functional.cross_entropy(m(xb), yb))
                    break
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            monitor.log_step(step, loss=loss.item())
    for finding in monitor.findings:
        print(finding.format())


if __name__ == "__main__":
    main()
