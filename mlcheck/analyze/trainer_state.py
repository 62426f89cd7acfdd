"""Reading Hugging Face `Trainer`'s `trainer_state.json`: its `log_history`.

The Trainer saves the file beside every checkpoint (and repositories commit it with the model):
one `log_history` entry per logging step (`loss`, `learning_rate`, `grad_norm`, `epoch`,
`step`), one per evaluation (`eval_loss`, `eval_<metric>`, `eval_runtime`, ..., `epoch`,
`step`), and a last summary (`train_loss`, the mean over the whole run, with `train_runtime`).
The curves are named as the Trainer's TensorBoard callback names them (`train/loss`,
`eval/loss`, `train/learning_rate`, `eval/accuracy`), so the tag rules read both logs alike;
x is the step. The summary entry is left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mlcheck.analyze.events import Scalars, sorted_scalars
from mlcheck.errors import CSVLogError

#: the name the Trainer saves it under
FILE_NAME = "trainer_state.json"
FORMAT = "hf-trainer-state"
# a run of a million logging steps writes ~150 MB; a larger file is refused before it is read
MAX_BYTES = 256 << 20
# the key only a trainer state's head holds (its keys are written sorted: it comes early)
_MARK = '"log_history"'
_HEAD_CHARS = 1 << 16
# keys of an entry that are no curve: the axes, and the end-of-training summary's
_NOT_CURVES = {"step", "epoch", "total_flos", "num_input_tokens_seen"}
_SUMMARY = "train_runtime"


def is_trainer_state(path: Path, head: str) -> bool:
    """A `trainer_state.json` (by name), or a JSON file whose head holds `log_history`."""
    return path.name == FILE_NAME or (head.lstrip().startswith("{") and _MARK in head)


def looks_like_trainer_state(path: Path) -> bool:
    """For a directory scan: the file's head is a trainer state's. OSError: it cannot be read."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        head = fh.read(_HEAD_CHARS)
    return head.lstrip().startswith("{") and _MARK in head


def read_trainer_state(path: Path) -> tuple[str, dict[str, Scalars], list[str]]:
    """(FORMAT, scalars by tag, tags) of a trainer state; CSVLogError when it holds none."""
    if path.stat().st_size > MAX_BYTES:
        raise CSVLogError(f"{path} holds over {MAX_BYTES >> 20} MiB: not a Trainer's trainer_state.json")
    try:
        state = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CSVLogError(f"{path}: not JSON ({exc})") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise CSVLogError(f"{path} holds no `log_history` list: not a Hugging Face Trainer's trainer_state.json")
    points: dict[str, list[tuple[int, float]]] = {}
    for entry in history:
        if not isinstance(entry, dict) or _SUMMARY in entry or not _is_number(entry.get("step")):
            continue
        step = int(entry["step"])
        for key, value in entry.items():
            if key in _NOT_CURVES or not _is_number(value):
                continue
            tag = f"eval/{key[5:]}" if key.startswith("eval_") else f"train/{key}"
            points.setdefault(tag, []).append((step, float(value)))
    if not points:
        raise CSVLogError(f"{path}: its log_history holds no logged values (a run stopped before its first log?)")
    scalars = {}
    for tag, got in points.items():
        steps, values = zip(*got)
        scalars[tag] = sorted_scalars(np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64))
    return FORMAT, scalars, list(scalars)


def _is_number(value: object) -> bool:
    # json reads NaN and Infinity (as the Trainer writes a NaN loss) as floats: curves keep them
    return isinstance(value, (int, float)) and not isinstance(value, bool)
