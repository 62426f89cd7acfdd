"""Runs every benchmark in benchmarks/, one subprocess each, and keeps their output.

    python benchmarks/run_all.py              # all of them (`make bench`); ~30 min on 2 cores
    python benchmarks/run_all.py --quick      # passes --quick to the scripts that take it
    python benchmarks/run_all.py --only bench_soak,run_faults

Scripts that are not there are skipped with a note. Each script's output goes to the terminal
as it finishes and to benchmarks/results/<script>.log; a summary (exit status, seconds, date)
is merged into benchmarks/results/run_all.json. The exit status is 1 when any script failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

# In the order they are reported in docs/benchmarks.md.
SCRIPTS = (
    "bench_overhead_lightning.py",
    "bench_overhead_keras.py",
    "bench_sanity.py",
    "bench_analyze.py",
    "bench_hashing.py",
    "curves_eval.py",
    "reallogs/score.py",
    "bench_soak.py",
    "run_faults.py",
)

# arguments a script always gets from here
ARGS = {"reallogs/score.py": ("--held-out",)}


def takes_flag(script: Path, flag: str) -> bool:
    """Whether the script declares `flag` (read from its source: no import, no run)."""
    return f'"{flag}"' in script.read_text(encoding="utf-8", errors="replace")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated script names (with or without .py)")
    p.add_argument("--skip", help="comma-separated script names to leave out")
    p.add_argument("--quick", action="store_true", help="pass --quick where a script takes it")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per script (1800)")
    p.add_argument("--results", default=str(HERE / "results"))
    args = p.parse_args(argv)

    def names(value: str | None) -> set[str]:
        return {n.strip().removesuffix(".py") + ".py" for n in (value or "").split(",") if n.strip()}

    only, skip = names(args.only), names(args.skip)
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    # one torch/OpenMP thread: on a shared machine a thread pool on busy cores is noisier than
    # anything measured here (set OMP_NUM_THREADS yourself to override)
    env = dict(
        os.environ,
        KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "torch"),
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
    )
    summary = []
    failed = False
    for name in SCRIPTS:
        if (only and name not in only) or name in skip:
            continue
        script = HERE / name
        if not script.exists():
            print(f"== {name}: not found, skipped", flush=True)
            summary.append({"script": name, "status": "missing"})
            continue
        cmd = [sys.executable, str(script), *ARGS.get(name, ())]
        if args.quick and takes_flag(script, "--quick"):
            cmd.append("--quick")
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout, cwd=HERE.parent)
            rc, out = proc.returncode, proc.stdout + ("\n" + proc.stderr if proc.stderr else "")
        except subprocess.TimeoutExpired as exc:
            rc = "timeout"
            out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        seconds = time.perf_counter() - start
        log = results_dir / (name.removesuffix(".py").replace("/", "_") + ".log")
        log.write_text(out, encoding="utf-8")
        print(out.rstrip(), flush=True)
        print(f"== {name}: exit {rc} in {seconds:.0f}s (log: {log})\n", flush=True)
        failed |= rc != 0
        summary.append(
            {
                "script": name,
                "status": "ok" if rc == 0 else "failed",
                "exit": rc,
                "seconds": round(seconds, 1),
                "command": " ".join(cmd[1:]),
                "log": str(log.relative_to(HERE.parent)) if log.is_relative_to(HERE.parent) else str(log),
            }
        )
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    for s in summary:
        s["date_utc"] = now
    # merge into the previous record, so that runs of a few scripts keep the others' entries
    path = results_dir / "run_all.json"
    previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    merged = {s["script"]: s for s in previous.get("scripts", [])}
    merged.update({s["script"]: s for s in summary})
    record = {
        "date_utc": now,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "quick": args.quick,
        "scripts": [merged[name] for name in SCRIPTS if name in merged],
    }
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    print("| script | status | seconds |\n|---|---|---|")
    for s in summary:
        exit_note = "" if s.get("exit") in (0, None) else f" (exit {s['exit']})"
        print(f"| {s['script']} | {s['status']}{exit_note} | {s.get('seconds', '-')} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
