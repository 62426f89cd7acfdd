"""CPU time of `Monitor.log_batch` (the first full pass, the sampled batches and the deferred
blocks the full-pass checks take) and of every callback hook, in Lightning and Keras fits at the
defaults (overfit-a-batch off).

Thread CPU time (`time.thread_time()`) around each call, not wall-clock ratios: on a shared
machine it moves far less with the other jobs' load than a paired ratio does. The process is
pinned to one core, torch on one thread. The fits are those of `bench_overhead_lightning.py`
(digits MLP and CNN, MNIST) and `bench_overhead_keras.py` (digits MLP and CNN); one warm-up
fit, then the min and median of `--reps` fits.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_log_batch_cpu.py [--models mlp,cnn]
     [--epochs 3] [--reps 4] [--keras]
To compare two checkouts, put the other one first on PYTHONPATH (its `mlcheck/integrations`
linked to its `integrations/`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcheck.monitor import Monitor  # noqa: E402

_TOTALS: Counter = Counter()
_DEPTH: Counter = Counter()


def _timed(owner: type, name: str, label: str) -> None:
    """Adds the thread CPU of the outermost calls of `owner.name` to `_TOTALS[label]`."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        if _DEPTH[label]:
            return original(*args, **kwargs)
        _DEPTH[label] += 1
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            _TOTALS[label] += time.thread_time() - start
            _DEPTH[label] -= 1

    setattr(owner, name, timed)


def _time_hooks(callback: type) -> None:
    for name in dir(callback):
        if name.startswith(("on_", "setup", "teardown")) and callable(getattr(callback, name)):
            _timed(callback, name, "hooks")


def measure(fit, reps: int) -> dict[str, tuple[float, float]]:
    """{label: (min, median) ms per fit} over `reps` fits after a warm-up."""
    fit()
    runs: dict[str, list[float]] = {"log_batch": [], "hooks": []}
    for _ in range(reps):
        _TOTALS.clear()
        fit()
        for label, values in runs.items():
            values.append(1000 * _TOTALS[label])
    return {label: (min(v), statistics.median(v)) for label, v in runs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--keras", action="store_true", help="Keras fits instead of Lightning ones")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    _timed(Monitor, "log_batch", "log_batch")
    if args.keras:
        import bench_overhead_keras as bench

        from mlcheck.integrations.keras import MLCheckCallback

        def fit(kind):
            return bench.timed_fit(kind, args.epochs, MLCheckCallback(overfit_batch=False, log_dir=None))
    else:
        import bench_overhead_lightning as bench

        from mlcheck.integrations.lightning import MLCheckCallback

        root = tempfile.mkdtemp()

        def fit(kind):
            return bench.train_once(kind, args.epochs, MLCheckCallback(overfit_batch=False), root)

    import torch

    torch.set_num_threads(1)
    _time_hooks(MLCheckCallback)
    framework = "keras" if args.keras else "lightning"
    for kind in args.models.split(","):
        found = measure(functools.partial(fit, kind), args.reps)
        cells = "  ".join(f"{label} min {lo:.1f} median {mid:.1f} ms" for label, (lo, mid) in found.items())
        print(f"{framework} {kind}, {args.epochs} epochs: {cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
