"""CPU cost of `weak-slice`'s column ranges: recording a table's validation inputs in the
per-sample store, and the judgement at the end of the run, on synthetic stores (`WeakSlice`
alone in a `Monitor`, 4 validation passes of random rows and predictions 90% right).

    python benchmarks/bench_slice_ranges.py

Prints one line per size: rows x columns, the bytes the stored inputs take per validation row
(spare capacity of the growing arrays included), the CPU time of `Monitor.log_samples` over the
4 passes and of the judgement at `close()`.
"""

from __future__ import annotations

import time

import numpy as np

from mlcheck.checks.samples import WeakSlice
from mlcheck.monitor import Monitor
from mlcheck.samples import SampleOutputs

SIZES = ((143, 30), (450, 64), (20_000, 64), (100_000, 64))
PASSES = 4
BATCH = 1024


def measure(rows: int, columns: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns)).astype(np.float32)
    y = rng.integers(0, 2, rows)
    monitor = Monitor(checks=[WeakSlice()])
    recording = 0.0
    for epoch in range(PASSES):
        predicted = np.where(rng.random(rows) < 0.9, y, 1 - y)
        for start in range(0, rows, BATCH):
            part = slice(start, start + BATCH)
            ids = np.arange(rows, dtype=np.uint64)[part]
            out = SampleOutputs("val", epoch, ids, y[part], np.full(len(ids), 0.8), predicted[part], features=x[part])
            started = time.process_time()
            monitor.log_samples(out)
            recording += time.process_time() - started
    started = time.process_time()
    monitor.close()
    judging = time.process_time() - started
    features = monitor.run.samples.get("val").features
    return {"rows": rows, "columns": columns, "bytes": features.nbytes / rows, "record": recording, "judge": judging}


def main() -> None:
    for rows, columns in SIZES:
        r = measure(rows, columns)
        print(
            f"{r['rows']} x {r['columns']}: {r['bytes']:.0f} bytes per validation row held, "
            f"recording {r['record'] * 1000:.0f} ms CPU over {PASSES} passes, judgement {r['judge'] * 1000:.0f} ms CPU"
        )


if __name__ == "__main__":
    main()
