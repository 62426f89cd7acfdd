"""Reading Keras `CSVLogger` files and Lightning `CSVLogger` `metrics.csv` into scalar curves.

Keras writes one row per epoch (`epoch,accuracy,loss,val_accuracy,val_loss,...`) with any
delimiter it was given; Lightning writes step rows and epoch rows interleaved, each with `epoch`
and `step` and empty cells for what that row did not log.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck.analyze import history, jsonlogs, printed, trainer_state
from mlcheck.analyze.events import Scalars, sorted_scalars
from mlcheck.errors import CSVLogError

DELIMITERS = ",;\t|"
# a number written with a decimal comma (`0,2534`, `-1,5e-03`): read as one in a file whose
# delimiter is not a comma (a spreadsheet in a German or French locale saves `;` and `0,25`)
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+(?:[eE][+-]?\d+)?")
# a header longer than this is not a metrics CSV's: refuse it rather than read a whole file
# with no newline into memory (and sniff its delimiter)
MAX_HEADER_CHARS = 1 << 20
# steps and epochs are whole numbers; beyond 2**53 a float64 cell no longer holds one exactly
MAX_INDEX = 2.0**53


# A first line that starts with a date and a time (`2025-05-16 01:32:59,799 - INFO - ...`, as
# Python's logging writes) is a text log that a script named `training.log`, not a header
_TIMESTAMPED = re.compile(r"\s*\[?\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}")

# The first column of a pandas frame saved with its index: unnamed, or `Unnamed: 0` once read
# back and saved again; read as the epoch, or as `PANDAS_INDEX` (ignored) beside an epoch column
_PANDAS_INDEX = re.compile(r"|Unnamed: 0")
PANDAS_INDEX = "index"

# What Keras' `CSVLogger` writes for a column an epoch did not log (`val_*` in a fit without
# validation data, which a later fit appending to the file may have): an empty cell, not text.
KERAS_EMPTY = "NA"
# What fastai's `Recorder` writes for a value an epoch did not compute (`valid_loss` and the
# metrics of an epoch whose validation was skipped): an empty cell too
FASTAI_EMPTY = "#na#"


def sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: csv.Sniffer over `DELIMITERS`, else the most frequent."""
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


# A title line above the header: one word or phrase, no delimiter, not a number (held-out-14's
# ManuMollon261297/Speech-Digit-Detector writes `model_history_log` above its CSVLogger header)
_TITLE = re.compile(r"\s*[A-Za-z][\w .()-]*\s*")


def titled_header(first: str, second: str) -> bool:
    """Whether `first` is a title line above `second`, a metrics header: `first` a name with no
    delimiter, `second` two or more columns, none a number, one of them a loss."""
    if len(first) > 200 or not _TITLE.fullmatch(first) or any(d in first for d in DELIMITERS):
        return False
    if not second.strip() or len(second) > MAX_HEADER_CHARS:
        return False
    cells = [c.strip() for c in next(csv.reader([second], delimiter=sniff_delimiter(second)))]
    return len(cells) > 1 and all(_number(c) is None for c in cells) and any("loss" in c.lower() for c in cells)


def _past_title(path: Path, fh: io.TextIOBase, header_line: str, notes: list[str] | None) -> str:
    """The header line: the second where the first is a title above it (`titled_header`), `fh`
    then past both; else the first, `fh` left where it was."""
    after_first = fh.tell()
    second = fh.readline(MAX_HEADER_CHARS + 1)
    if not titled_header(header_line, second):
        fh.seek(after_first)
        return header_line
    if notes is not None:
        notes.append(f"{path}: its first line, {header_line.strip()!r}, is a title: the header was read from line 2")
    return second


