"""Reading a training history saved as JSON or text: a Keras `History` dict
(`json.dump(history.history, f)`, `print(history.history)` pasted into a file, or that repr saved
as a JSON string), and the same history transposed, a list of per-epoch records.

- A History dict holds one list per metric, one value per epoch: `{'loss': [0.9, 0.7],
  'val_loss': [...]}`. Python's repr may wrap values (`np.float32(0.5)`, `tensor(0.5)`) and write
  `nan`/`inf`, which JSON and `ast.literal_eval` refuse, so the lists are read with a pattern,
  never evaluated. `json.dump(str(history.history), f)` saves the repr as a JSON string: it is
  decoded first.
- A dict holding the curves of two fits or two heads under prefixes, each prefix with its own
  `<prefix>loss` and `<prefix>val_loss` (`loss`/`val_loss` beside `fine_tune_loss`/
  `fine_tune_val_loss`; `reg_loss`/`reg_val_loss` beside `cls_loss`/`cls_val_loss`), is one run
  per prefix (`history_fits`). Keras' own multi-output names (`out_loss`, `val_out_loss`) put
  `val_` first and are not split.
- Per-epoch records (format "json-epoch-records"): a JSON list of dicts, one per epoch
  (`[{"epoch": 1, "train_loss": 0.9, "val_loss": 1.0}, ...]`, what a hand-written loop appends
  to and saves), or such a list under a key of a larger object (`{"history": [...], "config":
  {...}}`). Each key holding numbers is a curve, named as written; a nested dict's keys are
  joined with `/` (`{"train": {"loss": 0.9}}` is `train/loss`). x is the record's `epoch`
  (counted from 0, as Keras counts) where every record has a whole, increasing one, else its
  place in the list.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck.analyze.events import Scalars, sorted_scalars
from mlcheck.errors import CSVLogError

# larger than any History of a real run (a value per epoch and metric); a bigger file starting
# with "{" is something else, and is refused before it is read into memory
MAX_BYTES = 64 << 20
_ENTRY = re.compile(r"""(['"])(?P<key>[^'"\n]{1,200})\1\s*:\s*\[(?P<values>[^\[\]{}]*)\]""")
# one list item: text up to a comma outside parentheses (`tensor(0.5, dtype=torch.float64)`)
_CELL = re.compile(r"(?:[^,()]|\([^()]*\))+")
_WRAPPED = re.compile(r"^[A-Za-z_][\w.]*\((?P<inner>[^()]*?)(?:,\s*\w+\s*=[^()]*)?\)$")


#: the format of per-epoch records (a JSON list of dicts); a History dict's is "keras-history"
RECORDS_FORMAT = "json-epoch-records"
FORMAT = "keras-history"
# a record's keys that are its place, not a curve
_RECORD_AXES = ("epoch", "epochs")
# the keys of lists of records that are one run's splits, read side by side (`train/loss`, `val/loss`)
_SPLIT_KEYS = {"train", "training", "val", "valid", "validation", "eval", "test"}
# the strings strict JSON writers put for non-finite numbers (DESIGN: "nan", "inf", "-inf")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf}
_NONFINITE |= {"-infinity": -math.inf}


class HistoryError(CSVLogError):
    """Not a History dict; the message names the file and says why."""


def is_history_name(name: str) -> bool:
    """A directory scan reads `*history*.json` and `*history*.txt` (`history.json`,
    `train_history.txt`) when they start like a History dict, and `*loss*.json` (`losses.json`,
    `is_losses_name`) too; other JSON and text files are not logs."""
    name = name.lower()
    return ("history" in name and name.endswith((".json", ".txt"))) or is_losses_name(name)


def is_losses_name(name: str) -> bool:
    """A JSON file named for the losses it holds (`losses.json`, `train_losses.json`): a dict of
    lists keyed by split alone (`{"train": [...], "val": [...]}`, held-out-14's
    RaniaMostafa0/vae-cnn-mnist) is read as those splits' losses (`read_history`)."""
    name = name.lower()
    return "loss" in name and name.endswith(".json")


def holds_lists(text: str) -> bool:
    """Whether `text` holds a key with a list of numbers (`"train": [0.9, ...`): a `*loss*.json`
    that does not (a loss's settings) is not a log."""
    return any(_CELL.search(m["values"]) for m in _ENTRY.finditer(text))


def looks_like_history(first_line: str) -> bool:
    """A History dict's text starts with `{` and a quoted key (JSON or Python's repr), or with
    `"{` (that repr saved as a JSON string); per-epoch records start with `[` and `{`."""
    return bool(re.match(r"""\s*("\{\s*['\\]|\{\s*(['"]|$)|\[\s*(\{|$))""", first_line))


def is_object_repr(first_line: str) -> bool:
    """`print(history)` rather than `print(history.history)`: the object's repr, no numbers
    (`<keras.src.callbacks.history.History object at 0x7f...>`)."""
    return bool(re.match(r"\s*<[\w.]*\bHistory object at 0x[0-9a-fA-F]+>", first_line))


def read_history(path: Path, notes: list[str] | None = None) -> tuple[str, dict[str, Scalars], list[str]]:
    """(format, scalars by metric, metric names) of a History dict or per-epoch records in `path`
    (format "keras-history" or `RECORDS_FORMAT`); x of each curve is the epoch (0-based, as
    Keras' CSVLogger writes it). Every curve of the file, whatever fit or head it belongs to:
    `history_fits` splits them. notes: if given, a line for each metric with values that are
    not numbers (left out of its curve)."""
    if path.stat().st_size > MAX_BYTES:
        raise HistoryError(f"{path} starts like a Keras History dict but holds over {MAX_BYTES >> 20} MiB: not one")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    data = _json(text)
    if isinstance(data, str):  # json.dump(str(history.history), f): the repr inside a JSON string
        text, data = data, None
    out = _lists(path, text, notes)
    if is_losses_name(path.name) and out and {k.lower() for k in out} <= _SPLIT_KEYS:
        # `{"train": [...], "val": [...]}` in `losses.json`: the file's name says what the lists are
        out = {f"{key}_loss": curve for key, curve in out.items()}
        if notes is not None:
            notes.append(f"{path}: its lists are keyed by split alone; read as losses, the file's name says so")
    # records where the dict's own lists hold no loss (`{"steps": [...], "epochs": [{...}]}`)
    records = None if any("loss" in key.lower() for key in out) else _records(path, data)
    if records:
        return RECORDS_FORMAT, *_from_records(path, records)
    if not out:
        raise HistoryError(
            f"{path} starts like a Keras History dict but holds no metric with a list of numbers "
            "(expected {'loss': [0.9, 0.7, ...], 'val_loss': [...]}) and no list of per-epoch records "
            '(expected [{"epoch": 1, "loss": 0.9, "val_loss": 1.0}, ...])'
        )
    return FORMAT, out, list(out)


def history_fits(scalars: dict[str, Scalars]) -> dict[str, dict[str, Scalars]]:
    """The curves of each fit or head a History dict holds, by prefix ("" for the unprefixed
    `loss`): one entry (the dict whole) unless two or more prefixes each have their own
    `<prefix>loss` and `<prefix>val_loss`; then each of those prefixes' curves, named without
    their prefix (`fine_tune_val_loss` as `val_loss`), and curves of no such prefix
    (`test_loss`) in none."""
    prefixes = [key[: -len("val_loss")] for key in scalars if key.endswith("val_loss")]
    prefixes = [p for p in prefixes if (not p or p.endswith(("_", "/"))) and f"{p}loss" in scalars]
    if len(prefixes) < 2:
        return {"": scalars}
    fits: dict[str, dict[str, Scalars]] = {p: {} for p in prefixes}
    for key, curve in scalars.items():
        owner = max((p for p in prefixes if key.startswith(p)), key=len, default=None)
        if owner is not None:
            fits[owner][key[len(owner) :]] = curve
    return fits


def _json(text: str) -> Any:
    """The JSON value `text` holds; None where it is not JSON (a Python repr)."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def _lists(path: Path, text: str, notes: list[str] | None) -> dict[str, Scalars]:
    """The History dict's lists of numbers, by key, read with a pattern."""
    out: dict[str, Scalars] = {}
    for m in _ENTRY.finditer(text):
        key, cells = m["key"].strip(), [c.strip() for c in _CELL.findall(m["values"]) if c.strip()]
        values, bad = [], []
        for i, cell in enumerate(cells):
            try:
                values.append((i, float(_unwrap(cell))))
            except ValueError:
                bad.append((i, cell))
        if bad and notes is not None and values:
            notes.append(
                f"{path}: {key!r} holds {len(bad)} value(s) that are not numbers (first: epoch {bad[0][0]}, "
                f"{bad[0][1][:40]!r}); those epochs are left out of its curve"
            )
        if values and key not in out:
            x, y = zip(*values)
            out[key] = sorted_scalars(np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.float64))
    return out


