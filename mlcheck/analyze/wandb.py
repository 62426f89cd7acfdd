"""Reading a Weights & Biases run's own file, `wandb/run-<date>_<time>-<id>/run-<id>.wandb`.

wandb (0.10 on) keeps a run's history in that file alone: `files/wandb-summary.json` beside it
holds the last value of each key (one point, no curve), `files/output.log` the console, and the
`wandb-history.jsonl` of older versions is no longer written. Offline runs (`WANDB_MODE=offline`,
`wandb/offline-run-*`) and synced ones write the same file, and projects commit it.

The file is a LevelDB-style log (wandb's `datastore`): a 7-byte header (`:W&B`, 0xBEE1, version
0), then records in 32 KiB blocks, each with a 7-byte header (checksum, length, type: full,
first, middle, last), a block's tail shorter than a header left as zeros. Each record is a
protobuf `Record` (wandb's `wandb_internal.proto`): field 2 is a `HistoryRecord`, one
`wandb.log()` call, whose items (field 1) hold the key (field 1, or its parts in field 2,
repeated) and the value as JSON (field 16), and whose step (field 2) holds the `_step`. The
protobuf wire format is read here directly (no wandb, no generated code): numbers are kept,
media, tables and text are left out. Checksums are not verified (as for event files).

x of every curve is wandb's `_step` (one per `wandb.log()` call unless the call gave `step=`);
a logged `epoch` is the run's epoch counter against it, as Lightning's is.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np

from mlcheck.analyze.events import PARTIAL_RECORD, Scalars, sorted_scalars
from mlcheck.errors import CSVLogError

FORMAT = "wandb"
#: the name wandb gives a run's file: `run-<id>.wandb`
_NAME = re.compile(r"run-[A-Za-z0-9]+\.wandb")
_HEADER = struct.Struct("<4sHB")
_IDENT, _MAGIC = b":W&B", 0xBEE1
_BLOCK = 32768
_RECORD_HEADER = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
# Record.history; HistoryRecord.item, .step; HistoryItem.key, .nested_key, .value_json; HistoryStep.num
_HISTORY, _ITEM, _STEP, _KEY, _NESTED_KEY, _VALUE_JSON, _NUM = 2, 1, 2, 1, 2, 16, 1
# larger than any real run's file of scalars (media are files of their own); refused before reading
MAX_BYTES = 1 << 30


def is_wandb_file(name: str) -> bool:
    """Whether a file is named as wandb names a run's file (`run-<id>.wandb`)."""
    return bool(_NAME.fullmatch(name))


def read_wandb_run(path: Path, notes: list[str] | None = None) -> tuple[str, dict[str, Scalars], list[str]]:
    """(format, scalars by key, keys) of a wandb run file; CSVLogError when it is not one, or its
    history holds no number. A partial record at its end (a run killed while writing, or still
    running) is left out, with a note."""
    if path.stat().st_size > MAX_BYTES:
        raise CSVLogError(f"{path} holds over {MAX_BYTES >> 30} GiB: not a wandb run file of scalars")
    data = path.read_bytes()
    if len(data) < _HEADER.size or _HEADER.unpack_from(data)[:2] != (_IDENT, _MAGIC):
        raise CSVLogError(f"{path} is not a wandb run file (it does not start with wandb's header ':W&B')")
    records, partial_at = _records(data, path)
    if partial_at is not None and notes is not None:
        notes.append(
            f"{path}: {PARTIAL_RECORD} at byte {partial_at} ({len(data) - partial_at} bytes: a run still "
            "being written, or killed while writing); read up to it"
        )
    points: dict[str, list[tuple[int, float]]] = {}
    rank = 0
    for record in records:
        for field, value in _fields(record, path):
            if field == _HISTORY and isinstance(value, bytes):
                _history(value, rank, points, path)
                rank += 1
    if not points:
        raise CSVLogError(f"{path}: a wandb run file whose history holds no number (nothing was logged with wandb.log)")
    scalars = {
        key: sorted_scalars(np.asarray([s for s, _ in got], dtype=np.int64), np.asarray([v for _, v in got]))
        for key, got in points.items()
    }
    return FORMAT, scalars, list(scalars)


