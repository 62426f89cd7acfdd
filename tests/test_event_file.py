"""mlcheck's own event writer (`mlcheck.sinks.tensorboard.EventFile`): every record framed and
checksummed as TensorBoard's readers expect, checked with tensorboard's own CRC-32C code."""

from __future__ import annotations

import struct

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

from mlcheck import Finding, Severity
from mlcheck.layers import LayerObservation, LayerStats
from mlcheck.sinks.tensorboard import EVENT_FILE_SUFFIX, TensorBoardSink


def _records(path):
    """The events of a TFRecord file, each record's two checksums verified."""
    data, events, at = path.read_bytes(), [], 0
    while at < len(data):
        header = data[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[at + 8 : at + 12])[0] == masked_crc32c(header)
        body = data[at + 12 : at + 12 + length]
        assert struct.unpack("<I", data[at + 12 + length : at + 16 + length])[0] == masked_crc32c(body)
        events.append(event_pb2.Event.FromString(body))
        at += 16 + length
    return events


def _layers(step):
    stats = LayerStats(path="net.0", kind="Linear", grad_norm=0.5, weight_norm=2.0, mean=0.1, std=1.0)
    return LayerObservation(step=step, epoch=0, layers=(stats,))


def test_records_carry_tensorboards_checksums_and_read_back(tmp_path):
    sink = TensorBoardSink(tmp_path)
    sink.emit(Finding(check="loss-plateau", severity=Severity.WARNING, message="flat", step=3))
    for step in (25, 50):
        sink.layers(_layers(step))
    sink.close()
    second = TensorBoardSink(tmp_path)  # a second writer in the same second: a file of its own
    second.emit(Finding(check="lr-too-low", severity=Severity.INFO, message="slow", step=60))
    second.close()
    files = sorted(tmp_path.glob(f"events.out.tfevents.*{EVENT_FILE_SUFFIX}"))
    assert len(files) == 2
    events = _records(files[0])
    assert events[0].file_version == "brain.Event:2"
    steps = {v.tag: e.step for e in events for v in e.summary.value}
    assert steps["mlcheck/loss-plateau"] == 3 and steps["mlcheck/layers/net.0/grad_norm"] == 50
    acc = EventAccumulator(str(files[0]), size_guidance={"scalars": 0})
    acc.Reload()
    grad = acc.Scalars("mlcheck/layers/net.0/grad_norm")
    assert [(s.step, s.value) for s in grad] == [(25, 0.5), (50, 0.5)]


def test_findings_are_on_disk_before_close(tmp_path):
    """A finding is flushed when written: TensorBoard shows it while the run goes on."""
    sink = TensorBoardSink(tmp_path)
    sink.emit(Finding(check="nonfinite-loss", severity=Severity.ERROR, message="nan", step=7))
    (path,) = tmp_path.glob("events.out.tfevents.*")
    tags = {v.tag for e in _records(path) for v in e.summary.value}
    assert "mlcheck/nonfinite-loss/text" in tags
    sink.close()
