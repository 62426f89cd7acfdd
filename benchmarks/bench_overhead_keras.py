"""Training-time overhead of the Keras `MLCheckCallback()` at its defaults.

Paired design: each repetition trains the same seeded model with and without the callback, in
alternating order (with/without, then without/with, ...), and the overhead is the median of
the per-pair time ratios, so drifts in machine load cancel out; the process is pinned to one
CPU. A small MLP and a small CNN on sklearn's digits (torch backend, CPU). Four settings are
measured against the plain run:

- `defaults`: `MLCheckCallback(log_dir=...)` with overfit-a-batch off (the one-off
  overfit-a-batch at train start is timed apart, as DESIGN.md asks);
- `adapter`: the callback with one no-op check, i.e. the adapter's own work (wrapped steps,
  loss, learning rate, weight statistics every 25 steps, batch conversion, TensorBoard);
- `overfit-a-batch`: seconds of the one-off check at train start.

The callback's own timers (`cb.timings`) give the cost of each kind of observation.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_overhead_keras.py [--reps 5] [--epochs 10]
     [--cpu-time] [--json]
A short run (the setting where fixed costs weigh most): `--epochs 3`.
Set OMP_NUM_THREADS=1 on a shared machine: torch's thread pool on busy cores is noisier than
anything measured here.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from mlcheck import Check  # noqa: E402
from mlcheck.integrations.keras import MLCheckCallback  # noqa: E402

warnings.filterwarnings("ignore")


class _NoOp(Check):
    """Takes steps and batches and does nothing: measures the adapter alone.

    What it does:
        Nothing.
    Why it matters:
        Benchmark helper.
    How to fix:
        Nothing to fix.
    """

    id = "bench-keras-noop"
    family = "bench"

    def on_batch(self, batch, run):
        return ()

    def on_step(self, run):
        return ()


def digits(image: bool):
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = (x[order] / 16).astype(np.float32), y[order].astype(np.int64)
    if image:
        x = x.reshape(-1, 8, 8, 1)
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def build(kind: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    if kind == "mlp":
        layers = [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    else:
        layers = [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


CLOCK = time.perf_counter  # --cpu-time: time.process_time (this process's CPU seconds)


def timed_fit(kind: str, epochs: int, cb: MLCheckCallback | None) -> float:
    (xt, yt), (xv, yv) = digits(kind == "cnn")
    model = build(kind)
    gc.collect()  # each fit starts clean: a full collection costs 0.1-0.4 s and lands on any run
    start = CLOCK()
    model.fit(
        xt,
        yt,
        validation_data=(xv, yv),
        epochs=epochs,
        batch_size=32,
        verbose=0,
        callbacks=[cb] if cb is not None else [],
    )
    return CLOCK() - start


def paired(kind: str, epochs: int, reps: int, make_cb, make_base=lambda: None) -> tuple[float, list[float], list[dict]]:
    """Median ratio (with / without) over `reps` alternating pairs, the ratios, the timers;
    "without" is `make_base()`'s callback (default: none)."""
    ratios, timers = [], []
    for rep in range(reps):
        cb = make_cb()
        if rep % 2 == 0:
            with_cb = timed_fit(kind, epochs, cb)
            without = timed_fit(kind, epochs, make_base())
        else:
            without = timed_fit(kind, epochs, make_base())
            with_cb = timed_fit(kind, epochs, cb)
        ratios.append(with_cb / without)
        timers.append(dict(cb.timings, _plain=without, _watched=with_cb))
    return statistics.median(ratios), ratios, timers


def layer_rows(args: argparse.Namespace, log_root: str) -> int:
    """`--layers`: the defaults against the defaults with the layer checks suppressed (the
    recorder then stays off), paired directly, per model."""
    from mlcheck.checks.base import registry

    layer_ids = [i for i, c in registry().items() if c.family == "layers"]
    for kind in ("mlp", "cnn"):
        timed_fit(kind, 1, None)  # warm up imports and kernels
        on = lambda kind=kind: MLCheckCallback(log_dir=os.path.join(log_root, kind), overfit_batch=False)  # noqa: E731
        off = lambda kind=kind: MLCheckCallback(  # noqa: E731
            log_dir=os.path.join(log_root, kind + "-off"), overfit_batch=False, suppress=layer_ids
        )
        timed_fit(kind, 1, on())
        med, ratios, _ = paired(kind, args.epochs, args.reps, on, make_base=off)
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(
            f"{kind}: layer checks on against off, {args.epochs} epochs, {args.reps} pairs: "
            f"{100 * (med - 1):+.1f}% [IQR {100 * (q[0] - 1):+.1f}, {100 * (q[2] - 1):+.1f}]",
            flush=True,
        )
    return 0


