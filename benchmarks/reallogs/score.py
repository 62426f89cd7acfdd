"""Scores mlcheck and the rules it is compared with on the labelled real runs of this folder.

    .venv/bin/python benchmarks/reallogs/score.py               # the dev half
    .venv/bin/python benchmarks/reallogs/score.py --held-out    # dev and held-out (already looked at)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-2  # plus the runs added later (score it last)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-3  # plus the NaN / plateau / divergence hunt
    .venv/bin/python benchmarks/reallogs/score.py --held-out-4  # plus the logs read in their own formats
    .venv/bin/python benchmarks/reallogs/score.py --held-out-5  # plus the fifth set (new repositories, raw formats)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-6  # plus the sixth (Ultralytics YOLO results.csv)
    .venv/bin/python benchmarks/reallogs/score.py --only held-out-3   # one split alone
    .venv/bin/python benchmarks/reallogs/score.py --runs        # plus one line per run

Every run goes through `mlcheck.analyze.run(runs/<id>.csv)` (what `mlcheck analyze` does), and
through Keras EarlyStopping(patience=3), a UMLAUT-style overfitting rule, SageMaker Debugger's
Overfit and LossNotDecreasing rules, and Prechelt's GL5 and PQ2, re-implemented below on the
same epoch curves. Labels, onsets and the rules are described in README.md.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYMPTOMS = ("overfitting", "divergence", "nan", "plateau")
# which mlcheck check detects which symptom
CHECKS = {
    "overfitting": {"train-val-gap"},
    "divergence": {"loss-divergence", "lr-too-high"},
    "nan": {"nonfinite-loss"},
    "plateau": {"loss-plateau"},
}


def read_run(run_id: str) -> tuple[list[float], list[float]]:
    with open(HERE / "runs" / f"{run_id}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [float(r["loss"]) for r in rows], [float(r["val_loss"]) for r in rows]


# Each rule returns the first epoch (1-based) it fires at, or None.


def early_stopping(t: list[float], v: list[float], patience: int = 3) -> int | None:
    """keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, min_delta=0)."""
    best, wait = math.inf, 0
    for k, value in enumerate(v, start=1):
        if value < best:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience:
                return k
    return None


def umlaut(t: list[float], v: list[float]) -> int | None:
    """UMLAUT-style overfitting heuristic (reconstructed from its description): the validation loss
    rose since the previous epoch while the training loss fell."""
    for k in range(1, len(v)):
        if v[k] > v[k - 1] and t[k] < t[k - 1]:
            return k + 1
    return None


def sagemaker_overfit(t: list[float], v: list[float], ratio_threshold: float = 0.1, patience: int = 1) -> int | None:
    """SageMaker Debugger Overfit: (val - train) / train above ratio_threshold for `patience` evaluations."""
    run = 0
    for k, (a, b) in enumerate(zip(t, v), start=1):
        run = run + 1 if a > 0 and (b - a) / a > ratio_threshold else 0
        if run >= patience:
            return k
    return None


def sagemaker_loss_not_decreasing(
    t: list[float], v: list[float], num_steps: int = 10, diff_percent: float = 0.1
) -> int | None:
    """SageMaker Debugger LossNotDecreasing on the training loss, judged every num_steps epochs."""
    for k in range(num_steps, len(t), num_steps):
        if t[k] > t[k - num_steps] * (1 - diff_percent / 100):
            return k + 1
    return None


def prechelt_gl(t: list[float], v: list[float], alpha: float = 5.0) -> int | None:
    """Prechelt's GL_alpha: 100 (v / min v so far - 1) > alpha."""
    best = math.inf
    for k, value in enumerate(v, start=1):
        best = min(best, value)
        if best > 0 and 100 * (value / best - 1) > alpha:
            return k
    return None


def prechelt_pq(t: list[float], v: list[float], alpha: float = 2.0, strip: int = 5) -> int | None:
    """Prechelt's PQ_alpha: GL / P_strip > alpha, judged at the end of each training strip."""
    best = math.inf
    for k, value in enumerate(v, start=1):
        best = min(best, value)
        if k % strip or best <= 0:
            continue
        window = t[k - strip : k]
        progress = 1000 * (sum(window) / (strip * min(window)) - 1) if min(window) > 0 else math.inf
        gl = 100 * (value / best - 1)
        if progress > 0 and gl / progress > alpha:
            return k
    return None


RULES: dict[str, Callable[[list[float], list[float]], int | None]] = {
    "Keras ES(3)": early_stopping,
    "UMLAUT": umlaut,
    "SM Overfit": sagemaker_overfit,
    "SM LossNotDecr": sagemaker_loss_not_decreasing,
    "Prechelt GL5": prechelt_gl,
    "Prechelt PQ2": prechelt_pq,
}
# which symptom a rule is meant for; elsewhere its column shows "-" (its alarms on healthy runs count)
RULE_SYMPTOMS = {"SM LossNotDecr": {"plateau"}}


