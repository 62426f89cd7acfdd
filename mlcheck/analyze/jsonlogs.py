"""Reading training logs written as JSON lines, one object a line: detectron2's `metrics.json`,
MMDetection 2.x's `<timestamp>.log.json`, MMEngine's `vis_data/scalars.json` (MMDetection 3,
MMPose, MMPretrain, MMSegmentation), and other JSON lines with a step.

- detectron2 (`output/metrics.json`, its `JSONWriter`): a line every `period` iterations with
  `iteration`, `total_loss` (the loss the optimiser minimised, the median over the period),
  its terms (`loss_cls`, `loss_box_reg`, ...), `lr`, times; an evaluation adds
  `bbox/AP`, `segm/AP`, ... to a line (or writes a line of its own). x is `iteration`; the
  evaluation results are read as validation metrics (`val/bbox_AP`); a validation loss logged
  by a hook (`validation_loss`, `val_loss`) by its name.
- MMDetection 2.x (`work_dirs/<config>/<timestamp>.log.json`, `TextLoggerHook`): a first line of
  `env_info`/`config`, then `{"mode": "train", "epoch": e, "iter": i, "lr", "loss", ...}` every
  `interval` iterations of an epoch (i counts from 1 in each epoch) and `{"mode": "val", ...}`
  after an evaluation (`bbox_mAP`, ..., and `loss` where the workflow ran a validation pass).
  x is the iteration counted over the whole run (each epoch's iterations taken as the last `iter`
  it logged); the validation entries are read under `val/` at the end of their epoch.
- MMEngine (`<timestamp>/vis_data/scalars.json`, `LocalVisBackend`): training lines with `step`
  (the iteration), `loss`, `lr`, and `epoch` in an epoch-based loop; validation lines without a
  loss (`coco/bbox_mAP`, `accuracy/top1`, `mIoU`, ...) whose `step` is the epoch in an
  epoch-based loop: placed at that epoch's last training step and read under `val/`.
- wandb's `wandb-history.jsonl` (wandb before 0.10; later versions keep the history in the run's
  `run-<id>.wandb`, see `mlcheck.analyze.wandb`): x is `_step`; `_runtime`, `_timestamp` left out.
- Other JSON lines: x is the first of `step`, `global_step`, `iteration`, `iter`, `epoch` that the
  line holds, else the line's number; every key a number is a curve, named as written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck.analyze.events import Scalars, sorted_scalars
from mlcheck.errors import CSVLogError

# the name detectron2's JSONWriter, MMEngine's LocalVisBackend and MMDetection 2.x write
DETECTRON2_NAME = "metrics.json"
MMENGINE_NAME = "scalars.json"
MMDET_SUFFIX = ".log.json"
DETECTRON2 = "detectron2-json"
MMDET = "mmdet-log-json"
MMENGINE = "mmengine-json"
GENERIC = "json-lines"
# what wandb before 0.10 wrote into a run's folder (`wandb/run-*/wandb-history.jsonl`, later
# `files/`), one line per `wandb.log()` call: `_step`, `_runtime`, `_timestamp` and the logged keys
WANDB_HISTORY_NAME = "wandb-history.jsonl"
WANDB_HISTORY = "wandb-history"
# larger than the log of any real run (a line every 20 iterations of a million-iteration run is
# ~50 MB); a larger file is refused before it is read
MAX_BYTES = 512 << 20
# what detectron2's evaluators name their results: `bbox/AP`, `segm/AP50`, `sem_seg/mIoU`
_D2_EVAL = re.compile(r"^(bbox|segm|keypoints|sem_seg|panoptic_seg|[a-z_]+_eval)/", re.IGNORECASE)
# axes and bookkeeping, never a curve
_AXES = ("step", "global_step", "iteration", "iter", "epoch")
_SKIP = {"mode", "memory", "data_time", "time", "eta_seconds", "eta", "exp_name", "seed", "env_info", "config"}
_OBJECT_LINE = re.compile(r"\s*\{.*\}\s*$")


def is_json_lines(path: Path, head: str) -> bool:
    """One JSON object a line: the first two non-empty lines of `head` are objects (a
    `json.dump` of a dict, one line or indented, is not), or, for the names detectron2,
    MMEngine and MMDetection write, the first."""
    lines = [line for line in head.splitlines()[:-1] if line.strip()][:2]  # the last may be cut
    objects = [bool(_OBJECT_LINE.match(line)) and _object(line) is not None for line in lines]
    named = is_json_lines_name(path.name)
    return bool(objects) and all(objects) and (len(objects) == 2 or named)


def is_json_lines_name(name: str) -> bool:
    """The names a directory search reads as JSON lines (when they are): detectron2's, MMEngine's
    and MMDetection 2.x's (LLaMA-Factory's `trainer_log.jsonl` lies beside the trainer_state.json
    it repeats: not searched)."""
    return name in (DETECTRON2_NAME, MMENGINE_NAME, WANDB_HISTORY_NAME) or name.endswith(MMDET_SUFFIX)


def read_json_lines(path: Path, notes: list[str] | None = None) -> tuple[str, dict[str, Scalars], list[str]]:
    """(format, scalars by tag, tags) of a JSON-lines log; CSVLogError when no line holds a number."""
    if path.stat().st_size > MAX_BYTES:
        raise CSVLogError(f"{path} holds over {MAX_BYTES >> 20} MiB: not a training log of JSON lines")
    entries: list[dict] = []
    bad = 0
    for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        if not line.strip():
            continue
        entry = _object(line)
        if entry is None:
            bad += 1
        else:
            entries.append(entry)
    if bad and notes is not None:
        notes.append(f"{path}: {bad} line(s) that are not a JSON object left out")
    if path.name == WANDB_HISTORY_NAME:
        fmt, points = WANDB_HISTORY, _wandb_history(entries)
    elif any("iteration" in e for e in entries):
        fmt, points = DETECTRON2, _detectron2(entries)
    elif any(e.get("mode") in ("train", "val") for e in entries):
        fmt, points = MMDET, _mmdet(entries)
    elif any("step" in e for e in entries) and any(_has_loss(e) for e in entries):
        fmt, points = MMENGINE, _mmengine(entries)
    else:
        fmt, points = GENERIC, _generic(entries)
    if not points:
        keys = sorted({k for e in entries for k in e})[:12]
        raise CSVLogError(
            f"{path}: JSON lines, but no line holds a number against a step (keys: {', '.join(keys) or 'none'})"
        )
    scalars = {
        tag: sorted_scalars(np.asarray([s for s, _ in got], dtype=np.int64), np.asarray([v for _, v in got]))
        for tag, got in points.items()
    }
    return fmt, scalars, list(scalars)


def _object(line: str) -> dict | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _number(value: Any) -> bool:
    # json reads NaN and Infinity as floats: a NaN loss is kept
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _step(value: Any) -> int | None:
    if not _number(value) or not 0 <= value < 2**53 or value != int(value):
        return None
    return int(value)


def _has_loss(entry: dict) -> bool:
    return any(k == "loss" or k.startswith("loss") or k.endswith("loss") for k in entry if _number(entry[k]))


def _add(points: dict[str, list[tuple[int, float]]], tag: str, step: int, value: Any) -> None:
    if _number(value):
        points.setdefault(tag, []).append((step, float(value)))


def _detectron2(entries: list[dict]) -> dict[str, list[tuple[int, float]]]:
    points: dict[str, list[tuple[int, float]]] = {}
    for entry in entries:
        step = _step(entry.get("iteration"))
        if step is None:
            continue
        for key, value in entry.items():
            if key in _SKIP or key == "iteration":
                continue
            if _D2_EVAL.match(key):
                task, _, metric = key.partition("/")
                _add(points, f"val/{task}_{metric}", step, value)
            elif "/" not in key:  # `fast_rcnn/cls_accuracy`, `rpn/num_pos_anchors`: batch statistics
                _add(points, key, step, value)
    return points


def _mmdet(entries: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """MMDetection 2.x: `iter` counts from 1 in each epoch; the run's iteration is the sum of the
    epochs before (each the last `iter` its training entries logged) and the entry's `iter`."""
    per_epoch: dict[int, int] = {}
    for entry in entries:
        epoch, it = _step(entry.get("epoch")), _step(entry.get("iter"))
        if entry.get("mode") == "train" and epoch is not None and it is not None:
            per_epoch[epoch] = max(per_epoch.get(epoch, 0), it)
    start, before = {}, 0
    for epoch in sorted(per_epoch):
        start[epoch], before = before, before + per_epoch[epoch]
    points: dict[str, list[tuple[int, float]]] = {}
    for entry in entries:
        epoch, it = _step(entry.get("epoch")), _step(entry.get("iter"))
        if epoch is None or epoch not in start:
            continue
        if entry.get("mode") == "train" and it is not None:
            step = start[epoch] + it
            _add(points, "epoch", step, epoch - 1)  # Lightning's epoch counter, from 0
            for key, value in entry.items():
                if key not in _SKIP and key not in _AXES:
                    _add(points, key, step, value)
        elif entry.get("mode") == "val":
            step = start[epoch] + per_epoch[epoch]
            for key, value in entry.items():
                if key not in _SKIP and key not in _AXES and key != "lr":
                    _add(points, f"val/{key}", step, value)
    return points


