"""How early overfitting can be called on the labelled real runs at all, whatever the rule.

    .venv/bin/python benchmarks/reallogs/ceiling.py
    .venv/bin/python benchmarks/reallogs/ceiling.py --runs held-out-5   # one line per overfitting run of a split
    .venv/bin/python benchmarks/reallogs/ceiling.py --silent RUNS.txt   # a rule flagging no healthy run (over35)

Issue 12 asks `train-val-gap` for recall >= 0.95 at a median lag <= 2 epochs after the
validation-loss minimum, with at most 1 in 36 healthy runs flagged. This script asks how far any
rule on the validation loss's rise could get there on this corpus (every split, every
overfitting and healthy run scored by `score.py`), by giving such a rule every advantage:
its threshold is chosen afterwards, on the very runs it is scored on.

The evidence at an epoch is the rise of the validation loss above its best level (the median of
the lowest epoch and its neighbours, as `train-val-gap`'s early test measures it), in log units:
of the last epoch alone (`last1`) or of the smaller of the last two (`last2`), counted only while
the training loss is still falling (by 1% since the lowest epoch) and, optionally, only when it
also exceeds `z` x the scatter of the log loss around a parabola through the turn (the early
test's noise). An overfitting run is caught by +2 when its evidence at some epoch up to two
after its labelled minimum exceeds the threshold; a healthy run is flagged when its evidence
exceeds it at any epoch. For each rule the script prints how many healthy runs a threshold must
flag to catch a given number of overfitting runs by +2, and how many overfitting runs show no
rise at all by then (no threshold catches those by +2).
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from mlcheck.checks.generalization import _fit_noise  # noqa: E402


def load(run_id: str) -> tuple[np.ndarray, np.ndarray]:
    with open(HERE / "runs" / f"{run_id}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return np.array([float(r["loss"]) for r in rows]), np.array([float(r["val_loss"]) for r in rows])


def evidence(t: np.ndarray, v: np.ndarray, n: int, kind: str, z: float) -> float:
    """The rise (log units) the rule sees after the first n epochs; -inf when it sees none."""
    pv = v[:n]
    if not bool(np.all(np.isfinite(pv))) or not bool(np.all(pv > 0)):
        return -math.inf
    m = int(np.argmin(pv))
    if n - 1 - m < 2 or not t[m] - t[n - 1] > 0.01 * abs(t[m]):
        return -math.inf  # fewer than two epochs since the lowest, or training loss not falling
    best = float(np.median(pv[max(0, m - 1) : m + 2]))
    rise = math.log((float(np.min(pv[-2:])) if kind == "last2" else float(pv[-1])) / best)
    if rise <= 0:
        return -math.inf
    sigma = _fit_noise(np.log(pv)[max(0, m - 3) :])
    if z > 0 and math.isfinite(sigma) and not rise > z * sigma:
        return -math.inf
    return rise


def per_run(rows: list[dict], split: str) -> int:
    """One line per overfitting run of `split`: its largest evidence by +2 and by its last epoch
    (each rule), and how many healthy runs of every split reach that much evidence anywhere: a run
    that some healthy run out-rises under every rule is reachable by none of these rules without
    flagging that many healthy runs (threshold chosen in-sample)."""
    loaded = {r["id"]: load(r["id"]) for r in rows}
    healthy = {
        (kind, z): [
            max(evidence(*loaded[r["id"]], n, kind, z) for n in range(3, len(loaded[r["id"]][1]) + 1))
            for r in rows
            if r["label"] == "healthy"
        ]
        for kind in ("last1", "last2")
        for z in (0.0, 3.0)
    }
    print(f"overfitting runs of {split}: per rule, rise by +2 / by the end (healthy runs, all splits, at or above it)")
    for r in rows:
        if r["split"] != split or r["label"] != "overfitting":
            continue
        t, v = loaded[r["id"]]
        onset = int(r["onset"])
        cells = []
        for (kind, z), h in healthy.items():
            by2 = max((evidence(t, v, n, kind, z) for n in range(3, min(len(v), onset + 2) + 1)), default=-math.inf)
            end = max(evidence(t, v, n, kind, z) for n in range(3, len(v) + 1))
            cells.append(f"{kind} z>{z:g} {_said(by2, h)} / {_said(end, h)}")
        print(f"  {r['id']} (n={len(v)}, min at {onset}): " + "; ".join(cells))
    return 0


def _said(rise: float, healthy: list[float]) -> str:
    """A rise as a percentage and the healthy runs whose evidence reaches it; "none" for no rise."""
    return "none" if rise == -math.inf else f"{math.expm1(rise) * 100:.0f}%:{sum(y >= rise for y in healthy)}"


def silent_ceiling(rows: list[dict], said: dict[str, str]) -> int:
    """How many overfitting runs a rule could catch, by +2 and by the run's end, flagging no healthy
    run that main leaves silent (its threshold just above the largest evidence any of those shows
    at any epoch), or at most 1 in 36 of all the healthy runs: thresholds chosen in-sample, every
    advantage to the rule. `said` maps each scored run to main's HIT or -, so main's misses are
    counted apart."""
    loaded = {r["id"]: load(r["id"]) for r in rows}
    missed = {r["id"] for r in rows if r["label"] == "overfitting" and said.get(r["id"]) == "-"}
    healthy = [r for r in rows if r["label"] == "healthy"]
    print(f"Overfitting runs a rule on the rise could catch (main misses {len(missed)}):")
    for kind in ("last1", "last2"):
        for z in (0.0, 3.0):
            seen = {
                r["id"]: max(evidence(*loaded[r["id"]], n, kind, z) for n in range(3, len(loaded[r["id"]][1]) + 1))
                for r in healthy
            }
            silent_top = max(e for i, e in seen.items() if said.get(i) != "HIT")
            allowed = sorted(seen.values(), reverse=True)[len(healthy) // 36]  # flags at most 1 in 36
            for name, top in (("no healthy run main leaves silent", silent_top), ("1 in 36 healthy", allowed)):
                counts = [0, 0, 0, 0]
                for r in rows:
                    if r["label"] != "overfitting":
                        continue
                    t, v = loaded[r["id"]]
                    onset = int(r["onset"])
                    ends = range(3, min(len(v), onset + 2) + 1)
                    early = max((evidence(t, v, n, kind, z) for n in ends), default=-math.inf)
                    late = max(evidence(t, v, n, kind, z) for n in range(3, len(v) + 1))
                    counts[0] += early > top
                    counts[1] += late > top
                    counts[2] += early > top and r["id"] in missed
                    counts[3] += late > top and r["id"] in missed
                print(
                    f"  {kind} z>{z:g}, {name} (rise over {math.expm1(top) * 100:.0f}%): {counts[0]} by +2, "
                    f"{counts[1]} by the end; of main's misses {counts[2]} by +2, {counts[3]} by the end"
                )
    return 0


def main() -> int:
    with open(HERE / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] in ("overfitting", "healthy")]
    if len(sys.argv) > 2 and sys.argv[1] == "--runs":
        return per_run(rows, sys.argv[2])
    if len(sys.argv) > 2 and sys.argv[1] == "--silent":  # score.py --runs output: main's misses
        lines = (line.split() for line in Path(sys.argv[2]).read_text().splitlines() if line.startswith("  "))
        return silent_ceiling(rows, {p[5]: p[2] for p in lines if len(p) > 5})
    runs = [(r["label"], int(r["onset"]) if r["onset"] else 0, *load(r["id"])) for r in rows]
    n_over = sum(label == "overfitting" for label, *_ in runs)
    n_healthy = len(runs) - n_over
    print(f"{n_over} overfitting and {n_healthy} healthy runs (all splits); 1 in 36 = {n_healthy / 36:.0f} healthy.")
    print("Healthy runs a threshold must flag to catch k overfitting runs by +2 (threshold chosen in-sample):")
    for kind in ("last1", "last2"):
        for z in (0.0, 3.0):
            over, healthy = [], []
            for label, onset, t, v in runs:
                if label == "overfitting":  # epochs up to onset + 2 (onset is 1-based)
                    over.append(max(evidence(t, v, n, kind, z) for n in range(3, min(len(v), onset + 2) + 1)))
                else:
                    healthy.append(max(evidence(t, v, n, kind, z) for n in range(3, len(v) + 1)))
            ranked = sorted(over, reverse=True)
            cells = []
            for k in (36, 53, 80, 101):
                thr = ranked[k - 1]
                if thr == -math.inf:
                    cells.append(f"k={k}: none can")
                else:
                    cells.append(f"k={k}: {sum(h >= thr for h in healthy)} (rise {math.expm1(thr) * 100:.1f}%)")
            blind = sum(x == -math.inf for x in over)
            print(f"  {kind} z>{z:g}: " + "; ".join(cells) + f"; no rise by +2 in {blind}/{n_over}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
