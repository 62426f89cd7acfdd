"""Memory and speed of `mlcheck.Monitor` over a 1,000,000-step observation soak.

Feeds `Monitor.log_step` one million steps of a healthy-looking run (a noisy, slowly decaying
loss; a cosine learning rate; an update ratio around 1e-3 every `--every` steps; an epoch with a
validation loss and a metric every `--epoch-every` steps, 10,000 epochs by default, so every
per-epoch bound is reached) with every default check on, and reports:

- steps/s of `log_step` (checks included);
- resident memory (RSS) at checkpoints, and its growth from the first checkpoint to the end;
- in a second pass under `tracemalloc`, the Python memory held at each checkpoint (what the
  Monitor and its checks keep: should be flat in the number of steps);
- the findings raised (a healthy curve: there should be no WARNING or ERROR);
- what `log_step` costs per step in runs of 500, 5,000 and 50,000 steps, split by check (the
  step checks are asked at every bucket close, so short runs pay more per step).

    python benchmarks/bench_soak.py                 # 1M steps, both passes (~1-3 min)
    python benchmarks/bench_soak.py --steps 200000 --json-out /tmp/soak.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def rss_mib() -> float:
    """Current resident set size, from /proc (Linux); falls back to the peak from getrusage."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def checkpoints(steps: int) -> list[int]:
    marks = [m for m in (10_000, 100_000, 250_000, 500_000, 750_000) if m < steps]
    return marks + [steps]


