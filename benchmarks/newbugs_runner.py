"""Runs one batch of the new users' programs (`benchmarks/newbugsNN/`) and scores them against
its labels.csv; each batch's run_batch.py calls `main` with its own folder.

Each program runs as its own process (the real `MLCheckCallback()`, real training) and prints one
`FINDINGS {...}` line. Scored per program: caught (a WARNING or ERROR), right cause first (the
first WARNING/ERROR comes from a check listed in labels.csv's right_checks; read the messages too,
this is a first cut), healthy silent (no WARNING or ERROR).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SERIOUS = {"warning", "error"}


def run_one(here: Path, row: dict, timeout: float) -> dict:
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, f"{row['program']}.py"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        # one slow program is a row of the report, not the end of the batch (fix32 lost a run)
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return {
            **row,
            "rc": None,
            "seconds": round(time.monotonic() - start, 1),
            "crashed": True,
            "stderr_tail": f"timed out after {timeout:g} s\n" + err[-2000:],
            "findings": [],
        }
    seconds = time.monotonic() - start
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("FINDINGS ")), None)
    if line is None:
        return {
            **row,
            "rc": proc.returncode,
            "seconds": seconds,
            "crashed": True,
            "stderr_tail": proc.stderr[-2000:],
            "findings": [],
        }
    out = json.loads(line[len("FINDINGS ") :])
    findings = out["findings"]
    serious = [f for f in findings if f["severity"] in SERIOUS]
    right = set(filter(None, row["right_checks"].split(";")))
    result = {
        **row,
        "rc": proc.returncode,
        "seconds": round(seconds, 1),
        "crashed": False,
        "findings": findings,
        "extra": out["extra"],
    }
    result["caught"] = bool(serious)
    result["first_serious"] = f"{serious[0]['check']}/{serious[0]['key']}" if serious else None
    result["right_first"] = bool(serious) and serious[0]["check"] in right
    return result


def main(here: Path) -> int:
    """Runs the programs of the batch in `here` (its labels.csv) and prints the score."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    with open(here / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if args.only:
        rows = [r for r in rows if any(r["program"].startswith(o) for o in args.only)]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda r: run_one(here, r, args.timeout), rows))
    for r in results:
        serious = [f for f in r["findings"] if f["severity"] in SERIOUS]
        tag = "CRASH" if r["crashed"] else ("caught" if serious else "silent")
        print(
            f"{r['program']:45s} {r['kind']:8s} {tag:7s} first={r.get('first_serious')} "
            f"right={r.get('right_first')} {r['seconds']}s"
        )
        for f in r["findings"]:
            print(f"    {f['severity']:7s} {f['check']}/{f['key']} e{f['epoch']} s{f['step']}: {f['message'][:220]}")
        if r["crashed"]:
            print("    " + r["stderr_tail"].replace("\n", "\n    ")[-1200:])
    bugs = [r for r in results if r["kind"] == "bug"]
    healthy = [r for r in results if r["kind"] == "healthy"]
    print(
        f"bugs caught {sum(r.get('caught', False) for r in bugs)}/{len(bugs)}, "
        f"right cause first {sum(r.get('right_first', False) for r in bugs)}/{len(bugs)}, "
        f"healthy flagged {sum(r.get('caught', False) for r in healthy)}/{len(healthy)}"
    )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return 0
