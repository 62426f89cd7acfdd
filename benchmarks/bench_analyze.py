"""Speed and memory of `mlcheck analyze` on a 1,000,000-step TensorBoard log.

Writes (once, cached under /tmp) a legacy-scalar event file of a 1M-step run: a training loss
and a learning rate per step, one event per value as torch's SummaryWriter and Lightning write
them, with valid checksums. Then times:

- TensorBoard's `EventAccumulator(size_guidance={"scalars": 0}).Reload()`: the reference;
- `mlcheck.analyze.events.read_event_files` (reading only);
- `mlcheck.analyze(path)` in-process (reading + replay through every default check);
- `mlcheck analyze PATH --json` as a subprocess (imports included), with its peak RSS;
- in a second pass under `tracemalloc`, the Python/numpy memory peak of `mlcheck.analyze`,
  at 100k and 1M steps (what grows with the number of steps).

With `--val-points 10 1000 10000` the same 1M steps come with a validation loss (and the epoch,
as Lightning logs it) every steps/N steps, in a second event file of the run: one row per N with
the time and traced memory of `mlcheck.analyze`, so their growth in N shows (target: linear), and
the ratio to `EventAccumulator` reading that run (target <= 0.1x at 1,000 and 10,000 points).

With `--csv-epochs 10000 30000 100000 300000` it times a Keras `CSVLogger` file of that many
epochs instead (columns epoch, accuracy, loss, lr, val_accuracy, val_loss; noisy, healthy-looking
curves; cached): one row per length with the wall and CPU time of `mlcheck.analyze` and its
traced memory peak (target: linear in the epochs; issue 13 item 1).

    .venv/bin/python benchmarks/bench_analyze.py                 # ~1 min, ~40 s of it TensorBoard
    .venv/bin/python benchmarks/bench_analyze.py --skip-reference
    .venv/bin/python benchmarks/bench_analyze.py --steps 200000
    .venv/bin/python benchmarks/bench_analyze.py --val-points 10 1000 10000   # ~3 min
    .venv/bin/python benchmarks/bench_analyze.py --csv-epochs 10000 30000 100000 300000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("MLCHECK_BENCH_CACHE", "/tmp/mlcheck-bench"))


def write_log(folder: Path, steps: int, seed: int = 0) -> Path:
    """A legacy-scalar event file of `steps` steps (train_loss and lr-Adam per step), cached."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from mlcheck.analyze.tfrecord import encode_records

    path = folder / "events.out.tfevents.1700000000.bench.1.0"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    s = np.arange(steps)
    loss = (2.0 * np.exp(-s / (steps / 5)) + 0.1) * (1 + 0.05 * rng.standard_normal(steps))
    lr = 1e-3 * 0.5 * (1 + np.cos(np.pi * s / steps))
    Event, Summary, Value = event_pb2.Event, summary_pb2.Summary, summary_pb2.Summary.Value
    payloads = [Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString()]
    for i in range(steps):
        t = 1.7e9 + 0.01 * i
        payloads.append(
            Event(
                wall_time=t, step=i, summary=Summary(value=[Value(tag="train_loss", simple_value=float(loss[i]))])
            ).SerializeToString()
        )
        payloads.append(
            Event(
                wall_time=t, step=i, summary=Summary(value=[Value(tag="lr-Adam", simple_value=float(lr[i]))])
            ).SerializeToString()
        )
    tmp = path.with_suffix(".partial")
    tmp.write_bytes(encode_records(payloads))
    tmp.rename(path)
    return path