def soak(
    steps: int, every: int, epoch_every: int, chunk: int = 10_000, traced: bool = False, seed: int = 0
) -> dict[str, Any]:
    """Feeds `steps` steps to a fresh Monitor; returns timings and memory at checkpoints."""
    from mlcheck import Monitor, RunInfo

    rng = np.random.default_rng(seed)
    marks = checkpoints(steps)
    monitor = Monitor(
        info=RunInfo(task="classification", num_classes=10, total_steps=steps, has_scheduler=True), warn=False
    )
    gc.collect()
    if traced:
        tracemalloc.start()
    base_rss = rss_mib()
    base_traced = tracemalloc.get_traced_memory()[0] if traced else 0
    rows: list[dict[str, Any]] = []
    findings = 0
    elapsed = 0.0
    step = 0
    epoch = 0
    for start in range(0, steps, chunk):
        n = min(chunk, steps - start)
        x = np.arange(start, start + n)
        # a healthy run: loss decays from ~2.3 to ~0.2 with multiplicative noise, cosine lr
        loss = (0.2 + 2.1 * np.exp(-x / (steps / 8))) * np.exp(rng.normal(0, 0.1, n))
        lr = 1e-3 * 0.5 * (1 + np.cos(np.pi * x / steps))
        ratio = 1e-3 * np.exp(rng.normal(0, 0.2, n))
        loss_l, lr_l, ratio_l = loss.tolist(), lr.tolist(), ratio.tolist()
        t0 = time.perf_counter()
        for i in range(n):
            step = start + i
            findings += len(
                monitor.log_step(
                    step,
                    loss=loss_l[i],
                    lr=lr_l[i],
                    update_ratio=ratio_l[i] if step % every == 0 else None,
                    epoch=epoch,
                )
            )
            if epoch_every and (step + 1) % epoch_every == 0:
                train = 0.2 + 2.1 * math.exp(-step / (steps / 8))
                findings += len(
                    monitor.log_epoch(
                        epoch, step=step, train_loss=train, val_loss=train * 1.1 + 0.02, val_metrics={"accuracy": 0.9}
                    )
                )
                epoch += 1
        elapsed += time.perf_counter() - t0
        done = start + n
        if done in marks:
            row = {"steps": done, "rss_mib": round(rss_mib(), 2), "seconds": round(elapsed, 2)}
            if traced:
                current, peak = tracemalloc.get_traced_memory()
                row["traced_kib"] = round((current - base_traced) / 1024, 1)
                row["traced_peak_kib"] = round((peak - base_traced) / 1024, 1)
            rows.append(row)
    findings += len(monitor.close())
    if traced:
        tracemalloc.stop()
    alarms = [f for f in monitor.findings if f.severity.value in ("warning", "error")]
    out: dict[str, Any] = {
        "steps": steps,
        "traced": traced,
        "seconds": round(elapsed, 2),
        "steps_per_s": round(steps / elapsed),
        "us_per_step": round(1e6 * elapsed / steps, 2),
        "rss_start_mib": round(base_rss, 2),
        "checkpoints": rows,
        "findings": [f"{f.severity.value} {f.check} @{f.step}" for f in monitor.findings],
        "alarms": len(alarms),
        "checks": [c.id for c in monitor.checks],
    }
    first, last = rows[0], rows[-1]
    half = next((r for r in rows if r["steps"] >= steps // 2), first)
    out["rss_growth_mib"] = round(last["rss_mib"] - first["rss_mib"], 2)
    out["rss_growth_second_half_mib"] = round(last["rss_mib"] - half["rss_mib"], 2)
    if traced:
        out["traced_growth_kib"] = round(last["traced_kib"] - first["traced_kib"], 1)
        out["traced_growth_second_half_kib"] = round(last["traced_kib"] - half["traced_kib"], 1)
    return out


def per_check_cost(steps: int, every: int, seed: int = 0) -> dict[str, float]:
    """Microseconds per step that each check's `on_step` costs over a run of `steps` steps.

    Short runs matter: while a Series keeps one value per bucket (the first 256 steps), every
    step closes a bucket and the step checks are asked each time."""
    from mlcheck import Monitor, RunInfo

    monitor = Monitor(info=RunInfo(task="classification", num_classes=10, total_steps=steps), warn=False)
    spent: dict[str, float] = {}
    for check in monitor.checks:
        hook = check.on_step

        def timed(run: Any, hook: Any = hook, cid: str = check.id) -> list[Any]:
            t0 = time.perf_counter()
            found = list(hook(run))
            spent[cid] = spent.get(cid, 0.0) + time.perf_counter() - t0
            return found

        check.on_step = timed  # type: ignore[method-assign]
    rng = np.random.default_rng(seed)
    x = np.arange(steps)
    loss = ((0.2 + 2.1 * np.exp(-x / (steps / 8))) * np.exp(rng.normal(0, 0.1, steps))).tolist()
    t0 = time.perf_counter()
    for step in range(steps):
        monitor.log_step(step, loss=loss[step], lr=1e-3, update_ratio=1e-3 if step % every == 0 else None)
    total = time.perf_counter() - t0
    monitor.close()
    out = {"total": round(1e6 * total / steps, 1)}
    for cid, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        if seconds * 1e6 / steps >= 0.05:
            out[cid] = round(1e6 * seconds / steps, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--every", type=int, default=25, help="update ratio every n steps (25)")
    p.add_argument(
        "--epoch-every",
        type=int,
        default=100,
        help="an epoch (val loss, metric) every n steps; 0: none (100: 10,000 epochs "
        "in 1M steps, past every per-epoch bound)",
    )
    p.add_argument("--no-traced", action="store_true", help="skip the tracemalloc pass")
    p.add_argument("--json-out", default=str(HERE / "results" / "soak.json"))
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")

    plain = soak(args.steps, args.every, args.epoch_every)
    runs = [plain]
    if not args.no_traced:
        runs.append(soak(args.steps, args.every, args.epoch_every, traced=True))
    print(
        f"Monitor soak: {args.steps:,} steps, {len(plain['checks'])} checks "
        f"({', '.join(plain['checks']) or 'none registered'})"
    )
    print(
        f"speed: {plain['steps_per_s']:,} steps/s ({plain['us_per_step']} us/step), "
        f"{plain['seconds']} s in log_step/log_epoch"
    )
    print("\n| steps | RSS (MiB) | traced by tracemalloc (KiB) |\n|---|---|---|")
    traced_rows = {r["steps"]: r for r in runs[-1]["checkpoints"]} if len(runs) > 1 else {}
    for row in plain["checkpoints"]:
        t = traced_rows.get(row["steps"], {})
        print(f"| {row['steps']:,} | {row['rss_mib']} | {t.get('traced_kib', '-')} |")
    print(
        f"\nRSS growth {plain['checkpoints'][0]['steps']:,} -> {args.steps:,} steps: "
        f"{plain['rss_growth_mib']} MiB (second half: {plain['rss_growth_second_half_mib']} "
        f"MiB); peak RSS of the process {peak_rss_mib():.1f} MiB"
    )
    if len(runs) > 1:
        print(
            f"tracemalloc growth over the same span: {runs[1]['traced_growth_kib']} KiB "
            f"(second half: {runs[1]['traced_growth_second_half_kib']} KiB; peak "
            f"{runs[1]['checkpoints'][-1]['traced_peak_kib']} KiB above the start)"
        )
    print(f"findings: {len(plain['findings'])} ({plain['alarms']} WARNING/ERROR) {plain['findings'][:5]}")
    per_check_cost(300, args.every)  # warm-up: first calls pay for lazy imports and caches
    short = {n: per_check_cost(n, args.every) for n in (500, 5_000, 50_000)}
    print("\nlog_step cost per step (us) by run length, and the step checks' share of it:")
    for n, costs in short.items():
        parts = ", ".join(f"{k} {v}" for k, v in costs.items() if k != "total")
        print(f"  {n:>6,} steps: {costs['total']} us/step ({parts})")
    out = {
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "runs": runs,
        "per_check_us": short,
    }
    path = Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
