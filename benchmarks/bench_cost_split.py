"""Where the Lightning callback's time goes: per run, per epoch and per step (issue 13).

Every hook of `MLCheckCallback` and every check's hook method is wrapped in a thread-CPU timer
(`time.thread_time`, so other jobs on a shared machine do not count), each (hook, epoch) and
each (check, hook) summed over a fit, and the minimum of each sum over `--reps` identical seeded
fits kept (load spikes drop out). Pinned to one core, torch and OpenMP on one thread,
overfit-a-batch off (measured apart, DESIGN), every other default on.

The split:
- per RUN: `on_fit_start` (log directory, sinks, checks, model scan, layer recorder),
  `on_train_start`, the first batch's inspection (`_first_batch_start`), `on_fit_end` (final
  verdicts, files, writers closed);
- per EPOCH: the epoch and validation hooks, plus the first epoch's training batches beyond the
  per-step rate of the later epochs (the first full pass);
- per STEP: the training-batch hooks of epochs after the first, per step.
Inside them, the parts of the live core, the monitor, the layer recorder and the parameter scan
are timed per epoch, and each check's hooks over the fit (a check's findings are listed inside
its timer: a generator does its work there). The timers add a few microseconds a call. A fit with
the callback and no timers, and a plain one, give the process CPU it adds (readable on a quiet
machine only).

    OMP_NUM_THREADS=1 python benchmarks/bench_cost_split.py --model mlp --epochs 3 --reps 5
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_overhead_lightning import train_once  # noqa: E402

from mlcheck.integrations.lightning import MLCheckCallback  # noqa: E402

_CHECK_HOOKS = ("on_step", "on_epoch", "on_batch", "on_end", "on_layers", "on_samples")
_STEP_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)
_RUN_HOOKS = ("on_fit_start", "on_train_start", "on_fit_end", "on_exception", "_first_batch_start")


def _timed(table: collections.Counter, key_of, fn, materialise: bool = False):
    """`fn` with its thread CPU time added to `table[key_of()]`; `materialise`: a check's hook,
    whose findings may come from a generator that does its work only when the monitor lists it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            out = fn(*args, **kwargs)
            return list(out or ()) if materialise else out
        finally:
            table[key_of()] += time.thread_time() - start

    return wrapper


def instrumented_fit(kind: str, epochs: int, root: str) -> dict:
    """One fit with every hook and every check timed; returns the sums in seconds."""
    cb = MLCheckCallback(overfit_batch=False)
    hooks: collections.Counter = collections.Counter()
    checks: collections.Counter = collections.Counter()
    parts: collections.Counter = collections.Counter()
    epoch = lambda: getattr(cb, "_epoch", 0) if cb.live is not None else 0  # noqa: E731
    for name in dir(cb):
        if name.startswith("on_") or name == "_first_batch_start":
            fn = getattr(cb, name)
            if callable(fn) and (name in _RUN_HOOKS or name.startswith("on_")):
                setattr(cb, name, _timed(hooks, lambda n=name: (n, epoch()), fn))

    def wrap_checks() -> None:
        for owner, names in (
            ("live", ("flush_steps", "observe_batch", "end_epoch", "observe_layers", "close", "hold_step")),
            ("monitor", ("log_batch", "log_epoch", "log_layers", "close", "_dispatch", "_defer", "_flush_deferred")),
            ("_layers", ("start", "finish")),
            ("_scan", ("before_step", "gradients", "after_step", "gradient_stats")),
        ):
            obj = cb.live if owner == "live" else cb.live.monitor if owner == "monitor" else getattr(cb, owner)
            for name in names:
                if obj is not None and hasattr(obj, name):
                    key = lambda n=f"{owner}.{name}": (n, epoch())  # noqa: E731
                    setattr(obj, name, _timed(parts, key, getattr(obj, name)))
        for check in cb.live.monitor.checks:
            for hook in _CHECK_HOOKS:
                if type(check).implements(hook):
                    timed = _timed(checks, lambda c=check.id, h=hook: (c, h), getattr(check, hook), materialise=True)
                    setattr(check, hook, timed)

    started = cb.on_fit_start

    def fit_start(trainer, module):
        started(trainer, module)
        wrap_checks()

    cb.on_fit_start = fit_start
    _, total_cpu = train_once(kind, epochs, cb, root)
    steps = cb.live.monitor.run.train_loss.total if cb.live is not None else 0
    return {"hooks": dict(hooks), "checks": dict(checks), "parts": dict(parts), "steps": steps, "cpu": total_cpu}