def _mmengine(entries: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """MMEngine: a training entry holds a loss; a validation entry none, and its `step` is the
    epoch where the training entries name an epoch (an epoch-based loop)."""
    last_of_epoch: dict[int, int] = {}
    for entry in entries:
        step, epoch = _step(entry.get("step")), _step(entry.get("epoch"))
        if _has_loss(entry) and step is not None and epoch is not None:
            last_of_epoch[epoch] = max(last_of_epoch.get(epoch, 0), step)
    points: dict[str, list[tuple[int, float]]] = {}
    for entry in entries:
        step = _step(entry.get("step"))
        if step is None:
            continue
        if _has_loss(entry):
            epoch = _step(entry.get("epoch"))
            if epoch is not None:
                _add(points, "epoch", step, epoch - 1)
            for key, value in entry.items():
                if key not in _SKIP and key not in _AXES:
                    _add(points, key, step, value)
        else:
            at = last_of_epoch.get(step, step) if last_of_epoch else step
            for key, value in entry.items():
                if key not in _SKIP and key not in _AXES:
                    _add(points, "val/" + key.replace("/", "_"), at, value)
    return points


def _wandb_history(entries: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """wandb's history lines: every number against the line's `_step` (its rank where it has
    none); wandb's own keys (`_runtime`, `_timestamp`) are no curves, a logged `epoch` is one."""
    points: dict[str, list[tuple[int, float]]] = {}
    for number, entry in enumerate(entries):
        step = _step(entry.get("_step"))
        step = number if step is None else step
        for key, value in entry.items():
            if not key.startswith("_"):
                _add(points, key, step, value)
    return points


def _generic(entries: list[dict]) -> dict[str, list[tuple[int, float]]]:
    points: dict[str, list[tuple[int, float]]] = {}
    for number, entry in enumerate(entries):
        axis = next((a for a in _AXES if _step(entry.get(a)) is not None), None)
        step = _step(entry[axis]) if axis is not None else number
        for key, value in entry.items():
            if key != axis and key not in _SKIP:
                _add(points, key, step, value)
    return points
