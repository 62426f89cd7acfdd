"""Reading Hugging Face `Trainer`'s `trainer_state.json`: its `log_history`.

The Trainer saves the file beside every checkpoint (and repositories commit it with the model):
one `log_history` entry per logging step (`loss`, `learning_rate`, `grad_norm`, `epoch`,
`step`), one per evaluation (`eval_loss`, `eval_<metric>`, `eval_runtime`, ..., `epoch`,
`step`), and a last summary (`train_loss`, the mean over the whole run, with `train_runtime`).
The curves are named as the Trainer's TensorBoard callback names them (`train/loss`,
`eval/loss`, `train/learning_rate`, `eval/accuracy`), so the tag rules read both logs alike;
x is the step. The summary entry is left out. Each entry's fractional `epoch` (2.4: four tenths
into the third pass over the data) is kept as the curve `train/epoch`, as the TensorBoard callback
writes it, so that a finding named by its step can say which epoch that was.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.analyze.events import Scalars, sorted_scalars
from mlcheck.errors import CSVLogError

if TYPE_CHECKING:
    from collections.abc import Iterator

#: the name the Trainer saves it under
FILE_NAME = "trainer_state.json"
FORMAT = "hf-trainer-state"
# a run of a million logging steps writes ~150 MB; a larger file is refused before it is read
MAX_BYTES = 256 << 20
# the key only a trainer state's head holds (its keys are written sorted: it comes early)
_MARK = '"log_history"'
# keys of an entry that are no curve: the axes, and the end-of-training summary's
_NOT_CURVES = {"step", "epoch", "total_flos", "num_input_tokens_seen"}
#: the tag of the Trainer's fractional epoch at each logged step (its TensorBoard callback's name)
EPOCH_TAG = "train/epoch"
_SUMMARY = "train_runtime"
# steps are whole numbers; beyond 2**53 a float no longer holds one exactly (as for CSV steps)
_MAX_STEP = 2**53


#: LLaMA-Factory's log of a Trainer run (`LogCallback`): one JSON object a line, per logging step
#: (`current_steps`, `total_steps`, `loss`, `lr`, `epoch`, `percentage`, times) and per
#: evaluation (`eval_loss`), written beside the Trainer's own trainer_state.json
TRAINER_LOG_NAME = "trainer_log.jsonl"
TRAINER_LOG_FORMAT = "llamafactory-trainer-log"
#: the formats read as a Trainer's: rows are evaluations, the run a fine-tune
FORMATS = (FORMAT, TRAINER_LOG_FORMAT)
# LLaMA-Factory's keys that are no curve (progress and times), and its names of the Trainer's
_TRAINER_LOG_SKIP = {"total_steps", "percentage", "elapsed_time", "remaining_time", "throughput", "total_tokens"}
_TRAINER_LOG_KEYS = {"current_steps": "step", "lr": "learning_rate"}
_TRAINER_LOG_MARK = re.compile(r'\s*\{[^\n]*"current_steps"\s*:')
# `json.dump(trainer.state.log_history, f)`: the list alone, its first entry a logging step's or an
# evaluation's (each holds "step" and "epoch")
_LOG_HISTORY_MARK = re.compile(r'\s*\[\s*\{[^\[\]]*"step"\s*:')


def read_trainer(
    path: Path, head: str, notes: list[str] | None = None
) -> tuple[str, dict[str, Scalars], list[str]] | None:
    """A Trainer's log (`trainer_state.json`, LLaMA-Factory's `trainer_log.jsonl`) read, or None
    when `head` (the file's first characters) is neither's."""
    if is_trainer_log(path, head):
        return read_trainer_log(path, notes)
    if is_trainer_state(path, head):
        return read_trainer_state(path, notes)
    if is_log_history(head):
        return read_trainer_state(path, notes)
    return None


def is_log_history(head: str) -> bool:
    """A Trainer's `log_history` list saved alone (`json.dump(trainer.state.log_history, f)`)."""
    return bool(_LOG_HISTORY_MARK.match(head))


def is_trainer_log(path: Path, head: str) -> bool:
    """LLaMA-Factory's `trainer_log.jsonl` (by name), or JSON lines whose first names `current_steps`."""
    return path.name == TRAINER_LOG_NAME or bool(_TRAINER_LOG_MARK.match(head))


def read_trainer_log(path: Path, notes: list[str] | None = None) -> tuple[str, dict[str, Scalars], list[str]]:
    """(TRAINER_LOG_FORMAT, scalars by tag, tags) of LLaMA-Factory's `trainer_log.jsonl`, its
    entries renamed as the Trainer's log_history names them (`current_steps` the step, `lr` the
    learning rate) and read as a trainer state's; CSVLogError when no line is a JSON object."""
    if path.stat().st_size > MAX_BYTES:
        raise CSVLogError(f"{path} holds over {MAX_BYTES >> 20} MiB: not a LLaMA-Factory trainer_log.jsonl")
    history: list = []
    bad = 0
    for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(entry, dict):
            history.append({_TRAINER_LOG_KEYS.get(k, k): v for k, v in entry.items() if k not in _TRAINER_LOG_SKIP})
    if not history:
        raise CSVLogError(
            f"{path} holds no JSON object a line: not LLaMA-Factory's trainer_log.jsonl (one object per logging "
            "step with current_steps and loss)"
        )
    if bad and notes is not None:
        notes.append(f"{path}: {bad} line(s) that are not JSON left out")
    return TRAINER_LOG_FORMAT, *_scalars(path, history, notes)


def is_trainer_state(path: Path, head: str) -> bool:
    """A `trainer_state.json` (by name), or a JSON file whose head holds `log_history`."""
    return path.name == FILE_NAME or (head.lstrip().startswith("{") and _MARK in head)


def read_trainer_state(path: Path, notes: list[str] | None = None) -> tuple[str, dict[str, Scalars], list[str]]:
    """(FORMAT, scalars by tag, tags) of a trainer state, or of its `log_history` list saved alone;
    CSVLogError when it holds none.

    notes: if given, a line is appended when entries with values but no usable step (missing,
    text, NaN, -1, 2.5, 1e30) were left out: the rest of the history is read."""
    if path.stat().st_size > MAX_BYTES:
        raise CSVLogError(f"{path} holds over {MAX_BYTES >> 20} MiB: not a Trainer's trainer_state.json")
    try:
        state = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CSVLogError(f"{path}: not JSON ({exc})") from None
    # the list alone: `json.dump(trainer.state.log_history, f)`
    history = state.get("log_history") if isinstance(state, dict) else state
    if not isinstance(history, list):
        raise CSVLogError(f"{path} holds no `log_history` list: not a Hugging Face Trainer's trainer_state.json")
    return FORMAT, *_scalars(path, history, notes)


def _scalars(path: Path, history: list, notes: list[str] | None) -> tuple[dict[str, Scalars], list[str]]:
    """(scalars by tag, tags) of a Trainer's log_history entries; CSVLogError when none holds a value."""
    points, stepless, text = _points(history)
    if notes is not None:
        notes.extend(_text_values(path, text))
    if stepless:
        index, step = stepless[0]
        said = (
            f"{len(stepless)} log_history entr{'y' if len(stepless) == 1 else 'ies'} without a step number "
            f"(a whole number from 0 to 2**53) (first: entry {index}, step {step!r})"
        )
        if not points:
            raise CSVLogError(f"{path}: no logged value can be placed: {said}")
        if notes is not None:
            notes.append(f"{path}: {said} left out")
    if not points:
        raise CSVLogError(f"{path}: its log_history holds no logged values (a run stopped before its first log?)")
    scalars = {}
    for tag, got in points.items():
        steps, values = zip(*got)
        scalars[tag] = sorted_scalars(np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64))
    return scalars, list(scalars)


