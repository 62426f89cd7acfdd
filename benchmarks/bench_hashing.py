"""Throughput and peak memory of `train-val-overlap` (8-byte sample fingerprints in a sorted
set, fed batch by batch as a live run feeds them) against a pandas merge of the same rows.

    .venv/bin/python benchmarks/bench_hashing.py            # 1M tabular rows, 100k images
    .venv/bin/python benchmarks/bench_hashing.py --rows 200000 --image-rows 20000   # quick
    .venv/bin/python benchmarks/bench_hashing.py --first-epoch     # 3x224x224 images, ~1 min
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_hashing.py --first-epoch --split --rounds 5

`--first-epoch --split`: where a full-pass batch's CPU goes, part by part: thread CPU time
inside each of the monitor's and the checks' calls on that path (inclusive, each timer adds
~1-2 us), per full-pass batch of the first epoch (end-of-pass work spread over them, marked
`END:`), minimum and median over `--rounds` epochs, pinned to one core.

`--first-epoch`: two epochs of a run on 3x224x224 float32 images (batches of 32, drawn fresh,
as a loader hands them out), pinned to one CPU, torch on one thread. The model is a stand-in for
a GPU's throughput: 16x16 average pooling and a linear layer, whose training step takes a few
milliseconds per batch (printed; a ResNet-50 on one A100 trains a batch of 32 in ~13 ms). Each
batch goes to a `LiveRun` with every default check, as the callbacks hand it over; the CPU time
of each route (the full first pass, the confirming pass of `train-val-overlap`'s second stage,
the sampled batches) is printed as a share of the training and validation steps (target for the
first pass <= 5%) and in CPU microseconds per batch of that route (less sensitive to the machine's
load than the share), with `train-val-overlap` in two stages (default) and hashing every value
(`probe_values=None`), on clean splits and with 10% of each validation batch copied from
training.

Data: 80% training, 20% validation rows, 10% of the validation rows copied from training.
Throughput is measured without tracing; peak memory in a second pass with `tracemalloc`
(numpy and pandas report their buffers to it), counting only what each method allocates
beyond the input arrays. "bytes/sample (kept)" is what stays allocated afterwards.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

from mlcheck.checks.hashing import PROBE_VALUES
from mlcheck.checks.leakage import TrainValOverlap
from mlcheck.run import BatchObservation, RunState


def make_rows(n: int, width: int, dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    n_val = n // 5
    train = rng.normal(size=(n - n_val, width)).astype(dtype)
    val = rng.normal(size=(n_val, width)).astype(dtype)
    copied = n_val // 10
    val[:copied] = train[rng.choice(len(train), copied, replace=False)]
    return train, val, copied


def run_check(train: np.ndarray, val: np.ndarray, batch: int, capacity: int) -> dict:
    check = TrainValOverlap(capacity=capacity)
    run = RunState()
    for start in range(0, len(train), batch):
        list(check.on_batch(BatchObservation(train[start : start + batch], None, "train", epoch=0), run))
    for start in range(0, len(val), batch):
        list(check.on_batch(BatchObservation(val[start : start + batch], None, "val", epoch=0), run))
    o = check._overlap
    return {"matched": o.matched * o.scale, "kept_bytes": o.nbytes, "keep": check}


def run_pandas(train: np.ndarray, val: np.ndarray) -> dict:
    import pandas as pd

    cols = [f"f{i}" for i in range(train.shape[1])]
    t = pd.DataFrame(train, columns=cols).drop_duplicates()
    v = pd.DataFrame(val, columns=cols).drop_duplicates()
    matched = len(t.merge(v, on=cols, how="inner"))
    return {"matched": matched, "kept_bytes": 0, "keep": None}


def measure(name: str, fn, train: np.ndarray, val: np.ndarray) -> dict:
    n = len(train) + len(val)
    gc.collect()
    t0 = time.perf_counter()
    out = fn(train, val)
    seconds = time.perf_counter() - t0
    del out["keep"]
    gc.collect()
    tracemalloc.start()
    traced = fn(train, val)
    _, peak = tracemalloc.get_traced_memory()
    kept = traced["kept_bytes"]
    tracemalloc.stop()
    del traced
    return {
        "method": name,
        "rows": n,
        "seconds": seconds,
        "rows_per_s": n / seconds,
        "peak_bytes_per_sample": peak / n,
        "kept_bytes_per_sample": kept / n,
        "matched": out["matched"],
    }


def table(results: list[dict]) -> str:
    head = (
        f"{'data':<22} {'method':<34} {'rows':>9} {'seconds':>8} {'samples/s':>11} "
        f"{'peak B/sample':>13} {'kept B/sample':>13} {'val in train':>12}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r['data']:<22} {r['method']:<34} {r['rows']:>9,} {r['seconds']:>8.2f} "
            f"{r['rows_per_s']:>11,.0f} {r['peak_bytes_per_sample']:>13.1f} "
            f"{r['kept_bytes_per_sample']:>13.1f} {r['matched']:>12,}"
        )
    return "\n".join(lines)


class _FirstEpochs:
    """Two epochs of a stand-in model on 3x224x224 images, each batch handed to a `LiveRun` as
    the adapters hand it (see the module docstring); CPU seconds per route."""

    def __init__(self, batches: int, batch: int, copied: float) -> None:
        import torch
        from torch import nn

        torch.manual_seed(0)
        self.torch, self.nn = torch, nn
        self.model = nn.Sequential(nn.AvgPool2d(16), nn.Flatten(), nn.Linear(3 * 14 * 14, 10))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01)
        self.batches, self.batch, self.copied = batches, batch, int(copied * batch)
        self.val_batches = max(1, batches // 4)

    def make(self, split: str, i: int):
        """A batch drawn afresh from a seed (memory stays flat); `copied` of each validation
        batch is copied from a training batch."""
        gen = self.torch.Generator().manual_seed((0 if split == "train" else 1 << 20) + i)
        x = self.torch.rand(self.batch, 3, 224, 224, generator=gen)
        if split == "val" and self.copied:
            x[: self.copied] = self.make("train", (7 * i) % self.batches)[0][: self.copied]
        return x, self.torch.randint(0, 10, (self.batch,), generator=gen)

    def step(self, split: str, x, y) -> float:
        start = time.process_time()
        if split == "train":
            self.opt.zero_grad()
            self.nn.functional.cross_entropy(self.model(x), y).backward()
            self.opt.step()
        else:
            with self.torch.no_grad():
                self.model(x)
        return time.process_time() - start

    def run(self, probe: int | None) -> tuple[list[dict], list]:
        from mlcheck.checks.base import default_checks
        from mlcheck.live import BatchRoute, LiveOptions, LiveRun

        checks = [c for c in default_checks() if c.id != "train-val-overlap"]
        checks.append(TrainValOverlap(probe_values=probe))
        live = LiveRun(LiveOptions(train_start_checks=False), checks, default_sinks=False, flush_every=1 << 30)
        epochs = []
        for epoch in range(2):
            spent = {"steps": 0.0, "full_pass_batches": 0}
            for split, n in (("train", self.batches), ("val", self.val_batches)):
                for i in range(n):
                    x, y = self.make(split, i)
                    spent["steps"] += self.step(split, x, y)
                    start = time.process_time()
                    route = live.route_batch(split)
                    if route is not BatchRoute.SKIP:  # numpy views of CPU tensors, as the adapters take
                        live.observe_batch(route, x.numpy(), y.numpy(), split=split, step=i, epoch=epoch, index=i)
                    spent[route.value] = spent.get(route.value, 0.0) + time.process_time() - start
                    spent[f"{route.value}_batches"] = spent.get(f"{route.value}_batches", 0) + 1
                start = time.process_time()
                if split == "val":
                    live.monitor.log_epoch(epoch)  # hands the deferred batches over
                live.end_pass(split)
                spent["full_pass"] = spent.get("full_pass", 0.0) + time.process_time() - start
            epochs.append(spent)
        live.monitor.close()
        return epochs, live.monitor.findings


class _Split(_FirstEpochs):
    """`_FirstEpochs`' first epoch with thread CPU timers around the calls of the full-pass path."""

    def __init__(self, batches: int, batch: int, copied: float) -> None:
        super().__init__(batches, batch, copied)
        import collections

        from mlcheck import live, monitor, run
        from mlcheck.checks import base, hashing, leakage

        self.spent: collections.Counter = collections.Counter()
        timed = [
            (live.LiveRun, "observe_batch"),
            (live.LiveRun, "end_pass"),
            (monitor.Monitor, "log_batch"),
            (monitor.Monitor, "log_pass_batch"),  # absent before 2026-12-03 10:30 UTC: skipped
            (monitor.Monitor, "_defer_probe"),
            (monitor.Monitor, "_defer"),
            (monitor.Monitor, "_flush_deferred"),
            (monitor.Monitor, "_dispatch"),
            (monitor.Monitor, "log_epoch"),
            (monitor, "_as_array"),
            (run.BatchObservation, "__init__"),
            (run.BatchObservation, "input_probe"),
            (hashing, "probe_rows"),
            (leakage, "any_constant_row"),
            (leakage.TrainValOverlap, "probe_suffices"),
        ]
        timed += [(type(c), "on_batch") for c in base.default_checks() if type(c).on_batch is not base.Check.on_batch]
        for owner, name in timed:
            self._time(owner, name)

    def _time(self, owner, name: str) -> None:
        import functools

        fn = getattr(owner, name, None)
        if fn is None:
            return
        label = f"{getattr(owner, '__name__', '').rsplit('.', 1)[-1]}.{name}"

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.thread_time_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[label] += time.thread_time_ns() - start

        setattr(owner, name, timed)

    def first(self) -> dict[str, float]:
        """Microseconds per full-pass batch of one first epoch, by call."""
        import collections

        from mlcheck.checks.base import default_checks
        from mlcheck.live import BatchRoute, LiveOptions, LiveRun

        live = LiveRun(
            LiveOptions(train_start_checks=False), default_checks(), default_sinks=False, flush_every=1 << 30
        )
        per, full = collections.Counter(), 0
        for split, n in (("train", self.batches), ("val", self.val_batches)):
            for i in range(n):
                x, y = self.make(split, i)
                self.step(split, x, y)
                route = live.route_batch(split)
                self.spent.clear()
                start = time.thread_time_ns()
                if route is not BatchRoute.SKIP:
                    live.observe_batch(route, x.numpy(), y.numpy(), split=split, step=i, epoch=0, index=i)
                if route is BatchRoute.FULL_PASS:
                    self.spent["TOTAL (numpy views + observe_batch)"] += time.thread_time_ns() - start
                    per.update(self.spent)
                    full += 1
            self.spent.clear()
            if split == "val":
                live.monitor.log_epoch(0)
            live.end_pass(split)
            per.update({f"END:{k}": v for k, v in self.spent.items()})
        live.monitor.close()
        return {k: v / full / 1e3 for k, v in per.items()}