def read_header(path: Path) -> list[str]:
    """The column names of a CSV file (empty when the first line is not a header; a title line
    above it, `titled_header`, is passed over)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        line = fh.readline(MAX_HEADER_CHARS + 1)
        if line.strip() and len(line) <= MAX_HEADER_CHARS:
            second = fh.readline(MAX_HEADER_CHARS + 1)
            if titled_header(line, second):
                line = second
    if not line.strip() or len(line) > MAX_HEADER_CHARS:
        return []
    delimiter = sniff_delimiter(line)
    return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]


def read_csv_log(
    path: Path, progress: Callable[[int], None] | None = None, notes: list[str] | None = None
) -> tuple[str, dict[str, Scalars], list[str]]:
    """(format, scalars by column, columns) of a Keras or Lightning CSV log, or of a Keras
    `History` dict saved as text (format "keras-history", see `mlcheck.analyze.history`).

    format is "lightning-csv" when there is a `step` column (x of each curve: the step; the
    `epoch` column becomes the "epoch" curve), else "test-tube-csv" when there is a `created_at`
    column and no step (Lightning 0.x's default `TestTubeLogger`: test_tube's `Experiment` stamps
    each row it logs with `created_at` and keeps the step in its event files only), else
    "keras-csv"; both of these last read as Keras' (x: the `epoch` column, or the row number).
    notes: if given, a line is appended for each column that holds numbers and,
    in some rows, text that is not one ("1.#QNAN", "tensor(0.5)"): those rows are left out of
    its curve, and a loss that became NaN there would otherwise pass unseen.

    Every row is one run here (a repeated epoch: the later row wins); `read_csv_runs` splits a
    file that several fits appended to.
    """
    fmt, runs, columns = read_csv_runs(path, progress, notes, split=False)
    return fmt, runs[0].scalars, columns


@dataclass(frozen=True)
class CSVRun:
    """The curves of one fit in a CSV log: `scalars` by column, read from its data rows
    `first_row` to `last_row` (1-based, as `_check_index` names them)."""

    scalars: dict[str, Scalars]
    first_row: int
    last_row: int
    #: the prefix of a History dict's curves that are this fit's or head's (`fine_tune_`), where
    #: the dict holds several (`history.history_fits`); None otherwise
    prefix: str | None = None


def read_csv_runs(
    path: Path,
    progress: Callable[[int], None] | None = None,
    notes: list[str] | None = None,
    *,
    split: bool = True,
) -> tuple[str, list[CSVRun], list[str]]:
    """As `read_csv_log`, but a Keras `CSVLogger` file that several fits wrote with
    `append=True` is one `CSVRun` per fit: Keras writes the header once and each new fit's
    epochs from its `initial_epoch` (0 unless given), so the epoch column falls back to the
    file's first epoch where a fit starts from scratch. A fall to a later epoch is a run
    resumed from a checkpoint: one run, whose repeated epochs take the later rows.
    """
    # bytes that are not UTF-8 are read as lone surrogates: in the head they refuse the file (a
    # CSV saved in Latin-1 or UTF-16 as much as a binary file); past it they cost their cells
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        header_line = fh.readline(MAX_HEADER_CHARS + 1)
        head = header_line + fh.read(4096)
        undecodable = _UNDECODABLE.search(head)
        if undecodable:
            packed = _packed(path)
            if packed:  # "saved in another encoding" misled: it is an archive to unpack
                what, how = packed
                raise CSVLogError(f"{path} is {what}, not a log: unpack it first ({how}) and give what it holds")
            raise CSVLogError(
                f"{path} is neither a TensorBoard event file nor a CSV text file (not UTF-8: byte "
                f"{_byte(undecodable[0]):#04x}); a log saved in another encoding is read once it is saved as UTF-8"
            )
        structured = _read_json_log(path, head, notes)
        if structured is not None:
            fmt, scalars, columns = structured
            return fmt, [CSVRun(scalars, 1, 0)], columns
        fh.seek(0)  # back to the first data row
        header_line = fh.readline(MAX_HEADER_CHARS + 1)
        if history.looks_like_history(header_line):
            fmt, scalars, columns = history.read_history(path, notes)
            fits = history.history_fits(scalars) if split else {"": scalars}
            runs = [
                CSVRun(
                    curves,
                    1,
                    max((len(c.steps) for c in curves.values()), default=0),
                    prefix if len(fits) > 1 else None,
                )
                for prefix, curves in fits.items()
            ]
            return fmt, runs, columns
        header_line = _past_title(path, fh, header_line, notes)
        columns, delimiter = _columns(path, header_line)
        reader = csv.reader(_counting(fh, progress), delimiter=delimiter)
        try:
            data, filled, text, repeats, wide, bad_bytes, commas = _read_cells(reader, columns, delimiter != ",")
        except csv.Error as exc:
            raise CSVLogError(f"{path}: unreadable CSV ({exc})") from None
    if not len(data[0]):
        raise CSVLogError(f"{path} has a header ({', '.join(columns)}) but no rows")
    columns = _name_index(columns, filled[0])
    if notes is not None:
        notes.extend(_undecodable_cells(path, bad_bytes))
        notes.extend(_text_cells(path, columns, text, filled))
        notes.extend(_repeated_header(path, repeats))
        notes.extend(_wide_rows(path, len(columns), wide))
        notes.extend(_repeated_columns(path, columns))
        notes.extend(_decimal_commas(path, delimiter, commas))
    # a name the header holds twice (two logs pasted side by side) is its first column's
    first = {c: k for k, c in reversed(list(enumerate(columns)))}
    arrays = {c: np.frombuffer(data[k], dtype=np.float64) if len(data[k]) else np.zeros(0) for c, k in first.items()}
    has = {c: np.frombuffer(bytes(filled[k]), dtype=np.uint8).astype(bool) for c, k in first.items()}
    lower = {c.lower(): c for c in columns}
    if "step" in lower:
        fmt = "lightning-csv"
        x = arrays[lower["step"]]
        skip = {lower["step"]}
    else:
        fmt = "test-tube-csv" if "created_at" in lower else "keras-csv"
        x, skip = _keras_axis(path, lower.get("epoch"), len(arrays[columns[0]]), arrays, has, notes)
    for column in ("step", "epoch"):
        if column in lower:
            _check_index(path, lower[column], arrays[lower[column]])
            dropped = _drop_negative(path, lower[column], arrays[lower[column]], has[lower[column]], notes)
            if dropped and np.isnan(x).all():
                raise CSVLogError(
                    f"{path}: every data row's {column} is negative ({dropped} rows); {column}s count from 0"
                )
    starts = fit_starts(x) if split and fmt == "keras-csv" and "epoch" in lower else [0]
    ends = [*starts[1:], len(x)]
    runs = [CSVRun(_scalars(arrays, has, x, skip, slice(a, b)), a + 1, b) for a, b in zip(starts, ends)]
    fmt, columns = _read_ultralytics(fmt, runs, columns)
    fmt = _read_fastai(fmt, runs, columns)
    return fmt, runs, columns


#: The format of a fastai `CSVLogger` file (`history.csv`)
FASTAI_FORMAT = "fastai-csv"
# fastai's `Recorder.metric_names` with validation and no training metrics (its default):
# `epoch`, `train_loss`, `valid_loss`, the metrics, `time` (fastai v1 and v2 alike)
_FASTAI_HEAD = ["epoch", "train_loss", "valid_loss"]


def _read_fastai(fmt: str, runs: list[CSVRun], columns: list[str]) -> str:
    """FASTAI_FORMAT when a Keras-like CSV's `columns` are a fastai `CSVLogger`'s (its metrics,
    computed on the validation set, read as `valid_<name>` in each run), else fmt.

    fastai names its metrics without a split (`accuracy`, `error_rate`) where only validation
    computes them (`Recorder(train_metrics=False)`, the default), and `train_<name>`,
    `valid_<name>` where both do; `time` (`00:23`) is no number."""
    if fmt != "keras-csv" or [c.lower() for c in columns[:3]] != _FASTAI_HEAD or columns[-1].lower() != "time":
        return fmt
    for run in runs:
        for name in columns[3:-1]:
            if name in run.scalars and not name.lower().startswith(("train_", "valid_")):
                run.scalars[f"valid_{name}"] = run.scalars.pop(name)
    return FASTAI_FORMAT


def _read_ultralytics(fmt: str, runs: list[CSVRun], columns: list[str]) -> tuple[str, list[str]]:
    """("ultralytics-csv", columns with the curves added) when a Keras-like CSV's `columns` are
    an Ultralytics `results.csv`'s (its loss summed from its terms in each run), else (fmt, columns)."""
    parts = ultralytics_parts(columns) if fmt == "keras-csv" else None
    if parts is None:
        return fmt, columns
    for run in runs:
        run.scalars.update(_ultralytics_curves(run.scalars, parts))
        rate = _ultralytics_rate(run.scalars)
        for column in [c for c in run.scalars if c.startswith(("metrics/", "x/lr", "lr/pg"))]:
            # validation metrics, not the training ones their names would say; the parameter
            # groups' learning rates (`x/lr2` would pass for an R^2), one of them read as `lr`
            del run.scalars[column]
        if rate is not None:
            run.scalars["lr"] = rate
    return ULTRALYTICS_FORMAT, [*columns, *(c for c in ULTRALYTICS_CURVES if c in runs[0].scalars)]


