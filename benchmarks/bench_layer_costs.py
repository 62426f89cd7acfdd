"""What the per-layer checks cost, part by part, step by step (finer than whole-run ratios).

The whole-run paired ratios of `bench_overhead_lightning.py --layers` need a quiet machine to
resolve a few percent; on a shared one their spread is +-10%. This benchmark times the parts in
one process, interleaving the variants step by step (drift cancels within microseconds), on the
digits MLP and CNN of the overhead benchmark:

- `plain`: one training step (forward, backward, Adam step) with nothing attached; what the
  Lightning callback adds to it on the steps it does not sample is no torch operation at all
  (the NaN origin reads the losses with the live core's, every 16 steps) and a list append;
- `sampled`: a recorded step: hooks attached, the step, statistics gathered in one transfer,
  hooks removed, then handed to the layer checks and the TensorBoard sink (`Monitor.log_layers`);
  the recorder keeps the copy of the weights it took (`keep_weights`, as the callback does on
  the CPU for the NaN origin).

Times are the process's CPU time per step (medians and means; the wall-clock medians beside
them), and the torch operations each variant dispatches (counted with `TorchDispatchMode`,
independent of the machine's load). The cost at the default sampling (every 25 steps) is
`(sampled - plain) / 25` per step, shown against the plain step and against a step of a
Lightning fit without a callback (`--lightning-step-ms`, measured by `bench_overhead_lightning.py`:
its `median_without_s` over its steps), since the overhead targets are ratios of Lightning runs.

`--lightning`: instead, whole Lightning fits paired as in `bench_overhead_lightning.py`
(interleaved, alternating order, pinned to one CPU): the defaults plus the six layer checks
against the defaults alone, wall-clock and CPU-time ratios with their quartiles; its
`--reps` and `--epochs`. Both callbacks get their checks as `checks=[...]`: Lightning reads a
callback's `state_key` at every hook call, and with `checks=` given the callback builds it
from the checks each time (~0.5 ms a step here), which `bench_overhead_lightning.py --layers`
charged to the layer checks. Beside the ratios, the layer machinery's own CPU time in one fit
(the recorder's start and finish, its forward and gradient hooks, the layer checks and the
TensorBoard sink, the NaN-origin re-runs) as a share of the CPU time of a fit without it: what
the ratios try to resolve, measured where the load cannot blur it.

`--sink`: only the TensorBoard sink's CPU time per sampled step (40 sampled steps' layer
statistics written and the file closed).

`--split`: where a sampled step's cost goes, part by part, in the thread CPU time of each
part's calls (the minimum over `--steps` sampled steps, interleaved with plain ones; pin it with
`taskset -c 0` and OMP_NUM_THREADS=1): hook installation (the global forward hook) and the copy
of the weights for the update ratio (`start`), the per-module reductions inside the forward hook
(`forward_stats`; the hook's own bookkeeping beside it), the forward pass's extra time beyond
the hook (torch's hooked call path), the fused norms, the gather and host transfer, the
assembly of the statistics, hook removal, the layer checks' judgement and the TensorBoard sink.
The recorder is set up as the Lightning callback sets it up (gradients read in `finish`, the
weights of the last finite step kept).

Run: .venv/bin/python benchmarks/bench_layer_costs.py [--steps 400] [--every 25] [--json]
     .venv/bin/python benchmarks/bench_layer_costs.py --sink
     .venv/bin/python benchmarks/bench_layer_costs.py --lightning [--reps 9] [--epochs 3]
     OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/bench_layer_costs.py --split --models cnn
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).parent))
from bench_overhead_lightning import LAYER_IDS, Classifier, digits_loaders, paired_ratio  # noqa: E402

from mlcheck import Monitor  # noqa: E402
from mlcheck.checks.base import registry  # noqa: E402
from mlcheck.integrations.torch_layers import LayerRecorder  # noqa: E402

VARIANTS = ("plain", "sampled")


class _OpCount(TorchDispatchMode):
    """Counts the aten operations dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def _batches(kind: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    train, _ = digits_loaders(image=kind.endswith("cnn"), kind=kind)
    return [b for b in train if len(b[0]) == 32]


def measure(kind: str, steps: int, every: int) -> dict:
    torch.manual_seed(0)
    net = Classifier(kind).net
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batches = _batches(kind)
    recorder = LayerRecorder(net, keep_weights=True)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    ops: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as root:
        monitor = Monitor([registry()[i]() for i in LAYER_IDS], log_dir=root)

        def step(x, y, variant: str, n: int) -> None:
            if variant == "sampled":
                recorder.start()
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if variant == "sampled":
                monitor.log_layers(recorder.finish(n))

        for n in range(20):  # warm-up
            for variant in VARIANTS:
                step(*batches[n % len(batches)], variant, n)
        for variant in VARIANTS:
            with _OpCount() as count:
                step(*batches[0], variant, 0)
            ops[variant] = sum(count.ops.values())
        for n in range(steps):
            x, y = batches[n % len(batches)]
            order = VARIANTS if n % 2 == 0 else VARIANTS[::-1]
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
    mean = {k: statistics.fmean(v) * 1e6 for k, v in cpu.items()}  # batched writes: 1 sampled step in 8
    sampled = med["sampled"] - med["plain"]
    return {
        "ops_per_step": ops,
        "ops_per_step_at_default": round((ops["sampled"] - ops["plain"]) / every, 1),
        "mean_cpu_us": {k: round(v, 1) for k, v in mean.items()},
        "per_step_us_at_default_from_means": round((mean["sampled"] - mean["plain"]) / every, 1),
        "median_cpu_us": {k: round(v, 1) for k, v in med.items()},
        "iqr_cpu_us": iqr,
        "median_wall_us": wall,
        "sampled_extra_us": round(sampled, 1),
        "every_n_steps": every,
        "per_step_us_at_default": round(sampled / every, 1),
        "share_of_plain_step": round(sampled / every / med["plain"], 4),
    }


def _callback(layers: bool, every: int):
    from mlcheck.checks.base import default_checks
    from mlcheck.integrations.lightning import MLCheckCallback

    checks = [c for c in default_checks() if c.id not in LAYER_IDS]
    checks += [registry()[i]() for i in LAYER_IDS] if layers else []
    return MLCheckCallback(checks=checks, overfit_batch=False, every_n_steps=every)


def layer_cpu_share(kind: str, epochs: int, every: int, reps: int = 3) -> dict:
    """CPU seconds the layer machinery spends in a fit, against a fit without it (medians)."""
    from unittest import mock

    from bench_overhead_lightning import train_once

    from mlcheck.integrations.lightning import MLCheckCallback

    spent: Counter[str] = Counter()

    def timed(part, fn):
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[part] += time.process_time() - start

        return wrapper

    def timed_factory(part, make):  # the hooks the recorder builds
        return lambda *args: timed(part, make(*args))

    patches = [
        mock.patch.object(LayerRecorder, "start", timed("start", LayerRecorder.start)),
        mock.patch.object(LayerRecorder, "finish", timed("finish", LayerRecorder.finish)),
        mock.patch.object(LayerRecorder, "_on_forward", timed("forward_hooks", LayerRecorder._on_forward)),
        mock.patch.object(LayerRecorder, "_grad_hook", timed_factory("grad_hooks", LayerRecorder._grad_hook)),
        mock.patch.object(Monitor, "log_layers", timed("checks_and_sinks", Monitor.log_layers)),
        mock.patch.object(
            MLCheckCallback, "_locate_nonfinite", timed("nonfinite_origin", MLCheckCallback._locate_nonfinite)
        ),
    ]
    shares, layer_s, base_s, parts = [], [], [], []
    with tempfile.TemporaryDirectory() as root:
        train_once(kind, 1, _callback(True, every), root)  # warm-up
        for _ in range(reps):
            base_s.append(train_once(kind, epochs, _callback(False, every), root)[1])
            spent.clear()
            for p in patches:
                p.start()
            try:
                train_once(kind, epochs, _callback(True, every), root)
            finally:
                for p in patches:
                    p.stop()
            layer_s.append(sum(spent.values()))
            shares.append(layer_s[-1] / base_s[-1])
            parts.append(dict(spent))
    return {
        "layer_cpu_s": round(statistics.median(layer_s), 4),
        "fit_cpu_s_without": round(statistics.median(base_s), 3),
        "layer_cpu_share": round(statistics.median(shares), 4),
        "shares": [round(x, 4) for x in shares],
        "layer_cpu_ms_by_part": {k: round(statistics.median(p.get(k, 0.0) for p in parts) * 1e3, 2) for k in spent},
    }


def lightning_pairs(kind: str, epochs: int, reps: int, every: int) -> dict:
    """Whole fits: the layer checks added to the defaults against the defaults alone."""
    pair = paired_ratio(kind, epochs, reps, lambda: _callback(True, every), make_base=lambda: _callback(False, every))
    cpu = pair["cpu_ratios"]
    q1, _, q3 = statistics.quantiles(cpu, n=4) if len(cpu) > 1 else (cpu[0],) * 3
    return {
        "epochs": epochs,
        "reps": reps,
        "every_n_steps": every,
        "wall_ratio": round(pair["median_ratio"], 4),
        "wall_iqr": pair["iqr_ratio"],
        "cpu_ratio": round(pair["median_cpu_ratio"], 4),
        "cpu_iqr": [round(q1, 4), round(q3, 4)],
        "wall_ratios": pair["ratios"],
        "cpu_ratios": cpu,
        "median_defaults_s": round(pair["median_without_s"], 3),
        **layer_cpu_share(kind, epochs, every),
    }


def sink_cost(kind: str, steps: int = 40, reps: int = 5) -> dict:
    """`--sink`: the TensorBoard sink's CPU time for `steps` sampled steps' layer statistics
    (`TensorBoardSink.layers`, then `close`: every byte on disk), the median of `reps`."""
    from mlcheck.sinks.tensorboard import TensorBoardSink

    torch.manual_seed(0)
    model = Classifier(kind)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    recorder, observations = LayerRecorder(model), []
    for i, (x, y) in zip(range(steps), _cycle(_batches(kind))):
        recorder.start()
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        observations.append(recorder.finish(step=25 * i))
    times = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as root:
            sink = TensorBoardSink(root)
            sink.scalars(0, {"warm": 0.0})  # the file opened outside the timing
            start = time.process_time()
            for observation in observations:
                sink.layers(observation)
            sink.close()
            times.append(time.process_time() - start)
    per_step = statistics.median(times) / steps
    return {"sampled_steps": steps, "sink_cpu_us_per_sampled_step": round(1e6 * per_step, 1)}


def split_costs(kind: str, steps: int) -> dict:
    """`--split`: a sampled step's parts in thread CPU microseconds (minimum over `steps`)."""
    from unittest import mock

    import mlcheck.integrations.torch_layers as torch_layers
    from mlcheck.sinks.tensorboard import TensorBoardSink

    spent: Counter[str] = Counter()

    def timed(part, fn):
        def wrapper(*args, **kwargs):
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[part] += time.thread_time() - start

        return wrapper

    register = nn.modules.module.register_module_forward_hook
    patches = [
        mock.patch.object(LayerRecorder, "start", timed("start", LayerRecorder.start)),
        mock.patch.object(nn.modules.module, "register_module_forward_hook", timed("start.install_hook", register)),
        mock.patch.object(LayerRecorder, "_on_forward", timed("forward_hook", LayerRecorder._on_forward)),
        mock.patch.object(torch_layers, "_forward_stats", timed("forward_hook.stats", torch_layers._forward_stats)),
        mock.patch.object(
            LayerRecorder, "_take_histogram", timed("forward_hook.histogram", LayerRecorder._take_histogram)
        ),
        mock.patch.object(LayerRecorder, "finish", timed("finish", LayerRecorder.finish)),
        mock.patch.object(LayerRecorder, "remove_hooks", timed("finish.remove_hooks", LayerRecorder.remove_hooks)),
        mock.patch.object(torch_layers, "_norms", timed("finish.norms", torch_layers._norms)),
        mock.patch.object(torch_layers, "_gather", timed("finish.gather_transfer", torch_layers._gather)),
        mock.patch.object(LayerRecorder, "_observation", timed("finish.assemble", LayerRecorder._observation)),
        mock.patch.object(Monitor, "_dispatch", timed("checks", Monitor._dispatch)),
        mock.patch.object(TensorBoardSink, "layers", timed("tensorboard", TensorBoardSink.layers)),
    ]
    torch.manual_seed(0)
    net = Classifier(kind).net
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batches = _batches(kind)
    recorder = LayerRecorder(net, keep_weights=True, grad_hooks=False)  # as the Lightning callback
    rows: dict[bool, list[Counter[str]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as root:
        monitor = Monitor([registry()[i]() for i in LAYER_IDS], log_dir=root)
        for p in patches:
            p.start()
        try:
            for n in range(steps + 20):
                for sampled in (True, False) if n % 2 else (False, True):
                    x, y = batches[n % len(batches)]
                    spent.clear()
                    if sampled:
                        recorder.start()
                    start = time.thread_time()
                    loss = nn.functional.cross_entropy(net(x), y)
                    spent["forward"] += time.thread_time() - start
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    if sampled:
                        monitor.log_layers(recorder.finish(25 * n))
                    if n >= 20:  # after the warm-up
                        rows[sampled].append(Counter(spent))
        finally:
            for p in patches:
                p.stop()
            monitor.close()
    low = {k: min(r.get(k, 0.0) for r in rows[True]) for k in set().union(*rows[True])}
    means = {k: statistics.fmean(r.get(k, 0.0) for r in rows[True]) for k in low}
    plain_forward = min(r["forward"] for r in rows[False])
    low["forward.hooked_path"] = low["forward"] - plain_forward - low["forward_hook"]
    means["forward.hooked_path"] = means["forward"] - statistics.fmean(r["forward"] for r in rows[False])
    means["forward.hooked_path"] -= means["forward_hook"]
    return {
        "sampled_steps": steps,
        "min_us": {k: round(v * 1e6, 1) for k, v in sorted(low.items())},
        "mean_us": {k: round(v * 1e6, 1) for k, v in sorted(means.items())},
        "plain_forward_min_us": round(plain_forward * 1e6, 1),
    }


def _cycle(items: list) -> Any:
    while True:
        yield from items


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
    parser.add_argument("--lightning", action="store_true", help="paired whole Lightning fits instead")
    parser.add_argument("--reps", type=int, default=9, help="pairs of fits (--lightning)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each fit (--lightning)")
    parser.add_argument("--sink", action="store_true", help="only the TensorBoard sink's cost per sampled step")
    parser.add_argument("--split", action="store_true", help="a sampled step's cost, part by part (thread CPU)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    lightning = dict(item.split("=") for item in args.lightning_step_ms.split(",") if item)
    report = {"load_average": os.getloadavg()} if hasattr(os, "getloadavg") else {}
    for kind in args.models.split(","):
        if args.split:
            report[kind] = split_costs(kind, args.steps)
            print(kind, json.dumps(report[kind]), flush=True)
            continue
        if args.sink:
            report[kind] = sink_cost(kind)
            print(kind, json.dumps(report[kind]), flush=True)
            continue
        if args.lightning:
            report[kind] = lightning_pairs(kind, args.epochs, args.reps, args.every)
            if not args.json:
                print(kind, json.dumps(report[kind]), flush=True)
            continue
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
