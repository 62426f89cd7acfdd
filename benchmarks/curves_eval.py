"""Recall and false alarms of the curve checks on a labelled set of synthetic curves.

    .venv/bin/python benchmarks/curves_eval.py            # 16 seeds per family (672 curves)
    .venv/bin/python benchmarks/curves_eval.py --seeds 8  # quicker
    .venv/bin/python benchmarks/curves_eval.py --quick

The curves come from `benchmarks/curves/families.py`: many healthy families (converged, noisy,
warmup, cosine, step, one-cycle, restarts, short runs, regression scales, epoch-only logs,
runs without validation, easy data, val below train) and one family per fault, with random
severity and onset. Every curve goes through a real `Monitor` with the eight curve checks,
step by step or vectorised (`log_steps`) as `mlcheck analyze` would. Seeds are split in two
halves: the first ("dev") was the only one looked at while the checks were written; the
second ("held-out") was not. Both are reported.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "curves"))

from families import FAULTS, HEALTHY, Run  # noqa: E402
from mlcheck import Monitor, RunInfo, Severity  # noqa: E402
from mlcheck.checks.base import get_check  # noqa: E402

CURVE_CHECKS = (
    "nonfinite-loss",
    "loss-divergence",
    "loss-plateau",
    "train-val-gap",
    "suspicious-val",
    "lr-too-high",
    "lr-too-low",
    "lr-schedule",
)
FAULT_DRAWS = 3  # curves per fault family and seed (faults have more sub-families than seeds)


def replay(run: Run) -> list:
    """Feeds one run through a silent Monitor and returns its WARNING/ERROR findings."""
    monitor = Monitor(
        checks=[get_check(c)() for c in CURVE_CHECKS],
        warn=False,
        default_sinks=False,
        info=RunInfo(**run.info),
        strict=True,
    )
    epochs = list(run.epochs)
    n = 0 if run.loss is None else len(run.loss)
    steps = np.arange(n)
    pos = 0

    def feed(end: int, epoch: int | None) -> None:
        if end <= pos:
            return
        if run.update_ratio is not None or run.extras:
            for i in range(pos, end):
                extras = {}
                for name, (at, names) in run.extras.items():
                    if at == i:
                        extras[name] = names
                ratio = run.update_ratio[i] if run.update_ratio is not None else np.nan
                monitor.log_step(
                    i,
                    loss=float(run.loss[i]),
                    lr=None if run.lr is None else float(run.lr[i]),
                    update_ratio=None if not np.isfinite(ratio) else float(ratio),
                    epoch=epoch,
                    **extras,
                )
        else:
            monitor.log_steps(
                steps[pos:end], loss=run.loss[pos:end], lr=None if run.lr is None else run.lr[pos:end], epoch=epoch
            )

    for row in epochs:
        row = dict(row)
        epoch = row.pop("epoch")
        if n and "step" in row:
            feed(row["step"] + 1, epoch)
            pos = row["step"] + 1
        monitor.log_epoch(epoch, **row)
    feed(n, None)
    monitor.close()
    return [f for f in monitor.findings if f.severity >= Severity.WARNING]


def evaluate(seeds: range) -> tuple[dict, dict, dict, int]:
    """({fault: [hits, total, any check fired]}, {family: [alarms, total]},
    {check: alarms on healthy}, number of curves)."""
    recall: dict = defaultdict(lambda: [0, 0])
    healthy: dict = defaultdict(lambda: [0, 0])
    by_check: Counter = Counter()
    any_check: Counter = Counter()
    count = 0
    for seed in seeds:
        for k, family in enumerate(HEALTHY):
            run = family(np.random.default_rng([seed, k, 0]))
            found = replay(run)
            healthy[run.family][0] += bool(found)
            healthy[run.family][1] += 1
            by_check.update({f.check for f in found})
            count += 1
        for k, family in enumerate(FAULTS):
            for draw in range(FAULT_DRAWS):
                run = family(np.random.default_rng([seed, k, 1, draw]))
                found = replay(run)
                hit = any(f.check == run.label for f in found)
                for key in (run.label, f"  {run.family}"):
                    recall[key][0] += hit
                    recall[key][1] += 1
                    any_check[key] += bool(found)
                count += 1
    for key, (hits, total) in recall.items():
        recall[key] = [hits, total, any_check[key]]
    return recall, healthy, by_check, count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=16, help="seeds per family, split in halves (16)")
    p.add_argument("--quick", action="store_true", help="8 seeds per family")
    p.add_argument(
        "--first-seed", type=int, default=0, help="first seed (default 0); a fresh range gives a set nobody has seen"
    )
    args = p.parse_args(argv)
    seeds = 8 if args.quick else args.seeds
    half = seeds // 2
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a check that breaks must show, not be switched off
        first = args.first_seed
        dev = evaluate(range(first, first + half))
        held = evaluate(range(first + half, first + seeds))
    seconds = time.perf_counter() - t0

    def pct(hit_total: list) -> str:
        hit, total = hit_total[:2]
        return f"{hit:>3}/{total:<3} {100 * hit / max(total, 1):5.1f}%"

    def anyp(row: list) -> str:
        return f"{100 * row[2] / max(row[1], 1):5.1f}%"

    print(
        f"Curve checks on {dev[3] + held[3]} labelled synthetic curves "
        f"(seeds {first}-{first + half - 1} dev, {first + half}-{first + seeds - 1} held-out), "
        f"{seconds:.1f} s\n"
    )
    print(
        f"{'Recall: the fault check fired':<36} {'dev':>14} {'held-out':>14}   {'any check: dev':>14} {'held-out':>8}"
    )
    keys = set(dev[0]) | set(held[0])
    for group in (sorted(k for k in keys if not k.startswith(" ")), sorted(k for k in keys if k.startswith(" "))):
        if group[0].startswith(" "):
            print("  by sub-family")
        for k in group:
            d, h = dev[0].get(k, [0, 0, 0]), held[0].get(k, [0, 0, 0])
            print(f"{k:<36} {pct(d):>14} {pct(h):>14}   {anyp(d):>14} {anyp(h):>8}")
    print(f"\n{'False alarms on healthy curves':<36} {'dev':>14} {'held-out':>14}")
    tot_dev = [sum(v[0] for v in dev[1].values()), sum(v[1] for v in dev[1].values())]
    tot_held = [sum(v[0] for v in held[1].values()), sum(v[1] for v in held[1].values())]
    print(f"{'all healthy families':<36} {pct(tot_dev):>14} {pct(tot_held):>14}")
    for fam in sorted(set(dev[1]) | set(held[1])):
        print(f"{'  ' + fam:<36} {pct(dev[1][fam]):>14} {pct(held[1][fam]):>14}")
    print(f"\n{'False alarms by check (healthy)':<36} {'dev':>14} {'held-out':>14}")
    for check in CURVE_CHECKS:
        print(f"{'  ' + check:<36} {dev[2][check]:>14} {held[2][check]:>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