#: The learning-rate columns of a `results.csv`, one per optimizer parameter group
#: (`optimizer.param_groups[k]["lr"]` at the epoch's end): `x/lr{k}` (YOLOv5), `lr/pg{k}` (YOLOv8 on)
_ULTRALYTICS_RATES = ("x/lr", "lr/pg")


def _ultralytics_rate(scalars: dict[str, Scalars]) -> Scalars | None:
    """The weights' learning rate of a YOLO run: parameter group 1 (`x/lr1`, `lr/pg1`), else group 0.

    Ultralytics gives the biases a group of their own whose rate *falls* during the warm-up, from
    `warmup_bias_lr` (0.1) to `lr0`, while every other group's rises from 0 (`bias lr falls from
    0.1 to lr0, all other lrs rise from 0.0 to lr0` in each trainer's warm-up), and the groups'
    order moved between versions: YOLOv5's train.py before `smart_optimizer` (BN weights,
    weights with decay, biases; the bias group `j == 2`), YOLOv5's `smart_optimizer` and
    earlier Ultralytics (YOLOv8 on) `BaseTrainer.build_optimizer` (biases first, `Adam(g[2], ...)`, then
    `add_param_group` of the weights with decay and the BN weights; `j == 0`), and the current
    trainer (ultralytics/ultralytics@0001630: `optim.<name>(params=[weights with decay, BN
    weights, biases])`, the bias group told by `param_group == "bias"`; with MuSGD each group
    split in two, the first of each pair at 3x the rate). Group 0 is the biases' in most of
    them, group 1 in none: it is the weights with decay, or the BN weights (no decay, the same
    rate), or MuSGD's weights at the base rate. Read as group 0, a YOLO warm-up looked like a
    rate falling from 0.1 to `lr0`."""
    for prefix in _ULTRALYTICS_RATES:
        for group in (1, 0):
            if f"{prefix}{group}" in scalars:
                return scalars[f"{prefix}{group}"]
    return None