def write_val_log(folder: Path, steps: int, points: int) -> Path:
    """A run folder holding the step log of `write_log` (hard-linked) and a second event file with
    `points` validation losses and epoch numbers, one every steps/points steps, cached."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from mlcheck.analyze.tfrecord import encode_records

    base = write_log(CACHE / f"analyze-{steps}", steps)
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / base.name
    if not link.exists():
        os.link(base, link)
    path = folder / "events.out.tfevents.1700000001.bench.2.0"
    if path.exists():
        return folder
    every = steps // points
    Event, Summary, Value = event_pb2.Event, summary_pb2.Summary, summary_pb2.Summary.Value
    payloads = [Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString()]
    for epoch in range(points):
        step = (epoch + 1) * every - 1
        val = 2.0 * np.exp(-step / (steps / 5)) + 0.15
        for tag, value in (("val_loss", val), ("epoch", float(epoch))):
            summary = Summary(value=[Value(tag=tag, simple_value=value)])
            payloads.append(Event(wall_time=1.7e9 + 0.01 * step, step=step, summary=summary).SerializeToString())
    tmp = path.with_suffix(".partial")
    tmp.write_bytes(encode_records(payloads))
    tmp.rename(path)
    return folder


def write_keras_csv(path: Path, epochs: int, seed: int = 0) -> Path:
    """A Keras `CSVLogger` file of `epochs` epochs (its columns, sorted as Keras writes them):
    losses falling to a floor with 5% noise, validation a little above training, accuracies
    that mirror them, a cosine learning rate; cached."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    e = np.arange(epochs)
    shape = 2.0 * np.exp(-e / (epochs / 5))
    loss = (shape + 0.1) * (1 + 0.05 * rng.standard_normal(epochs))
    val = (shape + 0.15) * (1 + 0.05 * rng.standard_normal(epochs))
    acc, val_acc = np.clip(1 - loss / 2.2, 0, 1), np.clip(1 - val / 2.2, 0, 1)
    lr = 1e-3 * 0.5 * (1 + np.cos(np.pi * e / epochs))
    rows = ["epoch,accuracy,loss,lr,val_accuracy,val_loss"]
    rows += [f"{i},{acc[i]:.6f},{loss[i]:.6f},{lr[i]:.8g},{val_acc[i]:.6f},{val[i]:.6f}" for i in range(epochs)]
    tmp = path.with_suffix(".partial")
    tmp.write_text("\n".join(rows) + "\n")
    tmp.rename(path)
    return path


def csv_epochs_table(epochs: list[int]) -> list[dict]:
    """Wall and CPU time and traced memory of `mlcheck.analyze` per length of a Keras CSV log."""
    rows = []
    time_analyze(write_keras_csv(CACHE / "keras-csv-100.csv", 100))  # imports out of the first row
    for n in epochs:
        path = write_keras_csv(CACHE / f"keras-csv-{n}.csv", n)
        cpu = time.process_time()
        analyze_s, findings = time_analyze(path)
        analyze_cpu = time.process_time() - cpu
        peak = traced_peak(path)
        rows.append(
            {
                "epochs": n,
                "analyze_s": analyze_s,
                "analyze_cpu_s": analyze_cpu,
                "traced_peak_mib": peak,
                "findings": findings,
            }
        )
        print(
            f"{n:7d} epochs: analyze {analyze_s:7.2f} s ({analyze_cpu:6.2f} s CPU, {1e3 * analyze_cpu / n:.3f} ms CPU "
            f"per epoch), traced peak {peak:6.1f} MiB   findings: {findings or 'none'}",
            flush=True,
        )
    return rows


def val_points_table(steps: int, points: list[int], reference: bool) -> list[dict]:
    """Time and traced memory of `mlcheck.analyze` per number of validation points."""
    rows = []
    for n in points:
        folder = write_val_log(CACHE / f"analyze-{steps}-val{n}", steps, n)
        cpu = time.process_time()
        analyze_s, findings = time_analyze(folder)
        analyze_cpu = time.process_time() - cpu
        row = {"val_points": n, "analyze_s": analyze_s, "analyze_cpu_s": analyze_cpu, "findings": findings}
        row["traced_peak_mib"] = traced_peak(folder)
        text = f"analyze {analyze_s:6.2f} s ({analyze_cpu:5.2f} s CPU), traced peak {row['traced_peak_mib']:6.1f} MiB"
        if reference:
            cpu = time.process_time()
            row["reference_s"], _ = time_reference(folder)
            row["reference_cpu_s"] = time.process_time() - cpu
            row["ratio"] = analyze_s / row["reference_s"]
            row["ratio_cpu"] = analyze_cpu / row["reference_cpu_s"]
            text += (
                f", EventAccumulator {row['reference_s']:6.2f} s ({row['reference_cpu_s']:5.2f} s CPU), "
                f"ratio {row['ratio']:.3f}x ({row['ratio_cpu']:.3f}x CPU)"
            )
        print(f"{n:6d} validation points: {text}   findings: {findings or 'none'}")
        rows.append(row)
    return rows


