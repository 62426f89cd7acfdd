"""The overfitting runs `train-val-gap` misses, one line each, and their causes counted (issue 12, over35).

    .venv/bin/python benchmarks/reallogs/score.py --held-out ... --held-out-12 --runs > /tmp/runs.txt
    .venv/bin/python benchmarks/reallogs/miss_table.py /tmp/runs.txt

Per missed run (`miss_replay.misses`): its split, id, length n, labelled minimum m (1-based), the
epochs after m (n - m), the rise the label measured (README rule 4: the mean of the last
min(3, n - m) epochs over v[m]) in % and in noise units (that rise over the epoch noise of the
validation loss, `curve.noise` of the whole curve and of the part from m where it has 4 points,
the larger: what the stretch test measures; "-" where under 4 points), whether an accuracy-like
validation metric is logged, what `mlcheck analyze` says at the end (silent, or each check id
with its severity), and what `train-val-gap` says no with at the end (`miss_replay`'s blocker).

The cause (one per run, the first that applies):
- `reader`: the check saw no validation curve, or not the run file's one;
- `label question`: the rise is under 10% against the lowest 3-epoch stretch (`label_question`:
  README rule 4's 10% holds against one low epoch; a stretch-measuring check cannot reach it);
- `short after m: k`: fewer than 2 x patience + 2 = 8 validations in all (the shape test's ground),
  k = n - m;
- `accuracy hold` / other holds: a test passed and the verdict was held (INFO);
- `5% floor`, `noise bar`, `2% of descent`, `UP guard`, `no trend`, `training-fall guard`: the
  stretch test's step that said no at the end.
"""

from __future__ import annotations

import csv
import logging
import math
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

import mlcheck
from mlcheck.checks.curve import noise

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import miss_replay  # noqa: E402


def _said(run_id: str) -> str:
    result = mlcheck.analyze.run(str(HERE / "runs" / f"{run_id}.csv"))
    told = sorted({f"{f.check}:{f.severity.value}" for r in result.runs for f in r.findings})
    return ",".join(told) if told else "silent"


def _cause(end: str, n: int, m: int, question: bool, reader: bool) -> str:
    if reader:
        return "reader"
    if question:
        return "label question"
    if n < 8:
        return f"short after m: {n - m}"
    return {
        "metric hold (INFO)": "accuracy hold",
        "bar: noise": "noise bar",
        "bar: 5% floor": "5% floor",
        "bar: 2% of descent": "2% of descent",
    }.get(end, end)


def main(argv: list[str]) -> int:
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    with open(HERE / "manifest.csv", newline="") as fh:
        onset = {r["id"]: int(r["onset"]) for r in csv.DictReader(fh) if r["onset"]}
    causes: Counter[str] = Counter()
    print("split | run | n | m | n-m | rise % | rise / noise | val metric | analyze says | blocker | cause")
    for split, run_id in miss_replay.misses(argv[0]):
        seen, val = miss_replay.replay(run_id)
        file_val = miss_replay.file_curve(run_id)
        reader = len(val) != len(file_val) or not np.allclose(val, file_val, equal_nan=True)
        with open(HERE / "runs" / f"{run_id}.csv", newline="") as fh:
            header = next(csv.reader(fh))
        metric = any(c.startswith("val_") and c != "val_loss" for c in header)
        n, m = len(file_val), onset[run_id]
        tail = float(np.mean(file_val[m - 1 :][1:][-min(3, n - m) :])) if n > m else math.nan
        best = float(file_val[m - 1])
        rise = tail / best - 1.0
        sigma = noise(file_val)
        if n - m + 1 >= 4:
            sigma = max(sigma, noise(file_val[m - 1 :]))
        units = f"{(tail - best) / sigma:.1f}" if math.isfinite(sigma) and sigma > 0 else "-"
        end = "reader" if not seen else seen[-1][1]
        question = bool(len(val)) and miss_replay.label_question(val)
        cause = _cause(end, n, m, question, reader or not seen)
        causes[cause] += 1
        print(
            f"{split} | {run_id} | {n} | {m} | {n - m} | {100 * rise:.0f} | {units} | "
            f"{'yes' if metric else 'no'} | {_said(run_id)} | {end} | {cause}"
        )
    print(f"\ncauses: {dict(causes.most_common())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
