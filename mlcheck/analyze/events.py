"""A fast reader of the scalars in TensorBoard event files.

Reads legacy `simple_value` scalars and TF2 tensor scalars (plugin "scalars"), streaming each
file in chunks into one numpy array pair (steps, values) per tag. Records in the common legacy
layout (Event{wall_time, step, summary{value{tag, simple_value}}}) are decoded vectorised, many
thousands at a time; every other record goes through the protobuf parser (upb).

A partial record at the end of a file is a run still being written (or killed while writing):
reading stops before it, and a note says where.
A record whose length fails its checksum, or whose data does not parse, is corruption
(`EventFileError`). A record claiming more bytes than any event can hold (protobuf's 2 GiB
limit) cuts the run short: it is read up to that record, and a note says where.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlcheck.analyze.search import natural_key
from mlcheck.analyze.tfrecord import FOOTER, HEADER, frame, record_length

CHUNK_BYTES = 4 << 20  # read size: measured fastest on a 1M-step log, and memory stays small
# protobuf refuses messages of 2 GiB or more, so no writer produced a longer record: a header that
# claims more is corruption, and what follows it cannot be framed
MAX_RECORD_BYTES = (1 << 31) - 1


class EventFileError(Exception):
    """An event file is corrupt before its end; the message names the file and the offset."""


@dataclass
class Scalars:
    """One scalar curve: `steps` (int64) and `values` (float64), sorted by step, one value per
    step (the last one logged wins, as after a resumed run)."""

    steps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


def is_event_file(name: str) -> bool:
    return "tfevents" in name and not name.endswith((".tmp", ".lock"))


class _Collector:
    """Per-tag chunks of (record index, steps, values), joined and sorted at the end."""

    def __init__(self) -> None:
        self.parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.plugin: dict[str, str] = {}  # tag -> plugin name from its first metadata
        # summaries that are not scalars, by kind ("images", "hparams", ...): a run without a
        # scalar is named by what it holds instead, rather than taken for an empty file
        self.others: dict[str, int] = {}

    def add(self, tag: str, steps: np.ndarray, values: np.ndarray) -> None:
        self.parts.setdefault(tag, []).append((steps, values))

    def result(self) -> dict[str, Scalars]:
        out = {}
        for tag, parts in self.parts.items():
            steps = np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False)
            values = np.concatenate([p[1] for p in parts]).astype(np.float64, copy=False)
            out[tag] = sorted_scalars(steps, values)
        return out


def sorted_scalars(steps: np.ndarray, values: np.ndarray) -> Scalars:
    """Scalars sorted by step, one value per step (the last logged wins)."""
    if len(steps) > 1 and not np.all(steps[1:] > steps[:-1]):
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
        keep = np.append(steps[1:] != steps[:-1], True)  # the last value of a step wins
        steps, values = steps[keep], values[keep]
    return Scalars(steps, values)


#: How a note names a file's partial last record (the note of a run killed while writing).
PARTIAL_RECORD = "ends in a partial record"


def read_event_files(
    paths: Iterable[str | os.PathLike[str]],
    progress: Callable[[int], None] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    notes: list[str] | None = None,
    others: dict[str, int] | None = None,
) -> dict[str, Scalars]:
    """Scalars by tag from the event files of one run (in the order given: oldest first).

    Args:
        paths: event files.
        progress: called with the number of bytes consumed, as reading advances.
        chunk_bytes: read size.
        notes: if given, a line is appended for each file that was cut short (read up to a
            record that claims more bytes than an event can hold, or up to a partial record at
            its end), naming the file and offset.
        others: if given, counts of the summaries that are not scalars are added to it, by
            kind ("images", "histograms", "audio", or the plugin's name: "hparams", "text").

    Raises:
        EventFileError: a file is corrupt before its end.
        OSError: a file cannot be opened or read.
    """
    collector = _Collector()
    for path in paths:
        note = _read_file(Path(path), collector, progress, chunk_bytes)
        if note and notes is not None:
            notes.append(note)
    if others is not None:
        for kind, n in collector.others.items():
            others[kind] = others.get(kind, 0) + n
    return collector.result()


def first_wall_time(path: str | os.PathLike[str]) -> float | None:
    """When an event file was begun: the wall time (Unix seconds) of its first event, or None
    where the file cannot be read or its first record holds no wall time."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER + 9)
    except OSError:
        return None
    if len(head) < HEADER + 9 or head[HEADER] != 0x09:  # field 1 (wall_time), a 64-bit double
        return None
    (when,) = struct.unpack("<d", head[HEADER + 1 : HEADER + 9])
    return when if math.isfinite(when) and when > 0 else None


def _read_file(
    path: Path, collector: _Collector, progress: Callable[[int], None] | None, chunk_bytes: int
) -> str | None:
    """Reads one file into `collector`; returns a note when the file was cut short."""
    offset = 0  # file offset of buf[0]
    leftover = b""
    with open(path, "rb") as fh:
        want = chunk_bytes
        while True:
            chunk = fh.read(want)
            if not chunk:
                break
            buf = leftover + chunk if leftover else chunk
            framing = frame(buf, base=offset)
            if framing.bad_at is not None:
                raise EventFileError(f"{path}: corrupt record at byte {framing.bad_at} (its length fails its checksum)")
            _decode(buf, framing.starts, framing.lengths, offset, path, collector)
            leftover = buf[framing.end :]
            offset += framing.end
            if progress is not None:
                progress(len(chunk))
            length = record_length(leftover)
            if length is None:
                want = chunk_bytes
                continue
            left = os.fstat(fh.fileno()).st_size - fh.tell()
            if length > MAX_RECORD_BYTES:
                if progress is not None:
                    progress(max(left, 0))
                return (
                    f"{path}: cut short at byte {offset}: the record there claims {length} bytes, more than "
                    f"an event can hold; read up to it, the last {len(leftover) + max(left, 0)} bytes are skipped"
                )
            # read the rest of a long record at once, never more than the file holds: framing
            # the same growing buffer chunk after chunk would take time quadratic in its length
            need = HEADER + length + FOOTER - len(leftover)
            if need > left:
                leftover += b"\0" * max(left, 0)  # counted, not read: the record cannot complete
                break  # the record runs past the end: a run still being written, or killed mid-write
            want = max(chunk_bytes, need)
    if leftover:
        # a partial record: what came before it is kept; said, since a run killed while writing
        # (out of memory, a pre-empted job) leaves its last values out as silently as a live one
        return (
            f"{path}: {PARTIAL_RECORD} at byte {offset} ({len(leftover)} bytes: a run still being "
            "written, or killed while writing); read up to it"
        )
    return None


# -- decoding ----------------------------------------------------------------------------------


def _decode(buf: bytes, starts: np.ndarray, lengths: np.ndarray, base: int, path: Path, collector: _Collector) -> None:
    if not len(starts):
        return
    arr = np.frombuffer(buf, dtype=np.uint8)
    ok, steps, tag_at, tag_len, values = _decode_scalars(arr, starts, lengths)
    fast = np.flatnonzero(ok)
    slow = np.flatnonzero(~ok)
    if len(slow):  # first: it learns each tag's plugin from the metadata events
        _decode_slow(buf, starts[slow], lengths[slow], base, path, collector)
    if len(fast):
        _collect_fast(arr, fast, steps, tag_at, tag_len, values, collector)


def _varint(arr: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decodes a varint at each offset (vectorised). Returns (value, byte count); the count is
    0 where the varint is longer than 9 bytes (a negative step: left to the slow path)."""
    value = np.zeros(len(at), dtype=np.int64)
    count = np.zeros(len(at), dtype=np.int64)
    more = np.ones(len(at), dtype=bool)
    for k in range(9):
        b = np.take(arr, at + k, mode="clip").astype(np.int64)
        value |= np.where(more, (b & 0x7F) << (7 * k), 0)
        count += more
        more &= b >= 0x80
        if not more.any():
            break
    count[more] = 0
    return value, count


def _decode_scalars(arr: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
    """Vectorised decoding of records laid out as scalar events with one value:

        09 <wall_time f64> [10 <step varint>] 2a <len> 0a <len> 0a <tag len> <tag> VALUE
        VALUE = 15 <f32>                                     legacy simple_value
              | 42 <len> 08 <dtype> [12 00] 22|2a <n> <v>    TF2 0-d tensor, float (n=4) or
                                                             double (n=8), tensor_content or *_val

    Returns (ok, steps, tag offsets, tag lengths, values); rows not ok go to the slow path
    (metadata, other events, anything laid out differently)."""

    def at(i: np.ndarray) -> np.ndarray:
        return np.take(arr, i, mode="clip")

    end = starts + lengths
    ok = (lengths >= 20) & (at(starts) == 0x09)
    p = starts + 9
    has_step = at(p) == 0x10
    step, nstep = _varint(arr, p + 1)
    step = np.where(has_step, step, 0)
    ok &= ~has_step | (nstep > 0)
    q = p + np.where(has_step, 1 + nstep, 0)
    summary_len = at(q + 1).astype(np.int64)
    ok &= (at(q) == 0x2A) & (summary_len < 0x80) & (q + 2 + summary_len == end)
    r = q + 2
    value_len = at(r + 1).astype(np.int64)
    ok &= (at(r) == 0x0A) & (value_len < 0x80) & (r + 2 + value_len == end)
    t = r + 2
    tag_len = at(t + 1).astype(np.int64)
    ok &= (at(t) == 0x0A) & (tag_len < 0x80)
    u = t + 2 + tag_len

    values = np.full(len(starts), np.nan)
    legacy = ok & (at(u) == 0x15) & (u + 5 == end)
    values[legacy] = _gather(arr, u[legacy] + 1, 4).view(np.float32).reshape(-1)
    rest = np.flatnonzero(ok & ~legacy)
    ok &= legacy
    if len(rest):
        good, number = _tensor_values(arr, u[rest], end[rest])
        ok[rest[good]] = True
        values[rest[good]] = number[good]
    return ok, step, t + 2, tag_len, values


def _gather(arr: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """`width` little-endian bytes at each offset, as (n,) rows of a (n, width) byte array."""
    return np.ascontiguousarray(np.take(arr, at[:, None] + np.arange(width), mode="clip"))


def _tensor_values(arr: np.ndarray, u: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TF2 scalars: Value.tensor (field 8) holding dtype 1 (float) or 2 (double), an empty
    shape, and 4 or 8 bytes of value in tensor_content or float_val/double_val (packed)."""

    def at(i: np.ndarray) -> np.ndarray:
        return np.take(arr, i, mode="clip").astype(np.int64)

    dtype = at(u + 3)
    shape = np.where((at(u + 4) == 0x12) & (at(u + 5) == 0x00), 2, 0)
    v = u + 4 + shape
    width = np.where(dtype == 1, 4, 8)
    field = at(v)
    good = (
        (at(u) == 0x42)
        & (at(u + 2) == 0x08)
        & ((dtype == 1) | (dtype == 2))
        & (at(u + 1) == 4 + shape + width)
        & ((field == 0x22) | ((dtype == 1) & (field == 0x2A)) | ((dtype == 2) & (field == 0x32)))
        & (at(v + 1) == width)
        & (v + 2 + width == end)
    )
    values = np.full(len(u), np.nan)
    single = good & (width == 4)
    double = good & (width == 8)
    values[single] = _gather(arr, v[single] + 2, 4).view(np.float32).reshape(-1)
    values[double] = _gather(arr, v[double] + 2, 8).view(np.float64).reshape(-1)
    return good, values


def _collect_fast(arr, rows, steps, tag_at, tag_len, values, collector: _Collector) -> None:
    steps, tag_at, tag_len, values = steps[rows], tag_at[rows], tag_len[rows], values[rows]
    for length in np.flatnonzero(np.bincount(tag_len)):  # tag lengths are < 128
        length = int(length)
        left = np.flatnonzero(tag_len == length)
        raw = np.take(arr, tag_at[left][:, None] + np.arange(max(length, 1)), mode="clip")
        names = np.ascontiguousarray(raw).view(f"S{max(length, 1)}").reshape(-1)
        # a chunk holds few distinct tags: split off one tag at a time by comparing rows
        while len(left):
            same = names == names[0]
            pick = left[same]
            first = int(tag_at[pick[0]])
            tag = arr[first : first + length].tobytes().decode("utf-8", "replace")
            if collector.plugin.get(tag, "scalars") == "scalars":
                collector.add(tag, steps[pick], values[pick])
            left, names = left[~same], names[~same]


# Summary.Value kinds that are not scalars, by the name of the TensorBoard tab that shows them
_OTHER_KINDS = {"image": "images", "histo": "histograms", "audio": "audio"}

# DataType enum values of tensorflow/core/framework/types.proto
_DTYPES = {1: np.float32, 2: np.float64, 19: np.float16, 3: np.int32, 9: np.int64}


def _decode_slow(
    buf: bytes, starts: np.ndarray, lengths: np.ndarray, base: int, path: Path, collector: _Collector
) -> None:
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    parse = event_pb2.Event.FromString
    points: dict[str, tuple[list[int], list[float]]] = {}
    for s, n in zip(starts.tolist(), lengths.tolist()):
        try:
            event = parse(buf[s : s + n])
        except DecodeError:
            raise EventFileError(
                f"{path}: corrupt record at byte {base + s - HEADER} (it does not parse as an Event)"
            ) from None
        if not event.HasField("summary"):
            continue
        try:
            _collect_values(event, collector, points)
        except ValueError as exc:
            raise EventFileError(f"{path}: corrupt record at byte {base + s - HEADER} ({exc})") from None
    for tag, (xs, ys) in points.items():
        if collector.plugin.get(tag, "scalars") == "scalars":
            collector.add(tag, np.asarray(xs, dtype=np.int64), np.asarray(ys, dtype=np.float64))


def _collect_values(event, collector: _Collector, points: dict[str, tuple[list[int], list[float]]]) -> None:
    """The scalar values of one parsed Event into `points`; ValueError on a malformed tensor."""
    for value in event.summary.value:
        kind = value.WhichOneof("value")
        tag = value.tag
        if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
            collector.plugin.setdefault(tag, value.metadata.plugin_data.plugin_name)
        if kind == "simple_value":
            number = value.simple_value
        elif kind == "tensor":
            plugin = collector.plugin.get(tag)
            if plugin not in (None, "scalars"):
                collector.others[plugin] = collector.others.get(plugin, 0) + 1
                continue
            number = _tensor_scalar(value.tensor)
            if number is None:
                continue
        else:
            other = _OTHER_KINDS.get(kind) or collector.plugin.get(tag)  # hparams: metadata alone
            if other:
                collector.others[other] = collector.others.get(other, 0) + 1
            continue
        xs, ys = points.setdefault(tag, ([], []))
        xs.append(event.step)
        ys.append(number)


def _tensor_scalar(tensor) -> float | None:
    """The number in a TF2 scalar summary tensor (0-d float, from tensor_content or *_val)."""
    if any(d.size != 1 for d in tensor.tensor_shape.dim):
        return None
    dtype = _DTYPES.get(tensor.dtype)
    if dtype is None:
        return None
    if tensor.tensor_content:
        width = np.dtype(dtype).itemsize
        if len(tensor.tensor_content) % width:
            raise ValueError(
                f"its tensor_content holds {len(tensor.tensor_content)} bytes, not a whole number of "
                f"{np.dtype(dtype).name} values"
            )
        values = np.frombuffer(tensor.tensor_content, dtype=np.dtype(dtype).newbyteorder("<"))
        return float(values[0]) if len(values) == 1 else None
    for field in ("float_val", "double_val", "int_val", "int64_val"):
        values = getattr(tensor, field)
        if len(values) == 1:
            return float(values[0])
    if len(tensor.half_val) == 1:
        return float(np.array([tensor.half_val[0]], dtype=np.uint16).view(np.float16)[0])
    return None


# -- finding runs ------------------------------------------------------------------------------

KERAS_SUBRUNS = ("train", "validation")


@dataclass
class EventRun:
    """One run in a log directory: its name and event files, by sub-run prefix ("" for the
    run's own folder, "train"/"validation" for Keras' sub-runs, the folder's name for a
    sub-writer of PyTorch's `add_scalars`).

    `scalar_keys`: for each `add_scalars` sub-writer folder, the key its folder stands for
    (`SummaryWriter.add_scalars("loss", {"training": t, "validation": v})` writes tag `loss`
    into the folders `loss_training/` and `loss_validation/`): its tag `loss` is read as
    `loss/training`, `loss/validation`, the names the plain `add_scalar` would have written.
    """

    name: str
    path: Path
    files: dict[str, list[Path]]
    scalar_keys: dict[str, str] = dataclasses.field(default_factory=dict)

    def tag_name(self, prefix: str, tag: str) -> str:
        """The name a tag of the sub-run `prefix` is read under."""
        if prefix in self.scalar_keys:
            return f"{tag}/{self.scalar_keys[prefix]}"
        return f"{prefix}/{tag}" if prefix else tag

    @property
    def size(self) -> int:
        """Bytes in its files (a file that has gone counts 0: reading it will say why)."""
        total = 0
        for files in self.files.values():
            for f in files:
                try:
                    total += f.stat().st_size
                except OSError:
                    pass
        return total


def find_event_runs(root: Path) -> list[EventRun]:
    """Every folder under `root` holding event files is a run; Keras' `train/` and
    `validation/` sub-runs are merged into their parent's run."""
    found: dict[Path, list[Path]] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort(key=natural_key)
        events = sorted(Path(folder) / f for f in files if is_event_file(f))
        if events:
            found[Path(folder)] = events
    return group_event_runs(root, found)


def file_order(path: Path) -> list:
    """Sort key of event files, oldest first: their names with the numbers in them compared as
    numbers (`events.out.tfevents.<seconds>.<host>.<pid>.<n>`: the writer's counter `n` reaches
    10 after 9, and two files of one second differ by it alone)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def group_event_runs(
    root: Path, found: dict[Path, list[Path]], done: Callable[[int], None] | None = None
) -> list[EventRun]:
    """Runs from the event files found under `root`, by folder (oldest file first). `done(n)`:
    called as the folders in `found` are sorted out, `n` more each time (the heads of some
    files are read: ~2 s for the 2,000 folders of event files under `/` here)."""
    runs: dict[Path, dict[str, list[Path]]] = {}
    keys: dict[Path, dict[str, str]] = {}
    found = {folder: sorted(files, key=file_order) for folder, files in found.items()}
    subwriters = _scalars_subwriters(root, found, done or (lambda n: None))
    for folder, files in found.items():
        parent = folder.parent
        keras = (
            folder.name in KERAS_SUBRUNS
            and folder != root
            and (any(parent / other in found for other in KERAS_SUBRUNS if other != folder.name) or _looks_keras(files))
        )
        if folder in subwriters:
            runs.setdefault(parent, {})[folder.name] = files
            keys.setdefault(parent, {})[folder.name] = subwriters[folder]
        elif keras:
            runs.setdefault(parent, {})[folder.name] = files
        else:
            runs.setdefault(folder, {})[""] = files
    out = []
    for folder in sorted(runs, key=lambda f: [natural_key(part) for part in f.parts]):
        rel = folder.relative_to(root).as_posix()
        name = root.resolve().name if rel == "." else rel
        out.append(EventRun(name, folder, runs[folder], keys.get(folder, {})))
    return out


def _scalars_subwriters(root: Path, found: dict[Path, list[Path]], done: Callable[[int], None]) -> dict[Path, str]:
    """The folders that PyTorch's `SummaryWriter.add_scalars(main_tag, {key: value})` wrote, with
    the key of each: `<main_tag>_<key>/` (a "/" in main_tag written as "_") beside its writer's
    own folder, holding the one tag `main_tag`. Read as sub-runs of the writer's folder: each
    alone is no run (the validation loss under `loss_validation/` would pass for a training loss).

    Only sibling folders that share a `<word>_` prefix, two or more of them (add_scalars exists
    to put several curves in one chart), have their tags read to confirm it."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for folder in found:
        if folder != root and folder.name not in KERAS_SUBRUNS and "_" in folder.name:
            groups.setdefault((folder.parent, folder.name.split("_", 1)[0]), []).append(folder)
    out: dict[Path, str] = {}
    read = [folders for folders in groups.values() if len(folders) >= 2]
    done(len(found) - sum(len(folders) for folders in read))  # the folders whose files are not read
    for folders in read:
        for folder in folders:
            tag = _lone_tag(found[folder][0])
            stem = f"{tag.replace('/', '_')}_" if tag is not None else None
            if stem is not None and folder.name.startswith(stem) and len(folder.name) > len(stem):
                out[folder] = folder.name[len(stem) :]
        done(len(folders))
    return out


def _lone_tag(path: Path) -> str | None:
    """The one scalar tag at the head of an event file; None when it holds several, none, or
    cannot be read."""
    try:
        tags = _head_tags(path)
    except (EventFileError, OSError):
        return None
    return next(iter(tags)) if len(tags) == 1 else None


# bytes read of a candidate sub-writer's first file to learn its tags: thousands of scalar
# events, while a folder of Ray Tune trials (`train_<id>_00000/`, `train_<id>_00001/`, ...) of
# large logs is not read whole twice
_HEAD_BYTES = 1 << 16


def _head_tags(path: Path) -> set[str]:
    """The scalar tags in the first `_HEAD_BYTES` of an event file."""
    with open(path, "rb") as fh:
        buf = fh.read(_HEAD_BYTES)
    framing = frame(buf, base=0)
    if framing.bad_at is not None:
        raise EventFileError(f"{path}: corrupt record at byte {framing.bad_at}")
    collector = _Collector()
    _decode(buf, framing.starts, framing.lengths, 0, path, collector)
    return set(collector.parts)


def _looks_keras(files: list[Path]) -> bool:
    """A lone train/ or validation/ folder is a Keras sub-run when its tags are Keras-style."""
    try:
        tags = read_event_files(files[:1], chunk_bytes=1 << 20)
    except (EventFileError, OSError):
        return False
    return any(t.startswith(("epoch_", "batch_")) for t in tags)