def time_reference(folder: Path) -> tuple[float, int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    start = time.perf_counter()
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    elapsed = time.perf_counter() - start
    return elapsed, len(acc.Scalars("train_loss"))


def time_read(folder: Path) -> tuple[float, int]:
    from mlcheck.analyze.events import read_event_files

    start = time.perf_counter()
    curves = read_event_files(sorted(folder.glob("*tfevents*")))
    return time.perf_counter() - start, len(curves["train_loss"])


def time_analyze(folder: Path) -> tuple[float, list]:
    import mlcheck

    start = time.perf_counter()
    result = mlcheck.analyze(folder)
    return time.perf_counter() - start, [(f.check, f.severity.value) for _, f in result.findings]


def time_cli(folder: Path) -> tuple[float, float, int]:
    """Wall time and peak RSS (MiB) of the `mlcheck analyze --json` subprocess."""
    script = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        f"p = subprocess.run([sys.executable, '-m', 'mlcheck', 'analyze', {str(folder)!r}, '--json'], "
        "capture_output=True); e = time.perf_counter() - t; "
        "print(e, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, p.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    wall, rss, rc = out.stdout.split()
    return float(wall), float(rss), int(rc)


def traced_peak(folder: Path) -> float:
    """Peak MiB allocated by `mlcheck.analyze` (numpy arrays included), in a fresh process."""
    script = (
        "import tracemalloc, mlcheck, mlcheck.analyze, mlcheck.checks, numpy; "
        "from mlcheck.analyze import events; "
        "import tensorboard.compat.proto.event_pb2; "
        "tracemalloc.start(); "
        f"mlcheck.analyze({str(folder)!r}); "
        "print(tracemalloc.get_traced_memory()[1] / 2**20)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--skip-reference", action="store_true", help="do not time EventAccumulator")
    parser.add_argument("--json-out", type=Path, help="also write the figures here")
    parser.add_argument("--val-points", type=int, nargs="+", help="only the validation-points table, for these N")
    parser.add_argument("--csv-epochs", type=int, nargs="+", help="only the Keras CSV table, for these lengths")
    args = parser.parse_args()
    if args.csv_epochs:
        print(
            f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, Python {platform.python_version()}"
        )
        rows = csv_epochs_table(args.csv_epochs)
        print(f"load average at the end {os.getloadavg()[0]:.2f} (target: linear in the epochs)")
        if args.json_out:
            args.json_out.write_text(json.dumps(rows, indent=2))
        return
    if args.val_points:
        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f}, Python {platform.python_version()}")
        rows = val_points_table(args.steps, args.val_points, not args.skip_reference)
        print(f"load average at the end {os.getloadavg()[0]:.2f} (target: linear in N; <= 0.1x EventAccumulator)")
        if args.json_out:
            args.json_out.write_text(json.dumps(rows, indent=2))
        return

    folder = CACHE / f"analyze-{args.steps}"
    start = time.perf_counter()
    path = write_log(folder, args.steps)
    print(
        f"log: {path} ({path.stat().st_size / 2**20:.1f} MiB, {args.steps} steps x 2 tags; "
        f"ready in {time.perf_counter() - start:.1f} s)"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    figures: dict[str, object] = {"steps": args.steps, "bytes": path.stat().st_size}

    read_s, n = time_read(folder)
    assert n == args.steps, n
    print(f"read_event_files:                {read_s:7.2f} s")
    analyze_s, findings = time_analyze(folder)
    print(f"mlcheck.analyze (in-process):    {analyze_s:7.2f} s   findings: {findings or 'none'}")
    cli_s, cli_rss, rc = time_cli(folder)
    print(f"mlcheck analyze --json (CLI):    {cli_s:7.2f} s   peak RSS {cli_rss:.0f} MiB, exit {rc}")
    figures.update(read_s=read_s, analyze_s=analyze_s, cli_s=cli_s, cli_peak_rss_mib=cli_rss, findings=findings)

    small = CACHE / f"analyze-{args.steps // 10}"
    write_log(small, args.steps // 10)
    peak_small, peak = traced_peak(small), traced_peak(folder)
    print(
        f"tracemalloc peak of analyze:     {peak_small:7.1f} MiB at {args.steps // 10} steps, "
        f"{peak:.1f} MiB at {args.steps} steps "
        f"({(peak - peak_small) * 2**20 / (args.steps - args.steps // 10):.1f} bytes per step)"
    )
    figures.update(traced_peak_mib=peak, traced_peak_small_mib=peak_small)

    if not args.skip_reference:
        ref_s, n = time_reference(folder)
        assert n == args.steps, n
        print(f"EventAccumulator.Reload:         {ref_s:7.2f} s")
        print(
            f"ratio analyze / EventAccumulator: in-process {analyze_s / ref_s:.3f}x, "
            f"CLI {cli_s / ref_s:.3f}x (target <= 0.25x)"
        )
        figures.update(reference_s=ref_s, ratio_in_process=analyze_s / ref_s, ratio_cli=cli_s / ref_s)
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
