"""Every call of `suspicious-val`'s `_other_scale` on every run of the manifest (its copy in
`runs/`, or with --raw its raw file where /work/.mirror holds it), with the ratio's statistics:
the check calls it at the first epoch where the leak rule holds, and decides there (branch sv33).

    .venv/bin/python benchmarks/reallogs/replay_other_scale.py OUT.json [--raw]

Prints one line per run that reached `_other_scale` or got a `suspicious-val` finding; OUT.json
holds the same, every call's train/val ratio (first, last, min, max), the log spread of the
ratio and of each curve, and whether `other-scale` was told.
"""

import csv
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, "benchmarks/reallogs")
import score

import mlcheck
from mlcheck.checks import leakage

logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")
raw = "--raw" in sys.argv
calls = []
orig = leakage._other_scale


def spy(train, val, last):
    epochs = [e for e in sorted(set(val) & set(train)) if e <= last]
    t = np.array([train[e] for e in epochs])
    v = np.array([val[e] for e in epochs])
    rec = {"last": last, "n": len(epochs)}
    if (t > 0).all() and (v > 0).all() and np.isfinite(t).all() and np.isfinite(v).all():
        lr = np.log(t) - np.log(v)
        rec.update(
            rmin=float(np.exp(lr.min())),
            rmax=float(np.exp(lr.max())),
            spread=float(np.ptp(lr)),
            ptp_t=float(np.ptp(np.log(t))),
            ptp_v=float(np.ptp(np.log(v))),
            r_first=float(np.exp(lr[0])),
            r_last=float(np.exp(lr[-1])),
        )
    out = orig(train, val, last)
    rec["told"] = out is not None
    calls.append(rec)
    return out


leakage._other_scale = spy
rows = list(csv.DictReader(open("benchmarks/reallogs/manifest.csv", newline="")))
res = []
with tempfile.TemporaryDirectory() as tmp:
    for row in rows:
        calls.clear()
        src = Path("benchmarks/reallogs/runs") / f"{row['id']}.csv"
        where = "copy"
        if raw:
            s = score.raw_file(row, Path(score.MIRROR), Path(tmp))
            if isinstance(s, Path):
                src, where = s, "raw"
        if not src.exists():
            continue
        try:
            with score._starting(score.PRETRAINED.get(row.get("pretrained", ""))):
                r = mlcheck.analyze.run(str(src), select=["suspicious-val"])
        except Exception as e:
            res.append({"id": row["id"], "error": repr(e)[:100]})
            continue
        f = [(x.key, x.severity.value, x.epoch) for run in r.runs for x in run.findings]
        if calls or f:
            res.append(
                {
                    "id": row["id"],
                    "split": row["split"],
                    "label": row["label"],
                    "where": where,
                    "calls": list(calls),
                    "findings": f,
                }
            )
json.dump(res, open(sys.argv[1], "w"), indent=0)
for r in res:
    print(r["id"], r.get("split"), r.get("label"), r.get("where"), r.get("findings", r.get("error")))
    for c in r.get("calls", []):
        print("   ", {k: round(v, 3) if isinstance(v, float) else v for k, v in c.items()})