def _points(
    history: list,
) -> tuple[dict[str, list[tuple[int, float]]], list[tuple[int, object]], dict[str, list[Any]]]:
    """(step, value) points by tag; (entry index, its step) of each entry left out for its step;
    [count, first entry index, first value] by key, of the values that are text, not numbers."""
    points: dict[str, list[tuple[int, float]]] = {}
    stepless: list[tuple[int, object]] = []
    text: dict[str, list[Any]] = {}
    for index, entry in enumerate(history):
        if not isinstance(entry, dict) or _SUMMARY in entry:
            continue
        _count_text(entry, index, text)
        values = list(_curve_values(entry))
        step = _step(entry.get("step"))
        if step is None:
            if values:
                stepless.append((index, entry.get("step")))
            continue
        for key, value in values:
            tag = f"eval/{key[5:]}" if key.startswith("eval_") else f"train/{key}"
            points.setdefault(tag, []).append((step, value))
        epoch = entry.get("epoch")
        if values and _is_number(epoch) and math.isfinite(epoch) and epoch >= 0:
            points.setdefault(EPOCH_TAG, []).append((step, float(epoch)))
    return points, stepless, text


def _count_text(entry: dict, index: int, text: dict[str, list[Any]]) -> None:
    for key, value in entry.items():
        if key not in _NOT_CURVES and isinstance(value, str):
            if key not in text:
                text[key] = [0, index, value]
            text[key][0] += 1


def _text_values(path: Path, text: dict[str, list[Any]]) -> Iterator[str]:
    """A note per key whose values are text in some entries ("nan", "0.53", "tensor(0.5)"):
    the Trainer logs numbers, so such an entry was written by other code, and a loss that
    became NaN there would otherwise pass unseen."""
    for key, (count, index, value) in text.items():
        yield (
            f"{path}: {key!r} holds text, not a number, in {count} log_history entr{'y' if count == 1 else 'ies'} "
            f"(first: entry {index}, {value[:40]!r}); those values are left out of its curve"
        )


def _curve_values(entry: dict) -> Iterator[tuple[str, float]]:
    for key, value in entry.items():
        if key not in _NOT_CURVES and _is_number(value):
            yield key, float(value)


def _step(value: object) -> int | None:
    """An entry's step as an int; None when it is none (missing, text, NaN, inf, -1, 2.5, 1e30)."""
    if not _is_number(value) or not 0 <= value < _MAX_STEP or value != int(value):
        return None
    return int(value)


def _is_number(value: object) -> bool:
    # json reads NaN and Infinity (as the Trainer writes a NaN loss) as floats: curves keep them
    return isinstance(value, (int, float)) and not isinstance(value, bool)
