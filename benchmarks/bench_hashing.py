"""Throughput and peak memory of `train-val-overlap` (8-byte sample fingerprints in a sorted
set, fed batch by batch as a live run feeds them) against a pandas merge of the same rows.

    .venv/bin/python benchmarks/bench_hashing.py            # 1M tabular rows, 100k images
    .venv/bin/python benchmarks/bench_hashing.py --rows 200000 --image-rows 20000   # quick
    .venv/bin/python benchmarks/bench_hashing.py --first-epoch     # 3x224x224 images, ~1 min

`--first-epoch`: the first epoch of a run on 3x224x224 float32 images (batches of 32, drawn
fresh, as a loader hands them out), pinned to one CPU, torch on one thread. The model is a
stand-in for a GPU's throughput: 16x16 average pooling and a linear layer, whose training step
takes a few milliseconds per batch (printed; a ResNet-50 on one A100 trains a batch of 32 in
~13 ms). Each batch goes through the full-pass checks (`train-val-overlap`, `nonfinite-input`,
`class-imbalance`) as the callbacks hand them over (`Monitor.log_batch(defer=True)`), hashing
every value and with the first-stage probe; the figure is their time as a share of the
epoch's training steps (target <= 5%).

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


def first_epoch(batches: int, batch: int, probes: list[int | None]) -> None:
    """The full-pass checks' share of a first epoch on 3x224x224 images (see the docstring)."""
    import os

    import torch
    from torch import nn

    from mlcheck.checks.data import ClassImbalance, NonFiniteInput
    from mlcheck.monitor import Monitor

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.AvgPool2d(16), nn.Flatten(), nn.Linear(3 * 14 * 14, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    data = [
        (torch.rand(batch, 3, 224, 224, generator=gen), torch.randint(0, 10, (batch,), generator=gen))
        for _ in range(batches)
    ]
    step_s = 0.0
    for x, y in data:
        start = time.process_time()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        step_s += time.process_time() - start
    print(
        f"first epoch: {batches} batches of {batch} x 3x224x224 float32; stand-in training step "
        f"{1e3 * step_s / batches:.2f} ms per batch ({1e6 * step_s / batches / batch:.0f} us per image), CPU time"
    )
    for probe in probes:
        checks = [TrainValOverlap(probe_values=probe), NonFiniteInput(), ClassImbalance()]
        monitor = Monitor(checks=checks, warn=False, default_sinks=False)
        ids = [c.id for c in checks]
        start = time.process_time()
        for i, (x, y) in enumerate(data):
            monitor.log_batch(x.numpy(), y.numpy(), split="train", step=i, epoch=0, index=i, checks=ids, defer=True)
        monitor.close()
        spent = time.process_time() - start
        what = "every value hashed" if probe is None else f"probe of {probe} values"
        print(
            f"  full-pass checks, {what:22s}: {1e6 * spent / batches / batch:7.1f} us per image, "
            f"{spent / step_s:6.1%} added to the epoch's steps (target <= 5%)"
        )


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
    parser.add_argument("--epoch-batches", type=int, default=32, help="batches of the first epoch")
    args = parser.parse_args()
    if args.first_epoch:
        import os

        print(f"load average {os.getloadavg()[0]:.2f}")
        first_epoch(args.epoch_batches, 32, [None, 1024, 256])
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
