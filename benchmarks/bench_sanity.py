"""How long `mlcheck sanity` takes on the examples, against training the same model.

    python benchmarks/bench_sanity.py            # both examples, best of 2
    python benchmarks/bench_sanity.py --quick    # one repeat

For each example (examples/sanity_lightning_model.py, examples/sanity_keras_model.py):
- sanity: `mlcheck.sanity(path)` with the default checks and budget, the import of model.py
  excluded (it is reported apart, as is the wall time of the whole `mlcheck sanity` command);
- 300 steps: 300 training steps of the same model with the framework's own loop
  (`Trainer(max_steps=300)` without validation; `model.fit` for 300 batches), imports excluded;
- one epoch: one real epoch with validation (`Trainer(max_epochs=1)`, `model.fit(epochs=1)`).

Target (DESIGN.md): sanity <= the time of 300 training steps. Each figure is the best of
`--repeats` runs, after one warm-up fit, on whatever the machine is doing at the time (the
load average is printed with the results).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="mlcheck-bench-keras-"))

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    "lightning": ROOT / "examples" / "sanity_lightning_model.py",
    "keras": ROOT / "examples" / "sanity_keras_model.py",
}
STEPS = 300


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def lightning_timings(module, repeats: int) -> dict[str, float]:
    quiet = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    module.train(max_epochs=1, max_steps=10, limit_val_batches=0, **quiet)  # warm-up
    return {
        "steps_300": best(lambda: module.train(max_epochs=-1, max_steps=STEPS, limit_val_batches=0, **quiet), repeats),
        "epoch": best(lambda: module.train(max_epochs=1, **quiet), repeats),
    }


def keras_timings(module, repeats: int) -> dict[str, float]:
    x, y, xv, yv = module.x_train, module.y_train, module.x_val, module.y_val
    per_epoch = math.ceil(len(x) / 32)
    epochs = math.ceil(STEPS / per_epoch)
    module.build_model().fit(x[:320], y[:320], batch_size=32, epochs=1, verbose=0)  # warm-up

    def steps():
        # whole epochs, scaled to exactly 300 steps below
        module.build_model().fit(x, y, batch_size=32, epochs=epochs, verbose=0)

    return {
        "steps_300": best(steps, repeats) * STEPS / (epochs * per_epoch),
        "epoch": best(
            lambda: module.build_model().fit(x, y, batch_size=32, epochs=1, verbose=0, validation_data=(xv, yv)),
            repeats,
        ),
    }


def bench(name: str, path: Path, repeats: int, cli: bool) -> dict:
    import mlcheck
    from mlcheck.sanity.discovery import import_model_file

    module, _ = import_model_file(path)
    timings = (lightning_timings if name == "lightning" else keras_timings)(module, repeats)
    results = [mlcheck.sanity(path) for _ in range(repeats)]
    result = min(results, key=lambda r: r.seconds)
    row = {
        "example": str(path.relative_to(ROOT)),
        "sanity_seconds": round(result.seconds, 2),
        "import_seconds": round(result.import_seconds, 2),
        "steps_300_seconds": round(timings["steps_300"], 2),
        "epoch_seconds": round(timings["epoch"], 2),
        "ratio_to_300_steps": round(result.seconds / timings["steps_300"], 2),
        "ratio_to_epoch": round(result.seconds / timings["epoch"], 2),
        "checks": {c.check: round(c.seconds, 2) for c in sorted(result.checks, key=lambda c: -c.seconds)},
        "findings": [f.format() for f in result.findings],
        "inconclusive": result.inconclusive,
    }
    if cli:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mlcheck", "sanity", str(path), "--json"], capture_output=True, text=True, cwd=ROOT
        )
        row["cli_wall_seconds"] = round(time.perf_counter() - started, 2)
        row["cli_exit"] = proc.returncode
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one repeat instead of two")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--only", choices=sorted(EXAMPLES), help="one example")
    p.add_argument("--no-cli", action="store_true", help="skip timing the command as a subprocess")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_sanity.json"))
    args = p.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    rows = []
    for name, path in EXAMPLES.items():
        if args.only and name != args.only:
            continue
        rows.append(bench(name, path, repeats, not args.no_cli))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"mlcheck sanity vs training (best of {repeats}; load average {load}; {os.cpu_count()} CPUs)")
    print(
        f"{'example':42s} {'sanity':>7s} {'300 st':>7s} {'epoch':>7s} {'/300st':>7s} "
        f"{'/epoch':>7s} {'import':>7s} {'cli':>7s}"
    )
    for r in rows:
        print(
            f"{r['example']:42s} {r['sanity_seconds']:7.2f} {r['steps_300_seconds']:7.2f} "
            f"{r['epoch_seconds']:7.2f} {r['ratio_to_300_steps']:7.2f} {r['ratio_to_epoch']:7.2f} "
            f"{r['import_seconds']:7.2f} {r.get('cli_wall_seconds', float('nan')):7.2f}"
        )
        print("    per check: " + ", ".join(f"{k} {v:.2f}" for k, v in list(r["checks"].items())[:5]))
        for f in r["findings"]:
            print("    finding: " + f)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"load_average": load, "repeats": repeats, "results": rows}, indent=2))
    target_met = all(r["ratio_to_300_steps"] <= 1.0 for r in rows)
    print(f"target (sanity <= 300 training steps): {'met' if target_met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