#: Ultralytics YOLO's `results.csv` (YOLOv5 and YOLOv8-11: `runs/detect/train/results.csv`): one
#: row per epoch, the loss written as its terms (`train/box_loss`, `train/cls_loss`,
#: `train/dfl_loss` or `train/obj_loss`, `train/seg_loss`, ...) and the same terms on the
#: validation set (`val/box_loss`, ...), the mAP under `metrics/`. The terms are already weighted
#: by their gains (Ultralytics multiplies each by `hyp.box`, `hyp.cls`, `hyp.dfl` before it logs
#: them), so their sum is the loss the optimiser minimised per image: read as `train/loss` and
#: `val/loss`; `metrics/mAP50-95(B)` (`metrics/mAP_0.5:0.95` in YOLOv5) as the validation mAP
#: (`val/mAP`). The other `metrics/` columns (precision, recall, mAP50), measured on the
#: validation set, are left out: read by name they would be taken for training metrics.
ULTRALYTICS_FORMAT = "ultralytics-csv"
ULTRALYTICS_CURVES = ("train/loss", "val/loss", "val/mAP", "lr")
# YOLOv10 writes each term twice, for its one-to-many and one-to-one heads: `train/box_om`, `train/box_oo`
_ULTRALYTICS_TERM = re.compile(r"^(train|val)/(([a-z0-9]+)_(?:loss|om|oo))$")
_ULTRALYTICS_MAP = ("metrics/mAP50-95(B)", "metrics/mAP_0.5:0.95", "metrics/mAP50-95(M)", "metrics/mAP50-95(P)")


def ultralytics_parts(columns: list[str]) -> tuple[list[str], list[str], str | None] | None:
    """(training loss terms, validation loss terms, mAP column) of an Ultralytics `results.csv`
    header, or None for another CSV: at least two `train/<term>_loss` columns (YOLOv10:
    `_om`/`_oo`), a box term among them, the same terms under `val/`, a `metrics/` column, and no plain `train/loss`."""
    terms: dict[str, list[str]] = {"train": [], "val": []}
    for column in columns:
        m = _ULTRALYTICS_TERM.match(column)
        if m:
            terms[m[1]].append(m[2])
    train, val = terms["train"], terms["val"]
    if (
        len(train) < 2
        or not any(t.startswith("box_") for t in train)
        or sorted(train) != sorted(val)
        or not any(c.startswith("metrics/") for c in columns)
        or "train/loss" in columns
    ):
        return None
    found = [c for c in _ULTRALYTICS_MAP if c in columns]
    return [f"train/{t}" for t in train], [f"val/{t}" for t in val], found[0] if found else None


#: The run's settings Ultralytics saves beside its results.csv: `args.yaml` (YOLOv8 and later;
#: `model:` the weights file or the architecture file it was built from, `pretrained:`) and
#: `opt.yaml` (YOLOv5; `weights:`, empty for `--weights '' --cfg yolov5s.yaml`, from scratch)
ULTRALYTICS_SETTINGS = ("args.yaml", "opt.yaml")
_WEIGHTS_FILE = (".pt", ".pth", ".torchscript")


def ultralytics_pretrained(path: Path) -> bool:
    """Whether the YOLO run whose `results.csv` is `path` started from trained weights, as the
    settings file beside it says: `model: yolov8n.pt` (or any weights file: a fine-tune of a
    previous run's `best.pt`) or `pretrained: <weights file>` (`YOLO("x.yaml").load("x.pt")`) in
    `args.yaml`, a non-empty `weights:` in YOLOv5's `opt.yaml`. A model built from an
    architecture file (`model: yolov8n.yaml`; its `pretrained: true` then loads nothing) or
    YOLOv5's `weights: ''` starts from random weights. True where no such file is beside it:
    Ultralytics' documented start is COCO-pretrained weights (`YOLO("yolo11n.pt")`, YOLOv5's
    `--weights yolov5s.pt` default), and its first loss then says nothing either way (a
    fine-tune on a new data set starts as high as some runs from scratch)."""
    for name in ULTRALYTICS_SETTINGS:
        settings = _top_level_yaml(path.with_name(name))
        if settings is None:
            continue
        if name == "opt.yaml":
            return settings.get("weights", "yolov5s.pt").lower().endswith(_WEIGHTS_FILE)
        model, start = settings.get("model", ""), settings.get("pretrained", "")
        return model.lower().endswith(_WEIGHTS_FILE) or start.lower().endswith(_WEIGHTS_FILE)
    return True


