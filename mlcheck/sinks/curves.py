"""The curves a `Monitor` is given, written as TensorBoard scalars beside its findings.

A hand-written loop has no logger of its own to keep its loss, so `Monitor(log_dir=...)` keeps
what it is given (training loss and learning rate per step; epoch losses, metrics and the epoch
number per epoch) under `mlcheck/curves/<name>`, named as Lightning names them
(`train_loss_step`, `train_loss_epoch`, `val_loss`, `lr`, `epoch`, `val_<metric>`), so that
`mlcheck analyze` and TensorBoard read mlcheck's own folder back. The `mlcheck/curves/` prefix
keeps them apart from the user's own tags in a shared folder (where both exist, `mlcheck
analyze` uses the user's).

It is on every step, so it only appends to lists; points are encoded in blocks (`FLUSH_POINTS`,
or `FLUSH_SECONDS` after the last write), vectorised with numpy: the TensorBoard writer's
per-record pure-Python checksum costs ~100 us per point. Each tag's steps only go forward (a
point at or before the tag's last step is left out): TensorBoard reads a step that goes back as
a restarted run and drops that tag's later points.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck.sinks.tensorboard import EVENT_FILE_SUFFIX

CURVE_TAG = "mlcheck/curves/{name}"
#: the custom-scalars chart of losses and findings includes these (`TensorBoardSink.loss_tags`)
CURVES_LOSS_TAG = r"^mlcheck/curves/.*loss"
#: points held before they are written: 4096 points, ~100 KiB of events
FLUSH_POINTS = 4096
#: ... or this long after the last write, so that a live TensorBoard sees the run progress
FLUSH_SECONDS = 30.0


class CurveWriter:
    """Buffers scalar points per tag and writes them, in blocks, to an event file of its own in
    `log_dir` (created at the first write; nothing is written for a run without points).

    Args:
        log_dir: the run's directory.
        flush_points / flush_seconds: when held points are written (and at `flush`/`close`).
    """

    def __init__(
        self, log_dir: str | os.PathLike[str], flush_points: int = FLUSH_POINTS, flush_seconds: float = FLUSH_SECONDS
    ) -> None:
        self.log_dir = Path(log_dir)
        self.flush_points = flush_points
        self.flush_seconds = flush_seconds
        self.path: Path | None = None
        self._file: Any = None
        self._held: dict[str, tuple[list[int], list[float], list[float]]] = {}
        self._count = 0
        self._written_at = time.time()
        self._last: dict[str, int] = {}  # the last step written per tag
        self._loss = self._points("train_loss_step")
        self._lr = self._points("lr")

    def add(self, step: int, values: Mapping[str, float]) -> None:
        """Holds one point of each named curve at `step` (names without the prefix)."""
        now = time.time()
        for name, value in values.items():
            steps, points, walls = self._points(name)
            steps.append(step)
            points.append(value)
            walls.append(now)
        self._count += len(values)
        if self._count >= self.flush_points or now - self._written_at >= self.flush_seconds:
            self.flush()

    def add_step(self, step: int, loss: float | None, lr: float | None) -> None:
        """`add` of `train_loss_step` and `lr` (None: not given), without building a dict: it is
        called on every step."""
        now = time.time()
        if loss is not None:
            steps, points, walls = self._loss
            steps.append(step)
            points.append(loss)
            walls.append(now)
            self._count += 1
        if lr is not None:
            steps, points, walls = self._lr
            steps.append(step)
            points.append(lr)
            walls.append(now)
            self._count += 1
        if self._count >= self.flush_points or now - self._written_at >= self.flush_seconds:
            self.flush()

    def _points(self, name: str) -> tuple[list[int], list[float], list[float]]:
        points = self._held.get(name)
        if points is None:
            points = self._held[name] = ([], [], [])
        return points

    def extend(self, name: str, steps: np.ndarray, values: np.ndarray) -> None:
        """Holds many points of one curve (aligned arrays)."""
        points = self._points(name)
        points[0].extend(np.asarray(steps).tolist())
        points[1].extend(np.asarray(values, dtype=np.float64).tolist())
        points[2].extend([time.time()] * len(steps))
        self._count += len(steps)
        if self._count >= self.flush_points:
            self.flush()

    def flush(self) -> None:
        """Writes the held points and makes them visible to readers."""
        self._written_at = time.time()
        if not self._count:
            return
        self._count = 0
        blocks = []
        for name, (steps, values, walls) in self._held.items():
            if not steps:
                continue
            tag = CURVE_TAG.format(name=name)
            x = np.asarray(steps, dtype=np.int64)
            # each tag's steps only go forward: past its last written step and every step before
            before = np.maximum.accumulate(np.concatenate(([self._last.get(tag, -1)], x[:-1])))
            keep = x > before
            if keep.any():
                x = x[keep]
                y = np.asarray(values, dtype=np.float64)[keep]
                blocks.append(scalar_records(tag, x, y, np.asarray(walls, dtype=np.float64)[keep]))
                self._last[tag] = int(x[-1])
            for held in (steps, values, walls):
                held.clear()  # in place: add_step holds references to these lists
        if blocks:
            self._open().write(b"".join(blocks))
            self._file.flush()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> Any:
        if self._file is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            # named as TensorBoard's writers name theirs, so readers take it for an event file
            name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.curves"
            self.path = self.log_dir / (name + EVENT_FILE_SUFFIX)
            self._file = open(self.path, "ab")
            self._file.write(_frame([_file_version()]))
        return self._file


# -- encoding: Event{wall_time, step, summary{value{tag, simple_value}}}, the layout TensorBoard's
# writers produce for a scalar (and that `mlcheck.analyze.events` decodes vectorised)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _file_version() -> bytes:
    version = b"brain.Event:2"
    return b"\x09" + struct.pack("<d", time.time()) + b"\x1a" + _varint(len(version)) + version


def scalar_records(tag: str, steps: np.ndarray, values: np.ndarray, walls: np.ndarray) -> bytes:
    """TFRecord-framed events, one per point, in the order given (steps >= 0)."""
    name = tag.encode("utf-8")
    value = b"\x0a" + _varint(len(name)) + name  # Summary.Value.tag, then simple_value (0x15)
    value_len = len(value) + 5
    summary = b"\x0a" + _varint(value_len)
    summary_len = len(summary) + value_len
    tail = b"\x2a" + _varint(summary_len) + summary + value + b"\x15"
    # step 0 is left out, as protobuf leaves out a default; else its varint is 1-10 bytes
    x = steps.astype(np.uint64)
    sizes = np.where(steps > 0, 2, 0)  # the key and the varint's first byte
    for k in range(1, 10):
        sizes += (x >> np.uint64(7 * k)) > 0
    out = []
    for size in np.unique(sizes).tolist():  # steps go forward, so each size is one stretch
        pick = np.flatnonzero(sizes == size)
        out.append(_frame_rows(_rows(steps[pick], values[pick], walls[pick], size, tail)))
    return b"".join(out)


def _rows(steps: np.ndarray, values: np.ndarray, walls: np.ndarray, step_bytes: int, tail: bytes) -> np.ndarray:
    """(n, length) uint8: one encoded event per row."""
    n = len(steps)
    length = 9 + step_bytes + len(tail) + 4
    rows = np.empty((n, length), dtype=np.uint8)
    rows[:, 0] = 0x09
    rows[:, 1:9] = walls.astype("<f8").view(np.uint8).reshape(n, 8)
    if step_bytes:
        rows[:, 9] = 0x10
        x = steps.astype(np.uint64)
        for i in range(step_bytes - 1):
            byte = (x >> np.uint64(7 * i)) & np.uint64(0x7F)
            more = np.uint64(0x80) if i < step_bytes - 2 else np.uint64(0)
            rows[:, 10 + i] = (byte | more).astype(np.uint8)
    at = 9 + step_bytes
    rows[:, at : at + len(tail)] = np.frombuffer(tail, dtype=np.uint8)
    with np.errstate(over="ignore"):  # simple_value is float32: beyond its range is +-inf
        rows[:, at + len(tail) :] = values.astype("<f4").view(np.uint8).reshape(n, 4)
    return rows


def _frame_rows(rows: np.ndarray) -> bytes:
    """TFRecords of equal-length rows: length, its masked CRC-32C, the data, its masked CRC."""
    from mlcheck.analyze.tfrecord import crc32c_rows, mask

    n, length = rows.shape
    header = np.frombuffer(struct.pack("<Q", length), dtype=np.uint8)
    header_crc = mask(crc32c_rows(header[None, :])).astype("<u4").view(np.uint8)
    framed = np.empty((n, 12 + length + 4), dtype=np.uint8)
    framed[:, :8] = header
    framed[:, 8:12] = header_crc
    framed[:, 12 : 12 + length] = rows
    framed[:, 12 + length :] = mask(crc32c_rows(rows)).astype("<u4").view(np.uint8).reshape(n, 4)
    return framed.tobytes()


def _frame(payloads: list[bytes]) -> bytes:
    from mlcheck.analyze.tfrecord import encode_records

    return encode_records(payloads)
