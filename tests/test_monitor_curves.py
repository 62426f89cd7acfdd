"""`Monitor` writes the curves it is given (`mlcheck/curves/...`, `mlcheck.sinks.curves`): events
that TensorBoard's own reader and `mlcheck analyze`'s read back alike, with valid checksums, each
tag's steps only going forward; on by default with a `log_dir`, off in the callbacks' `LiveRun`."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

from mlcheck import Monitor
from mlcheck.analyze.events import read_event_files
from mlcheck.live import LiveOptions, LiveRun
from mlcheck.sinks.curves import CurveWriter

STEPS = [0, 1, 2, 127, 128, 129, 16383, 16384, 2**35, 2**56, 2**62 + 5]  # every varint length


def _records(path) -> list[event_pb2.Event]:
    """Every record of an event file, its two checksums verified as TensorFlow's reader does."""
    data, at, out = path.read_bytes(), 0, []
    while at < len(data):
        (n,) = struct.unpack("<Q", data[at : at + 8])
        assert struct.unpack("<I", data[at + 8 : at + 12])[0] == masked_crc32c(data[at : at + 8])
        payload = data[at + 12 : at + 12 + n]
        assert struct.unpack("<I", data[at + 12 + n : at + 16 + n])[0] == masked_crc32c(payload)
        out.append(event_pb2.Event.FromString(payload))
        at += 16 + n
    return out


def test_curve_events_read_back_alike_by_every_reader(tmp_path):
    writer = CurveWriter(tmp_path, flush_points=7)  # several blocks
    for i, step in enumerate(STEPS):
        writer.add_step(step, 0.25 * i, 1e-3 if i % 2 else None)
    writer.add(STEPS[-1] + 1, {"val_loss": float("nan")})
    writer.close()

    events = _records(writer.path)
    assert events[0].file_version == "brain.Event:2"
    ours = read_event_files([writer.path])
    assert ours["mlcheck/curves/train_loss_step"].steps.tolist() == STEPS
    assert ours["mlcheck/curves/train_loss_step"].values.tolist() == [0.25 * i for i in range(len(STEPS))]
    assert ours["mlcheck/curves/lr"].steps.tolist() == STEPS[1::2]
    assert np.isnan(ours["mlcheck/curves/val_loss"].values).all()
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("mlcheck/curves/train_loss_step")] == list(
        zip(STEPS, [0.25 * i for i in range(len(STEPS))])
    )
    assert all(abs(e.wall_time - events[0].wall_time) < 60 for e in events)


def test_a_step_that_goes_back_is_left_out_of_its_curve(tmp_path):
    """TensorBoard reads a step that goes back as a restarted run and drops the later points."""
    writer = CurveWriter(tmp_path, flush_points=3)
    for step in (0, 1, 2, 3, 1, 2, 4, 4, 5):
        writer.add_step(step, float(step), None)
    writer.close()
    assert read_event_files([writer.path])["mlcheck/curves/train_loss_step"].steps.tolist() == [0, 1, 2, 3, 4, 5]


def test_monitor_writes_what_it_is_given_and_the_callbacks_do_not(tmp_path):
    with Monitor(log_dir=tmp_path / "loop", warn=False) as monitor:
        monitor.log_steps(np.arange(10), loss=np.linspace(2, 1, 10), lr=np.full(10, 0.1))
        monitor.log_step(10, loss=0.9)
        monitor.log_epoch(0, train_loss=1.2, val_loss=1.3, train_metrics={"accuracy": 0.5}, val_metrics={"f1": 0.4})
    tags = read_event_files(list((tmp_path / "loop").glob("*tfevents*")))
    assert tags["mlcheck/curves/train_loss_step"].steps.tolist() == list(range(11))
    assert tags["mlcheck/curves/lr"].steps.tolist() == list(range(10))
    for name, value in (("train_loss_epoch", 1.2), ("val_loss", 1.3), ("train_accuracy", 0.5), ("val_f1", 0.4)):
        curve = tags[f"mlcheck/curves/{name}"]
        assert curve.steps.tolist() == [10] and curve.values[0] == pytest.approx(value)
    assert tags["mlcheck/curves/epoch"].values.tolist() == [0.0]

    with Monitor(log_dir=tmp_path / "off", warn=False, curves=False) as monitor:
        monitor.log_step(0, loss=1.0)
    live = LiveRun(LiveOptions(config=False), log_dir=tmp_path / "live")
    live.monitor.log_step(0, loss=1.0)
    live.close()
    for folder in ("off", "live"):
        files = list((tmp_path / folder).glob("*tfevents*"))
        assert not [t for t in read_event_files(files) if t.startswith("mlcheck/curves/")]
    with pytest.raises(ValueError, match="log_dir"):
        Monitor(curves=True)


def test_metrics_named_like_the_loss_and_values_beyond_float32(tmp_path, caplog):
    # found by the observation fuzz: val_metrics={"loss": ...} beside val_loss= raised TypeError
    # from log_epoch, and 1e300 switched the curves off (float32 overflow warning)
    with Monitor(log_dir=tmp_path, warn=False) as monitor:
        monitor.log_epoch(0, val_loss=1.3, val_metrics={"loss": 9.0}, train_metrics={"loss_epoch": 2.0})
        monitor.log_epoch(1, val_metrics={"loss": 0.7})
        monitor.log_step(5, loss=1e300)
    assert "failed" not in caplog.text
    tags = read_event_files(list(tmp_path.glob("*tfevents*")))
    assert tags["mlcheck/curves/val_loss"].values.tolist() == pytest.approx([1.3, 0.7])
    assert tags["mlcheck/curves/train_loss_epoch"].values.tolist() == [2.0]
    assert tags["mlcheck/curves/train_loss_step"].values.tolist() == [float("inf")]