def ultralytics_augmented(path: Path) -> bool:
    """Whether the YOLO run whose `results.csv` is `path` trained on mosaics (`RunInfo.augmented_train`),
    as the settings beside it say. Not where `mosaic: 0` (`args.yaml`; YOLOv5's `hyp.yaml`, or
    the `hyp:` block of its `opt.yaml`): Ultralytics builds a mosaic with probability `mosaic`,
    so 0 builds none. Nor where `close_mosaic` equals `epochs` (`args.yaml`): Ultralytics turns
    the mosaics off at epoch `epochs - close_mosaic` (0-based), here the first; a larger
    `close_mosaic` matches no epoch and leaves them on for the whole run. True otherwise: mosaics
    are Ultralytics' default (`mosaic: 1.0`), with or without a settings file."""
    args = _top_level_yaml(path.with_name("args.yaml")) or {}
    close, epochs = _number(args.get("close_mosaic")), _number(args.get("epochs"))
    if close is not None and close == epochs:
        return False
    for name, block in (("args.yaml", None), ("hyp.yaml", None), ("opt.yaml", "hyp")):
        settings = _top_level_yaml(path.with_name(name), block)
        mosaic = _number(settings.get("mosaic")) if settings else None
        if mosaic is not None:
            return mosaic > 0
    return True


def _number(text: str | None) -> float | None:
    """A setting's value as a number; None where it is missing or no number."""
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _block(lines: list[str], key: str) -> list[str]:
    """The lines indented under the top-level `key:` (a nested mapping), stripped; none if no such key."""
    for k, line in enumerate(lines):
        if line.split(" #")[0].rstrip() == f"{key}:":
            inside = itertools.takewhile(lambda text: not text.strip() or text[0].isspace(), lines[k + 1 :])
            return [text.strip() for text in inside]
    return []