#: digits: 1,437 training rows in batches of 32
STEPS_PER_EPOCH = 45


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="3 pairs of 3 epochs (a smoke run)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time fits by this process's CPU seconds instead of wall time: far "
        "less sensitive to other processes on a shared machine (use with "
        "OMP_NUM_THREADS=1)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the process to one CPU (pinned, run-to-run spread drops "
        "from ~10%% to ~2%% on a shared 2-core machine)",
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="only the layer checks' own cost: the defaults against the defaults with them off",
    )
    args = parser.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    global CLOCK
    if args.quick:
        args.reps, args.epochs = 3, 3
    if args.cpu_time:
        CLOCK = time.process_time
    log_root = tempfile.mkdtemp(prefix="mlcheck-bench-keras-")
    if args.layers:
        return layer_rows(args, log_root)
    results: dict = {"epochs": args.epochs, "reps": args.reps, "models": {}}
    for kind in ("mlp", "cnn"):
        timed_fit(kind, 1, None)  # warm up imports and kernels
        timed_fit(kind, 1, MLCheckCallback(log_dir=os.path.join(log_root, "warm"), overfit_batch=False))
        out: dict = {}
        med, ratios, timers = paired(
            kind,
            args.epochs,
            args.reps,
            # timed: the timers' own cost is in the ratio (as before `timing=` existed in Keras)
            lambda kind=kind: MLCheckCallback(log_dir=os.path.join(log_root, kind), overfit_batch=False, timing=True),
        )
        plain = statistics.median(t["_plain"] for t in timers)
        kinds = sorted({k for t in timers for k in t if not k.startswith("_")})
        per_kind = {k: statistics.median(t.get(k, 0.0) for t in timers) for k in kinds}
        out["defaults"] = {
            "overhead": med - 1,
            "ratios": ratios,
            "plain_seconds": plain,
            "seconds_by_observation": per_kind,
        }
        med, ratios, timers = paired(
            kind,
            args.epochs,
            args.reps,
            lambda kind=kind: MLCheckCallback(
                checks=[_NoOp()], log_dir=os.path.join(log_root, kind + "-noop"), overfit_batch=False, timing=True
            ),
        )
        out["adapter"] = {
            "overhead": med - 1,
            "ratios": ratios,
            "seconds_by_observation": {k: statistics.median(t.get(k, 0.0) for t in timers) for k in kinds},
        }
        overfit, in_steps = [], []
        for _ in range(3):  # at the run's own length: the live core proportions the budget to it
            cb = MLCheckCallback(log_dir=None, timing=True)
            timed_fit(kind, args.epochs, cb)
            start = time.perf_counter()  # the overfit timer is wall time: so is this plain fit
            timed_fit(kind, args.epochs, None)
            step_s = (time.perf_counter() - start) / (args.epochs * STEPS_PER_EPOCH)
            overfit.append(cb.timings.get("overfit_batch", 0.0))
            in_steps.append(overfit[-1] / step_s)
        out["overfit_batch_seconds"] = statistics.median(overfit)
        out["overfit_batch_in_steps"] = statistics.median(in_steps)
        results["models"][kind] = out
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"Keras MLCheckCallback overhead, paired median of {args.reps} ratios, {args.epochs} epochs "
        f"of digits (1,437 train / 360 val, batch 32), backend {keras.backend.backend()}, "
        f"{'CPU' if args.cpu_time else 'wall'} time"
    )
    for kind, out in results["models"].items():
        d, a = out["defaults"], out["adapter"]
        print(f"\n{kind}: plain fit {d['plain_seconds']:.2f} s")
        print(
            f"  defaults (overfit-a-batch apart): {100 * d['overhead']:+.1f}%  "
            f"ratios {', '.join(f'{r:.3f}' for r in d['ratios'])}"
        )
        print(
            f"  adapter alone (no-op check):      {100 * a['overhead']:+.1f}%  "
            f"ratios {', '.join(f'{r:.3f}' for r in a['ratios'])}"
        )
        print(
            f"  overfit-a-batch at train start: {out['overfit_batch_seconds']:.2f} s (one-off), the time of "
            f"{out['overfit_batch_in_steps']:.0f} of the run's steps (target <= 100)"
        )
        print("  wall seconds per fit by observation (defaults | adapter alone); % of the plain fit:")
        for k, v in d["seconds_by_observation"].items():
            print(
                f"    {k:<12} {v:7.3f} s  {100 * v / d['plain_seconds']:5.1f}%  | "
                f"{a['seconds_by_observation'].get(k, 0.0):7.3f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