def split(fits: list[dict], epochs: int) -> dict:
    """Minimum of each sum over the fits, then the run / epoch / step split."""
    keys = set().union(*(f["hooks"] for f in fits))
    hooks = {k: min(f["hooks"].get(k, 0.0) for f in fits) for k in keys}
    ckeys = set().union(*(f["checks"] for f in fits))
    per_check = {k: min(f["checks"].get(k, 0.0) for f in fits) for k in ckeys}
    pkeys = set().union(*(f["parts"] for f in fits))
    parts = {k: min(f["parts"].get(k, 0.0) for f in fits) for k in pkeys}
    steps = fits[0]["steps"]
    per_epoch_steps = steps / epochs
    run = sum(v for (h, _), v in hooks.items() if h in _RUN_HOOKS)
    first = hooks.get(("_first_batch_start", 0), 0.0)
    step_later = sum(v for (h, e), v in hooks.items() if h in _STEP_HOOKS and e > 0)
    step_first = sum(v for (h, e), v in hooks.items() if h in _STEP_HOOKS and e == 0) - first
    rate = step_later / (steps - per_epoch_steps) if epochs > 1 else step_first / steps
    full_pass = step_first - rate * per_epoch_steps
    epoch_hooks = sum(v for (h, _), v in hooks.items() if h not in _RUN_HOOKS and h not in _STEP_HOOKS)
    by_hook: collections.Counter = collections.Counter()
    for (h, _), v in hooks.items():
        by_hook[h] += v
    return {
        "steps": steps,
        "plain_cpu_s": None,
        "run_ms": 1e3 * run,
        "run_detail_ms": {h: round(1e3 * by_hook[h], 2) for h in _RUN_HOOKS if by_hook[h]},
        "epoch_ms": 1e3 * (epoch_hooks + full_pass),
        "epoch_detail_ms": {
            "first pass beyond the step rate (epoch 0)": round(1e3 * full_pass, 2),
            **{h: round(1e3 * by_hook[h], 2) for h in by_hook if h not in _RUN_HOOKS and h not in _STEP_HOOKS},
        },
        "step_us": 1e6 * rate,
        "step_ms_total": 1e3 * rate * steps,
        "step_detail_us": {
            h: round(1e6 * sum(v for (hh, e), v in hooks.items() if hh == h and e > 0) / (steps - per_epoch_steps), 1)
            for h in _STEP_HOOKS
            if epochs > 1
        },
        "parts_ms_by_epoch": {
            name: [round(1e3 * parts.get((name, e), 0.0), 2) for e in range(epochs)]
            for name in sorted({n for n, _ in pkeys})
        },
        "hooks_ms": 1e3 * sum(v for (h, _), v in hooks.items() if h != "_first_batch_start"),
        "checks_ms": {f"{c}.{h}": round(1e3 * v, 2) for (c, h), v in sorted(per_check.items(), key=lambda kv: -kv[1])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn", "mnist-mlp", "mnist-cnn"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0, help="the core to pin to")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    fits, plain, watched = [], [], []
    with tempfile.TemporaryDirectory() as root:
        train_once(args.model, args.epochs, None, root)  # warm-up: the framework's imports, first calls
        cold = instrumented_fit(args.model, args.epochs, root)  # mlcheck's lazy imports land here
        for _ in range(args.reps):
            gc.collect()
            plain.append(train_once(args.model, args.epochs, None, root)[1])
            gc.collect()
            watched.append(train_once(args.model, args.epochs, MLCheckCallback(overfit_batch=False), root)[1])
            gc.collect()
            fits.append(instrumented_fit(args.model, args.epochs, root))
    result = split(fits, args.epochs)
    result["plain_cpu_s"] = min(plain)
    result["watched_cpu_s"] = min(watched)  # no timers: what the fit with the callback costs
    result["load_average"] = os.getloadavg()
    result["first_fit_run_ms"] = {
        h: round(1e3 * sum(v for (hh, _), v in cold["hooks"].items() if hh == h), 2) for h in _RUN_HOOKS
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    base = 1e3 * result["plain_cpu_s"]
    print(
        f"{args.model}, {args.epochs} epochs, {result['steps']} steps, plain fit {base:.0f} ms CPU (min of "
        f"{args.reps}); load average {result['load_average'][0]:.2f}; process CPU, thread CPU in the hooks"
    )
    added = 1e3 * result["watched_cpu_s"] - base
    hooks = result["hooks_ms"]
    print(f"  added CPU     {added:7.1f} ms  ({100 * added / base:+.1f}%: the callback without timers, min of fits)")
    print(f"  all hooks     {hooks:7.1f} ms  ({100 * hooks / base:+.1f}%; the timers add a few us a call)")
    print(f"  per run       {result['run_ms']:7.1f} ms  {result['run_detail_ms']}")
    print(f"  per run, first fit in the process (lazy imports) {result['first_fit_run_ms']}")
    print(f"  per epoch     {result['epoch_ms']:7.1f} ms  {result['epoch_detail_ms']}")
    print(
        f"  per step      {result['step_us']:7.1f} us x {result['steps']} = {result['step_ms_total']:.1f} ms  "
        f"{result['step_detail_us']}"
    )
    print("  parts (ms per epoch, nested in the hooks above):")
    for name, row in result["parts_ms_by_epoch"].items():
        print(f"    {name:28s} {row}")
    print("  checks (ms, all calls):")
    for name, ms in list(result["checks_ms"].items())[:25]:
        print(f"    {name:40s} {ms:7.2f}")


if __name__ == "__main__":
    main()