def mlcheck_findings(run_id: str) -> list:
    import mlcheck
    from mlcheck import Severity

    result = mlcheck.analyze.run(str(HERE / "runs" / f"{run_id}.csv"))
    return [f for run in result.runs for f in run.findings if f.severity >= Severity.WARNING]


def score(rows: list[dict]) -> dict:
    """{detector: {label: [(detected, lag or None, run id)]}}."""
    out: dict = {}
    for row in rows:
        label, run_id = row["label"], row["id"]
        onset = int(row["onset"]) if row["onset"] else None
        t, v = read_run(run_id)
        found = mlcheck_findings(run_id)
        if label == "healthy":
            fired = min((f.epoch for f in found), default=None) if found else None
            hit = bool(found)
        else:
            mine = [f.epoch for f in found if f.check in CHECKS[label]]
            fired, hit = (min(mine), True) if mine else (None, False)
        out.setdefault("mlcheck", {}).setdefault(label, []).append(
            (hit, _lag(fired, onset), run_id, ",".join(sorted({f.check for f in found})))
        )
        for name, rule in RULES.items():
            at = rule(t, v)
            out.setdefault(name, {}).setdefault(label, []).append((at is not None, _lag(at, onset), run_id, ""))
    return out


def _lag(fired: int | None, onset: int | None) -> int | None:
    return None if fired is None or onset is None else fired - onset


def table(result: dict, title: str) -> str:
    detectors = ["mlcheck", *RULES]
    lines = [
        f"**{title}**",
        "",
        "| symptom (runs) | " + " | ".join(detectors) + " |",
        "|---" * (len(detectors) + 1) + "|",
    ]
    labels = [s for s in SYMPTOMS if any(s in result[d] for d in detectors)]
    for label in labels:
        n = len(result["mlcheck"][label])
        cells = []
        for d in detectors:
            if d in RULE_SYMPTOMS and label not in RULE_SYMPTOMS[d]:
                cells.append("-")
                continue
            got = result[d][label]
            hits = [lag for hit, lag, _, _ in got if hit]
            lags = [lag for lag in hits if lag is not None]
            lag = f", lag {statistics.median(lags):+g}" if lags else ""
            cells.append(f"{len(hits)}/{n}{lag}")
        lines.append(f"| {label} ({n}) | " + " | ".join(cells) + " |")
    n = len(result["mlcheck"].get("healthy", []))
    cells = [f"{sum(hit for hit, *_ in result[d].get('healthy', []))}/{n}" for d in detectors]
    lines.append(f"| healthy: false alarms ({n}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--held-out", action="store_true", help="score the held-out half too (do this last)")
    p.add_argument("--held-out-2", action="store_true", help="score the second held-out set too (do this last)")
    p.add_argument("--held-out-3", action="store_true", help="score the third held-out set too (do this last)")
    p.add_argument("--held-out-4", action="store_true", help="score the raw-format logs too (do this last)")
    p.add_argument("--held-out-5", action="store_true", help="score the fifth held-out set too (do this last)")
    p.add_argument("--held-out-6", action="store_true", help="score the sixth held-out set too (do this last)")
    p.add_argument("--only", metavar="SPLIT", help="score this split alone")
    p.add_argument("--runs", action="store_true", help="print one line per scored run (mlcheck)")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")  # findings also arrive as warnings; they are counted here
    with open(HERE / "manifest.csv", newline="") as fh:
        manifest = [r for r in csv.DictReader(fh) if r["label"] != "ambiguous"]
    counts: dict = {}
    for r in manifest:
        counts.setdefault(r["split"], {}).setdefault(r["label"], 0)
        counts[r["split"]][r["label"]] += 1
    print(f"Real runs scored (ambiguous runs left out): {counts}\n")
    print("Cells: detected/runs and median lag in epochs after the onset (overfitting: the validation-loss")
    print("minimum); healthy: runs with a WARNING/ERROR (mlcheck) or on which the rule fired.\n")
    later = args.held_out_2 or args.held_out_3 or args.held_out_4 or args.held_out_5 or args.held_out_6
    splits = (
        ["dev"]
        + ["held-out"] * (args.held_out or later)
        + ["held-out-2"] * later
        + ["held-out-3"] * (args.held_out_3 or args.held_out_4 or args.held_out_5 or args.held_out_6)
        + ["held-out-4"] * (args.held_out_4 or args.held_out_5 or args.held_out_6)
        + ["held-out-5"] * (args.held_out_5 or args.held_out_6)
        + ["held-out-6"] * args.held_out_6
    )
    if args.only:
        splits = [args.only]
    for split in splits:
        rows = [r for r in manifest if r["split"] == split]
        result = score(rows)
        print(table(result, f"{split} half ({len(rows)} runs)") + "\n")
        if args.runs:
            for label, got in sorted(result["mlcheck"].items()):
                for hit, lag, run_id, checks in got:
                    print(f"  {split:8} {label:11} {'HIT ' if hit else '-   '} lag {lag!s:>4}  {run_id}  {checks}")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
