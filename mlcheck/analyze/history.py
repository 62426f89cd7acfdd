"""Reading a Keras `History` dict saved as text: `json.dump(history.history, f)`,
`print(history.history)` pasted into a file, or its repr saved as a JSON string
(`json.dump(str(history.history), f)`).

Both hold one list per metric, one value per epoch: `{'loss': [0.9, 0.7], 'val_loss': [...]}`.
Python's repr may wrap values (`np.float32(0.5)`, `tensor(0.5)`) and write `nan`/`inf`, which
JSON and `ast.literal_eval` refuse, so the lists are read with a pattern, never evaluated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

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


class HistoryError(CSVLogError):
    """Not a History dict; the message names the file and says why."""


def is_history_name(name: str) -> bool:
    """A directory scan reads `*history*.json` and `*history*.txt` (`history.json`,
    `train_history.txt`) when they start like a History dict; other JSON and text files are
    not logs."""
    name = name.lower()
    return "history" in name and name.endswith((".json", ".txt"))


def looks_like_history(first_line: str) -> bool:
    """A History dict's text starts with `{` and a quoted key (JSON or Python's repr), bare or
    inside a JSON string (`json.dump(str(history.history), f)`: `"{'loss': [...]}"`)."""
    return bool(re.match(r"""\s*"?\{\s*(['"]|\\"|$)""", first_line))


def is_object_repr(first_line: str) -> bool:
    """`print(history)` rather than `print(history.history)`: the object's repr, no numbers
    (`<keras.src.callbacks.history.History object at 0x7f...>`)."""
    return bool(re.match(r"\s*<[\w.]*\bHistory object at 0x[0-9a-fA-F]+>", first_line))


def read_history(path: Path, notes: list[str] | None = None) -> tuple[str, dict[str, Scalars], list[str]]:
    """("keras-history", scalars by metric, metric names) of a History dict in `path`; x of each
    curve is the epoch (0-based, as Keras' CSVLogger writes it). notes: if given, a line for each
    metric with values that are not numbers (left out of its curve)."""
    if path.stat().st_size > MAX_BYTES:
        raise HistoryError(f"{path} starts like a Keras History dict but holds over {MAX_BYTES >> 20} MiB: not one")
    text = _unquoted(path.read_text(encoding="utf-8-sig", errors="replace"))
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
    if not out:
        raise HistoryError(
            f"{path} starts like a Keras History dict but holds no metric with a list of numbers "
            "(expected {'loss': [0.9, 0.7, ...], 'val_loss': [...]})"
        )
    return "keras-history", out, list(out)


def _unquoted(text: str) -> str:
    """The dict's text inside a JSON string (`json.dump(str(history.history), f)`), else `text`."""
    if not text.lstrip().startswith('"'):
        return text
    try:
        inner = json.loads(text)
    except ValueError:
        return text
    return inner if isinstance(inner, str) else text


def _unwrap(cell: str) -> str:
    """`np.float32(0.5)` -> `0.5`, `tensor(0.5, dtype=...)` -> `0.5`, `'0.5'` -> `0.5`."""
    m = _WRAPPED.match(cell)
    cell = m["inner"] if m else cell
    return cell.strip().strip("'\"")
