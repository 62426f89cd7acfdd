"""What `Monitor(log_dir=...)` pays per step for writing the curves it is given (`mlcheck/curves/`).

Feeds `Monitor.log_step(step, loss=..., lr=...)` `--steps` steps with a `log_dir`, with the curves
on and off (`curves=False`) in interleaved pairs, and reports the process's CPU time per step
(median and range of each, and of the paired difference). CPU time rather than wall time: on a
shared machine other jobs make wall times several times higher and too noisy to compare.

    python benchmarks/bench_monitor_curves.py                # 20,000 steps, 11 pairs (~10 s)
    python benchmarks/bench_monitor_curves.py --steps 100000 --pairs 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def per_step(steps: int, curves: bool) -> float:
    """CPU microseconds per `log_step`, closing (and so writing) included."""
    from mlcheck import Monitor

    with tempfile.TemporaryDirectory(prefix="mlcheck-bench-curves-") as folder:
        monitor = Monitor(log_dir=folder, curves=curves, warn=False)
        start = time.process_time()
        for step in range(steps):
            monitor.log_step(step, loss=1.0 / (step + 1), lr=1e-3)
        monitor.close()
        return (time.process_time() - start) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=11)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.pairs):
        for curves in (True, False) if i % 2 else (False, True):  # alternate which goes first
            times[curves].append(per_step(args.steps, curves))
    for curves, name in ((False, "without curves"), (True, "with curves")):
        t = times[curves]
        print(f"{name:>15}: median {statistics.median(t):.2f} us/step (range {min(t):.2f}-{max(t):.2f})")
    diff = [a - b for a, b in zip(times[True], times[False])]
    print(f"{'paired diff':>15}: median {statistics.median(diff):.2f} us/step (range {min(diff):.2f}-{max(diff):.2f})")


if __name__ == "__main__":
    main()