def split_first_pass(batches: int, batch: int, rounds: int) -> None:
    """Prints `_Split`'s per-call table (see the module docstring)."""
    import os

    import torch

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    bench = _Split(batches, batch, 0.0)
    runs = [bench.first() for _ in range(rounds)]
    names = sorted(set().union(*runs), key=lambda k: -min(r.get(k, 0.0) for r in runs))
    print(f"us of thread CPU per full-pass batch of {batch} x 3x224x224 (inclusive), over {rounds} first epochs")
    for name in names:
        spent = [r.get(name, 0.0) for r in runs]
        print(f"  {name:44s} min {min(spent):7.1f}  median {np.median(spent):7.1f}")


def first_epoch(batches: int, batch: int, rounds: int, probes: list[int | None]) -> None:
    """The first pass's share of the first epochs on 3x224x224 images (see the docstring)."""
    import os

    import torch

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    for copied in (0.0, 0.1):
        bench = _FirstEpochs(batches, batch, copied)
        images = (batches + bench.val_batches) * batch
        print(
            f"epochs of {batches} training and {bench.val_batches} validation batches of {batch} x "
            f"3x224x224 float32, {copied:.0%} of each validation batch copied from training, {rounds} rounds"
        )
        for probe in probes:
            runs = [bench.run(probe) for _ in range(rounds)]
            what = "every value hashed" if probe is None else f"two stages, probe {probe}"
            for epoch in range(2):
                steps = np.array([r[0][epoch]["steps"] for r in runs])
                line = f"  {what:24s} epoch {epoch}: stand-in step {1e6 * np.median(steps) / images:5.1f} us/image"
                for route in ("full_pass", "confirm", "sample", "skip"):
                    spent = np.array([r[0][epoch].get(route, 0.0) for r in runs])
                    ratios = spent / steps
                    if ratios.any():
                        routed = runs[0][0][epoch][f"{route}_batches"] or 1  # end-of-pass work counts too
                        line += (
                            f"; {route} +{np.median(ratios):.2%} ({ratios.min():.2%}-{ratios.max():.2%}), "
                            f"{1e6 * np.median(spent) / routed:.0f} us CPU/batch"
                        )
                print(line)
            found = [(f.check, f.severity.value, f.epoch, f.evidence.get("val_in_train")) for f in runs[0][1]]
            print(f"  {what:24s} findings: {found}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="tabular rows (30 float32)")
    parser.add_argument("--image-rows", type=int, default=100_000, help="28x28 float32 image rows (0 to skip)")
    parser.add_argument("--batch", type=int, default=256, help="batch size fed to the check")
    parser.add_argument(
        "--pandas-image-rows",
        type=int,
        default=10_000,
        help="image rows for the pandas merge on 784 columns (it is slow)",
    )
    parser.add_argument("--first-epoch", action="store_true", help="only the 3x224x224 first-epoch share")
    parser.add_argument("--epoch-batches", type=int, default=40, help="training batches per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of the two epochs")
    parser.add_argument("--probe-only", action="store_true", help="--first-epoch without the every-value variant")
    parser.add_argument("--split", action="store_true", help="--first-epoch: a full-pass batch's CPU by call")
    args = parser.parse_args()
    if args.first_epoch:
        import os

        print(f"load average {os.getloadavg()[0]:.2f}")
        if args.split:
            split_first_pass(args.epoch_batches, 32, args.rounds)
            print(f"load average {os.getloadavg()[0]:.2f}")
            return
        first_epoch(args.epoch_batches, 32, args.rounds, [PROBE_VALUES] + ([] if args.probe_only else [None]))
        print(f"load average {os.getloadavg()[0]:.2f}")
        return

    results = []
    cases = [("tabular 30 x float32", args.rows, 30)]
    if args.image_rows:
        cases.append(("image 784 x float32", args.image_rows, 784))
    for data, n, width in cases:
        train, val, copied = make_rows(n, width, np.float32)
        methods = [
            ("mlcheck train-val-overlap", lambda t, v: run_check(t, v, args.batch, 1 << 21)),
            ("mlcheck, capacity 2**16 (sampled)", lambda t, v: run_check(t, v, args.batch, 1 << 16)),
        ]
        for name, fn in methods:
            r = measure(name, fn, train, val)
            r["data"] = data
            results.append(r)
        assert results[-len(methods)]["matched"] == copied, "exact mode must find every copy"
        if width > 100:  # pandas on 784 columns: a smaller copy of the same kind of data
            del train, val
            gc.collect()
            train, val, copied = make_rows(args.pandas_image_rows, width, np.float32)
        r = measure("pandas drop_duplicates + merge", run_pandas, train, val)
        r["data"] = data
        results.append(r)
        assert r["matched"] == copied
        del train, val
        gc.collect()
    print(table(results))


if __name__ == "__main__":
    main()
