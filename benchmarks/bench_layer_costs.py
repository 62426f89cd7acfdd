"""What the per-layer checks cost, part by part, step by step (finer than whole-run ratios).

The whole-run paired ratios of `bench_overhead_lightning.py --layers` need a quiet machine to
resolve a few percent; on a shared one their spread is +-10%. This benchmark times the parts in
one process, interleaving the variants step by step (drift cancels within microseconds), on the
digits MLP and CNN of the overhead benchmark:

- `plain`: one training step (forward, backward, Adam step) with nothing attached;
- `watch`: the same plus the NaN-origin watch of every step (the loss read, which the live core
  then takes instead of reading it later, and one float64 sum of one gradient);
- `sampled`: a recorded step: hooks attached, the step, statistics gathered in one transfer,
  hooks removed, then handed to the layer checks and the TensorBoard sink (`Monitor.log_layers`).

Times are the process's CPU time per step (medians; the wall-clock medians beside them).
The cost at the default sampling (every 25 steps) is `(watch - plain) + (sampled - plain) / 25`
per step, shown against the plain step and against a step of a Lightning fit without a callback
(`--lightning-step-ms`, measured by `bench_overhead_lightning.py`: its `median_without_s` over
its steps), since the overhead targets are ratios of Lightning runs.

Run: .venv/bin/python benchmarks/bench_layer_costs.py [--steps 400] [--every 25] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from bench_overhead_lightning import LAYER_IDS, Classifier, digits_loaders  # noqa: E402

from mlcheck import Monitor  # noqa: E402
from mlcheck.checks.base import registry  # noqa: E402
from mlcheck.integrations.torch_layers import LayerRecorder, sentinel_gradient_finite  # noqa: E402


def _batches(kind: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    train, _ = digits_loaders(image=kind.endswith("cnn"), kind=kind)
    return [b for b in train if len(b[0]) == 32]


def measure(kind: str, steps: int, every: int) -> dict:
    torch.manual_seed(0)
    net = Classifier(kind).net
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batches = _batches(kind)
    recorder = LayerRecorder(net)
    times: dict[str, list[float]] = {"plain": [], "watch": [], "sampled": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    with tempfile.TemporaryDirectory() as root:
        monitor = Monitor([registry()[i]() for i in LAYER_IDS], log_dir=root)

        def step(x, y, variant: str, n: int) -> None:
            if variant == "sampled":
                recorder.start()
            loss = nn.functional.cross_entropy(net(x), y)
            if variant == "watch":
                math.isfinite(loss.detach().item())
            opt.zero_grad()
            loss.backward()
            if variant == "watch":
                sentinel_gradient_finite(opt)
            opt.step()
            if variant == "sampled":
                monitor.log_layers(recorder.finish(n))

        for n in range(20):  # warm-up
            for variant in times:
                step(*batches[n % len(batches)], variant, n)
        for n in range(steps):
            x, y = batches[n % len(batches)]
            order = list(times) if n % 2 == 0 else list(reversed(times))
            for variant in order:
                start, start_cpu = time.perf_counter(), time.process_time()
                step(x, y, variant, n)
                cpu[variant].append(time.process_time() - start_cpu)
                times[variant].append(time.perf_counter() - start)
        monitor.close()
    wall = {k: round(statistics.median(v) * 1e6, 1) for k, v in times.items()}
    # CPU time of the process (all its threads): what the parts cost, without the waits for a
    # core that a shared machine adds to wall time
    med = {k: statistics.median(v) * 1e6 for k, v in cpu.items()}
    iqr = {k: [round(q * 1e6, 1) for q in statistics.quantiles(v, n=4)[::2]] for k, v in cpu.items()}
    watch = med["watch"] - med["plain"]
    sampled = med["sampled"] - med["plain"]
    mean = {k: statistics.fmean(v) * 1e6 for k, v in cpu.items()}  # batched writes: 1 sampled step in 8
    return {
        "mean_cpu_us": {k: round(v, 1) for k, v in mean.items()},
        "per_step_us_at_default_from_means": round(
            mean["watch"] - mean["plain"] + (mean["sampled"] - mean["plain"]) / every, 1
        ),
        "median_cpu_us": {k: round(v, 1) for k, v in med.items()},
        "iqr_cpu_us": iqr,
        "median_wall_us": wall,
        "watch_us_per_step": round(watch, 1),
        "sampled_extra_us": round(sampled, 1),
        "every_n_steps": every,
        "per_step_us_at_default": round(watch + sampled / every, 1),
        "share_of_plain_step": round((watch + sampled / every) / med["plain"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=25, help="sampling (every_n_steps)")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument(
        "--lightning-step-ms",
        default="",
        help="model=ms of a Lightning step without a callback, e.g. mlp=3.1,cnn=5.2 (for the share of it)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    lightning = dict(item.split("=") for item in args.lightning_step_ms.split(",") if item)
    report = {}
    for kind in args.models.split(","):
        r = measure(kind, args.steps, args.every)
        if kind in lightning:
            r["share_of_lightning_step"] = round(r["per_step_us_at_default"] / (1000 * float(lightning[kind])), 4)
        report[kind] = r
        if not args.json:
            print(kind, json.dumps(r), flush=True)
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