def _top_level_yaml(path: Path, block: str | None = None) -> dict[str, str] | None:
    """The `key: value` lines of a flat YAML file (Ultralytics' settings: one per line), values
    unquoted; a key whose value is a list (`weights:` then `- x.pt`) takes its first item. With
    `block`, the lines indented under that top-level key instead (YOLOv5's `opt.yaml` holds its
    `hyp:` settings so). None where the file is missing or unreadable (no YAML parser: `import
    mlcheck` needs numpy only)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    if block is not None:
        lines = _block(lines, block)
    out: dict[str, str] = {}
    last = None
    for line in lines:
        if line.startswith("- ") and last is not None and not out[last]:
            out[last] = line[2:].strip().strip("'\"").strip()
            continue
        key, sep, value = line.partition(":")
        if sep and key and not key[0].isspace() and key.strip() == key:
            last = key
            out[key] = value.split(" #")[0].strip().strip("'\"").strip()
    return out


def _ultralytics_curves(
    scalars: dict[str, Scalars], parts: tuple[list[str], list[str], str | None]
) -> dict[str, Scalars]:
    """`train/loss` and `val/loss`, the sums of their terms at the epochs where every term was
    written, and `val/mAP`."""
    train, val, map_column = parts
    out: dict[str, Scalars] = {}
    for name, terms in (("train/loss", train), ("val/loss", val)):
        curves = [scalars.get(t) for t in terms]
        if any(c is None for c in curves):
            continue
        steps = curves[0].steps
        for c in curves[1:]:
            steps = np.intersect1d(steps, c.steps)
        if not len(steps):
            continue
        total = sum(c.values[np.searchsorted(c.steps, steps)] for c in curves)
        out[name] = Scalars(steps, np.asarray(total, dtype=np.float64))
    if map_column is not None and map_column in scalars:
        out["val/mAP"] = scalars[map_column]
    return out


def _read_json_log(path: Path, head: str, notes: list[str] | None) -> tuple[str, dict[str, Scalars], list[str]] | None:
    """A log of JSON read (a Trainer's state or log, JSON lines of detectron2, MMDetection,
    MMEngine, ...) or a printed log (nanoGPT's), or None when `head` (the file's first
    characters) is none of them."""
    trainer = trainer_state.read_trainer(path, head, notes)
    if trainer is not None:
        return trainer
    if jsonlogs.is_json_lines(path, head):
        return jsonlogs.read_json_lines(path, notes)
    if printed.looks_printed(head):  # nanoGPT's `iter N: loss X` lines saved as text
        return printed.read_printed(path)
    return None


def _keras_axis(
    path: Path,
    epoch: str | None,
    rows: int,
    arrays: dict[str, np.ndarray],
    has: dict[str, np.ndarray],
    notes: list[str] | None,
) -> tuple[np.ndarray, set[str]]:
    """(x, columns that are no curve) of a Keras-like CSV: the `epoch` column, or the row number
    where there is none; the pandas index where `epoch` repeats in rows that are each an
    evaluation of their own (`_rows_are_evaluations`)."""
    if epoch is None:
        return np.arange(rows, dtype=np.float64), set()
    if not _rows_are_evaluations(arrays[epoch], arrays.get(PANDAS_INDEX), has):
        return arrays[epoch], {epoch}
    # the epoch counts something coarser than the rows (a setting swept, a fit's length) and the
    # frame's index counts each evaluation: the index is the run's axis
    if notes is not None:
        notes.append(
            f"{path}: its {epoch} column repeats in rows that each hold a full evaluation, beside an "
            "index that counts them: each row is read as an epoch"
        )
    return arrays[PANDAS_INDEX], {epoch, PANDAS_INDEX}


def _rows_are_evaluations(epochs: np.ndarray, index: np.ndarray | None, has: dict[str, np.ndarray]) -> bool:
    """Whether each row of a Keras-like CSV is an evaluation of its own although its epoch
    column repeats: a pandas index (`PANDAS_INDEX`) counts the rows up, every cell a number;
    the epoch column never falls (a fall is a new fit or a resume, `fit_starts`) but holds one
    value in consecutive rows; and those rows are filled alike (each a full row, not the
    training half and the validation half of one epoch, which the epoch joins). A
    `pd.DataFrame(rows).to_csv()` of a loop that logs `sub_epoch` evaluations under the
    number of epochs it was set to run (LyricLab's `training_stats.csv`) is such a file."""
    if index is None or len(index) < 2 or np.isnan(index).any() or np.isnan(epochs).any():
        return False
    if not (np.all(np.diff(index) > 0) and np.all(np.diff(epochs) >= 0)):
        return False
    repeated = np.flatnonzero(np.diff(epochs) == 0)
    if not len(repeated):
        return False
    filled = np.array([column for column in has.values()])  # columns x rows
    return bool(np.all(filled[:, repeated] == filled[:, repeated + 1]))


def fit_starts(epochs: np.ndarray) -> list[int]:
    """The rows where a fit starts in a Keras CSV's epoch column: row 0, and each row whose
    epoch falls back to the file's first epoch (a fit from scratch appended to the file)."""
    known = np.flatnonzero(~np.isnan(epochs))
    if len(known) < 2:
        return [0]
    values = epochs[known]
    falls = np.flatnonzero((values[1:] < values[:-1]) & (values[1:] == values[0])) + 1
    return [0, *(int(known[k]) for k in falls)]


def _scalars(
    arrays: dict[str, np.ndarray], has: dict[str, np.ndarray], x: np.ndarray, skip: set[str], rows: slice
) -> dict[str, Scalars]:
    """Each column's curve over `rows`, against `x`."""
    out: dict[str, Scalars] = {}
    x = x[rows]
    for column, values in arrays.items():
        if column in skip:
            continue
        # empty cells are rows that did not log this column; a "nan" cell is a real NaN loss
        present = has[column][rows] & ~np.isnan(x)
        if not present.any():
            continue
        out[column] = sorted_scalars(x[present].astype(np.int64), values[rows][present])
    return out


# what surrogateescape decodes a byte that is not UTF-8 to: U+DC80 to U+DCFF
_UNDECODABLE = re.compile("[\udc80-\udcff]")


# the first bytes of the archives logs are downloaded in: (magic, what it is, how to unpack it)
_ARCHIVES = (
    (b"\x1f\x8b", "gzip-compressed", "gunzip FILE, or tar -xzf FILE for a .tar.gz"),
    (b"PK\x03\x04", "a zip archive", "unzip FILE"),
    (b"BZh", "bzip2-compressed", "bunzip2 FILE, or tar -xjf FILE"),
    (b"\xfd7zXZ\x00", "xz-compressed", "unxz FILE, or tar -xJf FILE"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "unzstd FILE"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "7z x FILE"),
)


def _packed(path: Path) -> tuple[str, str] | None:
    """(what archive `path` is, how to unpack it), or None."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    for magic, what, how in _ARCHIVES:
        if head.startswith(magic):
            return what, how.replace("FILE", path.name)
    return None


def _byte(char: str) -> int:
    """The byte that surrogateescape read as `char`."""
    return ord(char) - 0xDC00


def _undecodable_cells(path: Path, bad_bytes: list[Any]) -> Iterable[str]:
    count, row, column, char = bad_bytes
    if count:
        yield (
            f"{path}: {count} cell(s) hold bytes that are not UTF-8 (first: data row {row}, column {column!r}, "
            f"byte {_byte(char):#04x}); those cells are left out (save the log as UTF-8 to read them)"
        )


def _text_cells(path: Path, columns: list[str], text: list[list[Any]], filled: list[bytearray]) -> Iterable[str]:
    """A note for each column that holds numbers and, in some rows, text that is not one."""
    for column, (count, row, cell), found in zip(columns, text, filled):
        if count and any(found):  # a column of text only is no metric
            yield (
                f"{path}: column {column!r} holds text that is not a number in {count} data row(s) "
                f"(first: row {row}, {cell[:40]!r}); those rows are left out of its curve"
            )


def _repeated_header(path: Path, repeats: list[int]) -> Iterable[str]:
    if repeats[0]:
        yield (
            f"{path}: its header line is repeated {repeats[0]} time(s) (first: after data row {repeats[1]}; "
            "logs appended one after another?); those lines are skipped"
        )


def _wide_rows(path: Path, width: int, wide: list[int]) -> Iterable[str]:
    if wide[0]:
        yield (
            f"{path}: {wide[0]} data row(s) hold more cells than the header's {width} columns (first: data row "
            f"{wide[1]}; a delimiter inside a value, or rows of another log?); the cells past the header's are "
            "left out"
        )


def _decimal_commas(path: Path, delimiter: str, commas: list[Any]) -> Iterable[str]:
    if commas[0]:
        yield (
            f"{path}: {commas[0]} number(s) written with a decimal comma (first: data row {commas[1]}, "
            f"{commas[2]!r}) were read with a decimal point ({delimiter!r}-separated, as a spreadsheet "
            "in a comma-decimal locale saves it)"
        )


def _repeated_columns(path: Path, columns: list[str]) -> Iterable[str]:
    for name in dict.fromkeys(c for c in columns if columns.count(c) > 1):
        where = [k + 1 for k, c in enumerate(columns) if c == name]
        yield (
            f"{path}: the header names {name!r} {len(where)} times (columns {', '.join(map(str, where))}): "
            f"column {where[0]} is read as {name!r}, the others are left out"
        )


def _columns(path: Path, header_line: str) -> tuple[list[str], str]:
    """(column names, delimiter) of a header line; CSVLogError when it is not a metrics header."""
    if len(header_line) > MAX_HEADER_CHARS:
        raise CSVLogError(f"{path}: its first line is longer than {MAX_HEADER_CHARS} characters: not a metrics CSV")
    if not header_line.strip():
        if path.stat().st_size > len(header_line):  # blank lines above the header: it is not empty
            raise CSVLogError(f"{path}: its first line is blank: a metrics CSV starts with its header line")
        raise CSVLogError(f"{path} is empty: no CSV header")
    if history.is_object_repr(header_line):
        raise history.HistoryError(
            f"{path} holds `print(history)`: the History object, not its numbers. Save "
            "`history.history` instead: json.dump(history.history, f), or print(history.history)"
        )
    if header_line.lstrip().startswith(("[", "{")):  # JSON, not a History dict: "[1" was a column
        raise CSVLogError(
            f"{path} holds JSON that is not a Keras History dict of lists ({header_line.strip()[:40]!r}); save "
            "`history.history`: json.dump(history.history, f)"
        )
    if _TIMESTAMPED.match(header_line):
        raise CSVLogError(
            f"{path} is a text log, not a metrics CSV (its first line starts with a time: "
            f"{header_line.strip()[:60]!r}); mlcheck reads the files a logger writes its numbers to: "
            "Keras' CSVLogger, Lightning's metrics.csv, TensorBoard event files"
        )
    delimiter = sniff_delimiter(header_line)
    columns = [c.strip() for c in next(csv.reader([header_line], delimiter=delimiter))]
    while len(columns) > 2 and not columns[-1]:  # a line ended by a delimiter (spreadsheet exports)
        columns.pop()
    if len(columns) > 1 and _PANDAS_INDEX.fullmatch(columns[0]) and all(columns[1:]):
        # `pd.DataFrame(history.history).to_csv(path)` writes the frame's index (0, 1, ...: the
        # epoch) first, unnamed (`Unnamed: 0` once read back and saved again): `_name_index`
        # reads it as the epoch once its cells are known
        columns[0] = PANDAS_INDEX
    if len(columns) < 2 or any(not c for c in columns):
        raise CSVLogError(
            f"{path} does not look like a metrics CSV (header {header_line.strip()[:80]!r}; "
            "columns separated by one of , ; tab |)"
        )
    return columns, delimiter


def _name_index(columns: list[str], index_filled: bytearray) -> list[str]:
    """pandas' index column (`PANDAS_INDEX`, named so by `_columns`: `,loss,val_loss` from
    `pd.DataFrame(history.history).to_csv("history.csv")`) is the epoch where the file has no
    `epoch` or `step` column and every index cell is a number (0, 1, ... for a History; a
    `pd.concat` of two fits' histories starts again at 0, one run per fit, as in a Keras CSV that
    two fits appended to); else it stays `PANDAS_INDEX`, which is no metric (dates, names)."""
    if columns[0] != PANDAS_INDEX:
        return columns
    names = {c.lower() for c in columns[1:]}
    if "epoch" in names or "step" in names or not all(index_filled):
        return columns
    return ["epoch", *columns[1:]]


def _drop_negative(path: Path, column: str, x: np.ndarray, has: np.ndarray, notes: list[str] | None) -> int:
    """Steps and epochs count from 0 (Keras, Lightning and the Trainer all do): a row whose
    step or epoch is negative (a hand-made log; a `-1` for an evaluation before training) is
    left out, with a note, rather than reported on as "epoch -2". `x` is changed in place.
    Returns how many rows were left out."""
    negative = np.flatnonzero(x < 0)
    if not len(negative):
        return 0
    first = int(negative[0])
    if notes is not None:
        notes.append(
            f"{path}: {len(negative)} data row(s) have a negative {column} (first: data row {first + 1}, "
            f"{column} {x[first]:g}); {column}s count from 0: those rows are left out"
        )
    x[negative] = np.nan
    has[negative] = False
    return len(negative)


def _check_index(path: Path, column: str, x: np.ndarray) -> None:
    """Steps and epochs must be finite whole-number-sized values: a cell of 1e300 or inf would
    otherwise become a nonsense integer ("9000000000000000001 epochs")."""
    bad = np.flatnonzero(~np.isnan(x) & ~(np.abs(x) < MAX_INDEX))
    if len(bad):
        row = int(bad[0])
        article = "an" if column[:1] in "eE" else "a"
        raise CSVLogError(
            f"{path}: data row {row + 1}: {column} is {x[row]:g}, not {article} {column} number "
            f"(a finite value below 2**53); {len(bad)} such row(s)"
        )


def _read_cells(
    reader: Iterable[list[str]], columns: list[str], decimal_comma: bool = False
) -> tuple[list[array], list[bytearray], list[list[Any]], list[int], list[int], list[Any], list[Any]]:
    """Each column's numbers (NaN where a cell holds none); per column, 1 where the cell holds
    a number (or "nan"), 0 where it is empty (or Keras' `NA`) or text; per column, [how many
    cells hold text, the data row of the first, its text]; [how many lines repeat the header,
    the data row before the first]: two logs joined with `cat` are skipped there, not read as
    rows of text in every column; [how many rows hold non-empty cells past the header's, the
    first such data row]; [how many cells hold bytes that are not UTF-8, the data row, column
    and character of the first]; [how many numbers were written with a decimal comma, the data
    row and cell of the first]: with `decimal_comma` (a file not separated by commas), `0,25`
    is 0.25."""
    width = len(columns)
    repeats = [0, 0]
    wide = [0, 0]
    data = [array("d") for _ in range(width)]
    filled = [bytearray() for _ in range(width)]
    text: list[list[Any]] = [[0, 0, ""] for _ in range(width)]
    bad_bytes: list[Any] = [0, 0, "", ""]
    commas: list[Any] = [0, 0, ""]
    nan = math.nan
    rows = 0
    for row in reader:
        if not row:
            continue
        if row[0].strip() == columns[0] and [c.strip() for c in row] == columns:
            if not repeats[0]:
                repeats[1] = rows
            repeats[0] += 1
            continue
        rows += 1
        if len(row) > width and any(c.strip() for c in row[width:]):
            if not wide[0]:
                wide[1] = rows
            wide[0] += 1
        for k in range(width):
            cell = row[k].strip() if k < len(row) else ""
            try:
                data[k].append(float(cell))
                filled[k].append(1)
            except ValueError:  # empty, or text
                if decimal_comma and _DECIMAL_COMMA.fullmatch(cell):
                    data[k].append(float(cell.replace(",", ".")))
                    filled[k].append(1)
                    if not commas[0]:
                        commas[1:] = rows, cell
                    commas[0] += 1
                    continue
                data[k].append(nan)
                filled[k].append(0)
                if cell and cell not in (KERAS_EMPTY, FASTAI_EMPTY):
                    _count_text(cell, rows, columns[k], text[k], bad_bytes)
    return data, filled, text, repeats, wide, bad_bytes, commas


def _count_text(cell: str, row: int, column: str, text: list[Any], bad_bytes: list[Any]) -> None:
    """Counts a cell that is no number: in `bad_bytes` when it holds bytes that are not UTF-8,
    else in its column's `text` (see `_read_cells`)."""
    undecodable = _UNDECODABLE.search(cell)
    if undecodable:
        if not bad_bytes[0]:
            bad_bytes[1:] = row, column, undecodable[0]
        bad_bytes[0] += 1
        return
    if not text[0]:
        text[1:] = row, cell
    text[0] += 1


def _counting(fh: io.TextIOBase, progress: Callable[[int], None] | None):
    if progress is None:
        yield from fh
        return
    pending = 0
    for line in fh:
        pending += len(line)
        if pending > 1 << 20:
            progress(pending)
            pending = 0
        yield line
    progress(pending)