def _records(data: bytes, path: Path) -> tuple[list[bytes], int | None]:
    """The records of the file, and where a partial last one starts (None when it is whole)."""
    records: list[bytes] = []
    pending: list[bytes] = []
    start = None  # where the record being joined from pieces began
    pos = _HEADER.size
    while pos < len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD_HEADER.size:
            pos += left  # a block's tail too short for a header: zeros
            continue
        if pos + _RECORD_HEADER.size > len(data):
            return records, start if start is not None else pos
        _, length, kind = _RECORD_HEADER.unpack_from(data, pos)
        if kind == 0 and length == 0:
            pos += left  # the rest of a block wandb padded (a flush)
            continue
        end = pos + _RECORD_HEADER.size + length
        if end > len(data):
            return records, start if start is not None else pos
        if length > left - _RECORD_HEADER.size or kind not in (_FULL, _FIRST, _MIDDLE, _LAST):
            raise CSVLogError(f"{path}: corrupt wandb record at byte {pos} (type {kind}, {length} bytes)")
        chunk = data[pos + _RECORD_HEADER.size : end]
        if kind == _FULL:
            records.append(chunk)
        elif kind == _FIRST:
            start, pending = pos, [chunk]
        else:
            pending.append(chunk)
            if kind == _LAST:
                records.append(b"".join(pending))
                start, pending = None, []
        pos = end
    return records, start


def _history(record: bytes, rank: int, points: dict[str, list[tuple[int, float]]], path: Path) -> None:
    """The numbers of one `wandb.log()` call, at its `_step`: the record's step (an empty one is 0,
    protobuf's default), else its `_step` item, else the call's rank among the history records."""
    step = None
    values: list[tuple[str, float]] = []
    for field, value in _fields(record, path):
        if field == _STEP and isinstance(value, bytes):
            step = next((v for f, v in _fields(value, path) if f == _NUM and isinstance(v, int)), 0)
        elif field == _ITEM and isinstance(value, bytes):
            item = _item(value, path)
            if item is not None:
                values.append(item)
    if step is None:
        logged = dict(values).get("_step")
        step = int(logged) if logged is not None and logged == logged and 0 <= logged < 2**53 else rank
    for key, value in values:
        if not key.startswith("_"):  # `_step`, `_runtime`, `_timestamp`: bookkeeping
            points.setdefault(key, []).append((step, value))


def _item(item: bytes, path: Path) -> tuple[str, float] | None:
    """(key, number) of a history item, None when its value is no number (media, text, a table)."""
    key, parts, raw = "", [], None
    for field, value in _fields(item, path):
        if not isinstance(value, bytes):
            continue
        if field == _KEY:
            key = value.decode("utf-8", "replace")
        elif field == _NESTED_KEY:
            parts.append(value.decode("utf-8", "replace"))
        elif field == _VALUE_JSON:
            raw = value
    name = key or ".".join(parts)  # wandb flattens a nested dict's keys with "."
    if not name or raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return name, float(value)  # NaN and Infinity (written so by wandb) kept: a NaN loss is a finding


def _fields(buf: bytes, path: Path):
    """(field number, value) of each field of a protobuf message: an int for varints, bytes
    for length-delimited fields, None for fixed-width ones (not read here)."""
    pos, n = 0, len(buf)
    while pos < n:
        tag, pos = _varint(buf, pos, path)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, path)
            yield field, value
        elif wire == 2:
            length, pos = _varint(buf, pos, path)
            if pos + length > n:
                raise CSVLogError(f"{path}: a wandb record that does not parse (a field runs past its end)")
            yield field, buf[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            yield field, None
        else:
            raise CSVLogError(f"{path}: a wandb record that does not parse (wire type {wire})")


def _varint(buf: bytes, pos: int, path: Path) -> tuple[int, int]:
    value = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise CSVLogError(f"{path}: a wandb record that does not parse (a varint runs past its end)")
