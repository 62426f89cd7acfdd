"""Writing TensorBoard event files for the analyze tests: with tensorboard's own EventFileWriter,
or framed directly (for large logs and for partial or corrupt files)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from mlcheck.analyze.tfrecord import encode_records

Curve = tuple[Sequence[int], Sequence[float]]


def scalar_event(step: int, tag: str, value: float, wall_time: float = 1.7e9) -> event_pb2.Event:
    """A legacy `simple_value` scalar event, as torch's SummaryWriter and Lightning write."""
    return event_pb2.Event(
        wall_time=wall_time + step,
        step=step,
        summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]),
    )


def tensor_event(step: int, tag: str, value: float, how: str = "content", metadata: bool = True) -> event_pb2.Event:
    """A TF2-style scalar: a 0-d tensor with plugin "scalars" metadata (as tf.summary.scalar
    writes it: metadata on the first event of a tag only)."""
    if how == "content":
        tensor = tensor_pb2.TensorProto(
            dtype=1, tensor_shape=tensor_shape_pb2.TensorShapeProto(), tensor_content=np.float32(value).tobytes()
        )
    elif how == "float_val":
        tensor = tensor_pb2.TensorProto(dtype=1, tensor_shape=tensor_shape_pb2.TensorShapeProto(), float_val=[value])
    elif how == "double_val":
        tensor = tensor_pb2.TensorProto(dtype=2, tensor_shape=tensor_shape_pb2.TensorShapeProto(), double_val=[value])
    else:
        raise ValueError(how)
    v = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if metadata:
        v.metadata.plugin_data.plugin_name = "scalars"
    return event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary_pb2.Summary(value=[v]))


def interleave(curves: Mapping[str, Curve]) -> list[event_pb2.Event]:
    """Scalar events of several tags in step order, one event per value, like a real logger."""
    events = [(int(s), tag, float(v)) for tag, (steps, values) in curves.items() for s, v in zip(steps, values)]
    events.sort(key=lambda e: e[0])
    return [scalar_event(s, tag, v) for s, tag, v in events]


def write_with_writer(log_dir: Path, events: Iterable[event_pb2.Event]) -> Path:
    """Writes events with tensorboard's EventFileWriter; returns the event file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(log_dir))
    for event in events:
        writer.add_event(event)
    writer.close()
    return _newest(log_dir)


def write_framed(path: Path, events: Iterable[event_pb2.Event]) -> Path:
    """Writes events framed directly (valid checksums), as one event file at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2")
    path.write_bytes(encode_records([head.SerializeToString(), *(e.SerializeToString() for e in events)]))
    return path


def _newest(log_dir: Path) -> Path:
    files = sorted(log_dir.glob("*tfevents*"), key=lambda p: p.stat().st_mtime)
    return files[-1]
