"""A layer breakpoint on a planted NaN layer: a custom layer computes log(0) from step 60 on;
the `nonfinite-origin` breakpoint names it, saves a snapshot of that step (the batch, the
layer's input, output and weights) and this script loads it back to look at what went in.
With --pdb the debugger opens where the breakpoint trips (`c` continues, `q` quits).

Run: python examples/layer_breakpoint.py [--pdb] [--log-dir runs/layer_breakpoint]
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck import Monitor
from mlcheck.breakpoints import Breakpoints
from mlcheck.integrations.torch_breakpoints import TorchBreakpoints
from mlcheck.integrations.torch_layers import LayerRecorder


class Scores(nn.Module):
    """The planted bug: log of a ReLU output, -inf wherever a unit is inactive (from step 60)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.log(torch.relu(x)) if self.calls > 60 else x


def main(pdb: bool = False, log_dir: str = "runs/layer_breakpoint") -> None:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), Scores(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    recorder = LayerRecorder(model)
    breakpoints = TorchBreakpoints(Breakpoints(["nonfinite-origin"], pdb=pdb))
    # the default checks, plus the breakpoint's (nonfinite-origin) where they lack it
    with Monitor(breakpoints.with_checks(), log_dir=log_dir) as monitor:
        for step in range(100):
            rows = torch.randint(0, len(x), (32,))
            xb, yb = x[rows], y[rows]
            with recorder.step(monitor, step, sample=step % 10 == 0, batch=(xb, yb), breakpoints=breakpoints):
                loss = nn.functional.cross_entropy(model(xb), yb)
                if not torch.isfinite(loss):
                    # re-run this batch on a copy of the model: which module produced it?
                    recorder.locate(
                        monitor,
                        step,
                        lambda m, xb=xb, yb=yb: nn.functional.cross_entropy(m(xb), yb),
                        batch=(xb, yb),
                        breakpoints=breakpoints,
                    )
                    break
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            monitor.log_step(step, loss=loss.item())
    for finding in monitor.findings:
        print(finding.format())
    for _trip, path in breakpoints.trips:
        snapshot = torch.load(path, weights_only=True)  # tensors, numbers and strings only
        inputs, output = snapshot["input"], snapshot["output"]
        print(f"snapshot {path}: layer {snapshot['layer']} at step {snapshot['step']}")
        print(f"  input  min {inputs.min():.3f} max {inputs.max():.3f} (zeros: {(inputs <= 0).float().mean():.0%})")
        print(f"  output -inf values: {int(torch.isneginf(output).sum())} of {output.numel()}")
        print(f"  batch: {tuple(snapshot['batch'][0].shape)} inputs, {tuple(snapshot['batch'][1].shape)} labels")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdb", action="store_true", help="open the debugger where the breakpoint trips")
    parser.add_argument("--log-dir", default="runs/layer_breakpoint")
    args = parser.parse_args()
    main(pdb=args.pdb, log_dir=args.log_dir)
