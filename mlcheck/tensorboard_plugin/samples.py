"""The per-sample table `<run>/mlcheck/samples.csv`, summarised for the tab: the samples most
likely mislabelled and the class distribution (the data summary).

The file holds one row per sample: id, given label, predicted label, confidence (mean
probability of the given label over epochs), variability (its standard deviation over epochs),
correctness (the share of epochs the prediction was right) and `flagged`, the samples
`noisy-labels` judged mislabelled. The suspects listed are the flagged rows, the same samples
the finding counts; a table without a `flagged` column (another writer's) falls back on a rule
of its own (`SUSPECT_CONFIDENCE`). Column names are matched loosely (`given_label`, `label`,
`y` ...) so small naming differences between writers do not hide the table; a file without an
id and a label column is reported as unreadable.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter
from pathlib import Path

from mlcheck.samples import CSV_PATH

SAMPLES_FILE = CSV_PATH  # where a run's table lies, relative to its folder
# Suspects shown: enough to eyeball a pattern, few enough to read (cleanlab's reports show ~50).
MAX_SUSPECTS = 50
# In a table without a `flagged` column, a sample is a suspect when its prediction differs from
# its label or the model gives its label less than even odds on average (dataset cartography's
# "hard to learn" region, Swayamdipta 2020).
SUSPECT_CONFIDENCE = 0.5
# Above this many rows only the first ones are read: the tab summarises, it does not page.
MAX_ROWS = 500_000

_ALIASES = {
    "id": ("id", "sampleid", "sample", "index", "idx"),
    "label": ("givenlabel", "given", "label", "y", "target"),
    "predicted": ("predictedlabel", "predicted", "prediction", "pred", "predlabel"),
    "confidence": ("confidence", "conf", "pgiven"),
    "variability": ("variability", "var", "std"),
    "correctness": ("correctness", "correct", "accuracy"),
    "split": ("split", "subset"),
    "flagged": ("flagged",),
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _columns(header: list[str]) -> dict[str, int]:
    keys = [_key(h) for h in header]
    found: dict[str, int] = {}
    for field, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in keys:
                found[field] = keys.index(alias)
                break
    return found


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _row(cells: list[str], cols: dict[str, int]) -> dict:
    row: dict = {}
    for field, i in cols.items():
        cell = cells[i].strip() if i < len(cells) else ""
        row[field] = _number(cell) if field in ("confidence", "variability", "correctness", "flagged") else cell
    return row


def _suspicion(row: dict) -> tuple:
    """Sort key: low confidence in the given label first (dataset cartography's 'hard to learn'
    region), then low correctness, then a prediction that disagrees with the label."""
    conf = row.get("confidence")
    correct = row.get("correctness")
    disagrees = row.get("predicted") not in (None, "", row.get("label"))
    return (1.0 if conf is None else conf, 1.0 if correct is None else correct, not disagrees)


def _suspect(row: dict) -> bool:
    """A table without a `flagged` column: the prediction disagrees or the confidence is low."""
    conf = row.get("confidence")
    return row.get("predicted") not in (None, "", row["label"]) or (conf is not None and conf < SUSPECT_CONFIDENCE)


def _suspects(rows: list[dict], flagged: bool) -> list[dict]:
    """The suspects to list: the flagged rows (training first, as `noisy-labels` counts them),
    else those of `_suspect`; least confident first."""
    if flagged:
        chosen = [r for r in rows if (r.get("flagged") or 0) > 0]
        return sorted(chosen, key=lambda r: (r.get("split") not in (None, "", "train"), *_suspicion(r)))
    return sorted(filter(_suspect, rows), key=_suspicion)


def read_samples(path: Path) -> dict:
    """The summary of one samples.csv: `{"path", "rows", "columns", "suspects", "suspect_rule",
    "flagged", "threshold", "classes"}`, or `{"path", "error"}` when it cannot be read.
    `suspect_rule` is "flagged" (the suspects are the rows `noisy-labels` flagged, counted per
    split in `flagged`) or "confidence" (no `flagged` column: `_suspect`'s rule, `flagged` None)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            cols = _columns(header)
            if "id" not in cols or "label" not in cols:
                return {"path": str(path), "error": f"no id and label columns in {header}"}
            rows = [_row(cells, cols) for cells, _ in zip(reader, range(MAX_ROWS)) if cells]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return {"path": str(path), "error": f"{type(exc).__name__}: {exc}"}
    given = Counter((r.get("split") or "all", r["label"]) for r in rows)
    predicted = Counter(r["predicted"] for r in rows if r.get("predicted"))
    splits = sorted({s for s, _ in given})
    labels = sorted({lab for _, lab in given} | set(predicted), key=_label_order)
    has_flags = "flagged" in cols
    flagged = Counter(r.get("split") or "all" for r in rows if (r.get("flagged") or 0) > 0) if has_flags else None
    return {
        "path": str(path),
        "rows": len(rows),
        "columns": sorted((c for c in cols if c != "flagged"), key=list(_ALIASES).index),
        "suspects": _suspects(rows, has_flags)[:MAX_SUSPECTS],
        "suspect_rule": "flagged" if has_flags else "confidence",
        "flagged": dict(flagged) if flagged is not None else None,
        "threshold": SUSPECT_CONFIDENCE,
        "classes": {
            "labels": labels,
            "splits": splits,
            "given": {s: [given.get((s, lab), 0) for lab in labels] for s in splits},
            "predicted": [predicted.get(lab, 0) for lab in labels] if predicted else None,
        },
    }


def _label_order(label: str) -> tuple:
    number = _number(label)
    return (0, number, "") if number is not None else (1, 0.0, label)


def find_samples(logdir: str | None, names: list[str]) -> Path | None:
    """`<logdir>/<name>/mlcheck/samples.csv` for the first of `names` (run directories) that has
    one; None for a remote log directory or when none does."""
    if not logdir or "://" in logdir:
        return None
    for name in names:
        path = Path(logdir) / (name if name != "." else "") / SAMPLES_FILE
        if os.path.isfile(path):
            return path
    return None