def _records(path: Path, data: Any) -> list[dict] | None:
    """The per-epoch records of a JSON value: a list of dicts, or the one such list under a key
    of a dict (`{"history": [...]}`); None where there is none. HistoryError where a dict holds
    several such lists: which is the run, the file does not say."""
    if _is_records(data):
        return data
    found = [key for key, value in data.items() if _is_records(value)] if isinstance(data, dict) else []
    if len(found) > 1 and {k.lower() for k in found} <= _SPLIT_KEYS and len({len(data[k]) for k in found}) == 1:
        # one list per split (`{"train": [...], "val": [...]}`): each epoch's records side by side
        return [dict(zip(found, epoch)) for epoch in zip(*(data[k] for k in found))]
    if len(found) > 1:
        raise HistoryError(
            f"{path} holds {len(found)} lists of records ({', '.join(found[:6])}): which one is the run's "
            "per-epoch history it does not say; save that list alone (json.dump(records, f)) and analyze that file"
        )
    return data[found[0]] if found else None


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _from_records(path: Path, records: list[dict]) -> tuple[dict[str, Scalars], list[str]]:
    """(scalars by key, keys) of per-epoch records."""
    rows = [_flat(record) for record in records]
    x = _record_epochs(records)
    points: dict[str, list[tuple[int, float]]] = {}
    for at, row in zip(x, rows):
        for key, value in row.items():
            if key.lower() not in _RECORD_AXES:
                points.setdefault(key, []).append((at, value))
    if not points:
        raise HistoryError(f"{path} holds a list of {len(records)} records but no number in them")
    scalars = {
        key: sorted_scalars(np.asarray([a for a, _ in got], dtype=np.int64), np.asarray([v for _, v in got]))
        for key, got in points.items()
    }
    return scalars, list(scalars)


def _flat(record: dict, prefix: str = "") -> dict[str, float]:
    """A record's numbers by key, a nested dict's joined with `/`; text, lists and booleans left out
    (but the strings strict JSON writes for non-finite numbers: "nan", "inf")."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, str) and value.strip().lower() in _NONFINITE:
            out[name] = _NONFINITE[value.strip().lower()]
    return out


def _record_epochs(records: list[dict]) -> list[int]:
    """Each record's epoch from 0: its `epoch` where every record has a whole, increasing one
    (from 1 where none is 0, as most loops print them), else its place in the list."""
    epochs = [record.get("epoch") for record in records]
    whole = all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in epochs)
    if whole and all(b > a for a, b in zip(epochs, epochs[1:])):
        first = 0 if 0 in epochs else 1
        return [e - first for e in epochs]
    return list(range(len(records)))


def _unwrap(cell: str) -> str:
    """`np.float32(0.5)` -> `0.5`, `tensor(0.5, dtype=...)` -> `0.5`, `'0.5'` -> `0.5`."""
    m = _WRAPPED.match(cell)
    cell = m["inner"] if m else cell
    return cell.strip().strip("'\"")
