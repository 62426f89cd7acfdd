"""Where the Lightning callback's overhead goes: paired CPU ratios of a digits fit with the
defaults, then with parts switched off one at a time (the layer checks, the non-finite origin
watch, the first full pass, every check but one cheap one, the log directory).

    OMP_NUM_THREADS=1 python benchmarks/bench_overhead_ablation.py --model mlp --epochs 10 --reps 3

Each variant is paired with a plain fit run just before it, on one pinned core with one torch
thread; the medians and ranges of the ratios are printed. overfit-a-batch is off throughout.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_overhead_lightning import train_once  # noqa: E402

from mlcheck.checks.base import registry  # noqa: E402
from mlcheck.integrations.lightning import MLCheckCallback  # noqa: E402

LAYERS = [i for i, c in registry().items() if c.family == "layers"]


def variants() -> dict:
    off = dict(overfit_batch=False)
    return {
        "defaults": lambda: MLCheckCallback(**off),
        "without the layer checks": lambda: MLCheckCallback(**off, suppress=LAYERS, nonfinite_origin=False),
        "also without the first full pass": lambda: MLCheckCallback(
            **off, suppress=LAYERS, nonfinite_origin=False, hash_epochs=0
        ),
        "one cheap check (the adapter)": lambda: MLCheckCallback(
            **off, checks=["lr-schedule"], nonfinite_origin=False, hash_epochs=0
        ),
        "the adapter, no log directory": lambda: MLCheckCallback(
            **off, checks=["lr-schedule"], nonfinite_origin=False, hash_epochs=0, log_dir=False
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn", "mnist-mlp", "mnist-cnn"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0, help="the core to pin to")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    ratios: dict[str, list[float]] = {k: [] for k in variants()}
    with tempfile.TemporaryDirectory() as root:
        train_once(args.model, args.epochs, None, root)  # warm-up
        for _ in range(args.reps):
            for name, make in variants().items():
                base = train_once(args.model, args.epochs, None, root)[1]
                ratios[name].append(train_once(args.model, args.epochs, make(), root)[1] / base - 1)
    print(f"{args.model}, {args.epochs} epochs of digits, CPU time against a plain fit, {args.reps} pairs each")
    for name, values in ratios.items():
        lo, hi = 100 * min(values), 100 * max(values)
        print(f"  {name:34s} {100 * statistics.median(values):+6.1f}%  [{lo:+.1f}, {hi:+.1f}]")


if __name__ == "__main__":
    main()
