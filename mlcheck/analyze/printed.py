"""Reading a training log printed line by line in nanoGPT's style, saved as text (`train.log`,
`out.txt`, `python train.py | tee log.txt`):

    iter 0: loss 4.2874, time 35.21ms, mfu -100.00%
    step 250: train loss 1.9688, val loss 2.0731
    step   12/5000 | train loss 3.4512 | lr 6.0e-04 | norm 1.2 | ...   (llm.c)

A line starting `iter N:` or `step N[/M]:`/`|` is a record at step N; in it, `loss X` is the
training loss of that step, `val loss X` (or `val_loss`, `valid loss`) the validation loss,
`train loss X` beside a validation loss the training loss estimated at the evaluation (named
`train_loss_estimate`, not read as the loss: the step stream is), and `lr X` the learning rate.
Other lines (model summaries, warnings) are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mlcheck.analyze.events import Scalars, sorted_scalars
from mlcheck.errors import CSVLogError

FORMAT = "printed-log"
MAX_BYTES = 256 << 20
_RECORD = re.compile(r"^\s*(?:iter|step)\s+(\d+)\s*(?:/\s*\d+\s*)?[:|]\s*(.*)$", re.IGNORECASE)
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf)"
_PAIR = re.compile(r"\b(train[ _]loss|val(?:id|idation)?[ _]loss|loss|lr)\s*[:=]?\s*" + _NUMBER, re.IGNORECASE)


def looks_printed(head: str) -> bool:
    """Some of the first lines of `head` are `iter N: ... loss X` / `step N: ... loss X` records."""
    lines = [line for line in head.splitlines()[:50] if line.strip()]
    return any(_RECORD.match(line) and _PAIR.search(line) for line in lines)


def read_printed(path: Path) -> tuple[str, dict[str, Scalars], list[str]]:
    """(FORMAT, scalars by name, names); CSVLogError when no record holds a loss."""
    if path.stat().st_size > MAX_BYTES:
        raise CSVLogError(f"{path} holds over {MAX_BYTES >> 20} MiB: not a printed training log")
    points: dict[str, list[tuple[int, float]]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _RECORD.match(line)
        if not m:
            continue
        step = int(m[1])
        pairs = {_name(k): float(v) for k, v in _PAIR.findall(m[2])}
        if "val_loss" in pairs and "train_loss" in pairs:
            pairs["train_loss_estimate"] = pairs.pop("train_loss")
        for name, value in pairs.items():
            points.setdefault(name, []).append((step, value))
    if not any(k in points for k in ("loss", "train_loss", "val_loss")):
        raise CSVLogError(f"{path}: printed `iter N:`/`step N:` lines, but none holds a loss")
    scalars = {
        k: sorted_scalars(np.asarray([s for s, _ in got], dtype=np.int64), np.asarray([v for _, v in got]))
        for k, got in points.items()
    }
    return FORMAT, scalars, list(scalars)


def _name(key: str) -> str:
    key = key.lower().replace(" ", "_")
    if key.startswith("val"):
        return "val_loss"
    return key
