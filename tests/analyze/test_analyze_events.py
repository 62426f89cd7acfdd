"""The TensorBoard event reader: legacy and TF2 scalars, several files, nested and Keras-style
runs, live (partial) and corrupt files, read back and compared with TensorBoard's own reader."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2, summary_pb2

from analyze_logs import interleave, scalar_event, tensor_event, write_framed, write_with_writer
from mlcheck.analyze.events import MAX_RECORD_BYTES, EventFileError, find_event_runs, read_event_files
from mlcheck.analyze.tfrecord import crc32c_rows, mask


def _accumulated(log_dir):
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: ([e.step for e in acc.Scalars(t)], [e.value for e in acc.Scalars(t)]) for t in acc.Tags()["scalars"]}


def _mixed_curves(n=3000):
    rng = np.random.default_rng(1)
    steps = np.arange(n)
    return {
        "train_loss_step": (steps, 2.0 * np.exp(-steps / 500) + 0.05 * rng.random(n)),
        "lr-Adam": (steps[::3], np.linspace(1e-3, 1e-5, len(steps[::3]))),
        "val_loss": (steps[99::100], np.linspace(2.0, 0.5, len(steps[99::100]))),
        "epoch": (steps[::7], steps[::7] // 100),
    }


def test_legacy_scalars_match_tensorboards_reader(tmp_path):
    # steps 0..3000 need 1- and 2-byte varints and step 0 is omitted from the proto: all paths
    write_with_writer(tmp_path, interleave(_mixed_curves()))
    ours = read_event_files(sorted(tmp_path.glob("*tfevents*")))
    theirs = _accumulated(tmp_path)
    assert set(ours) == set(theirs) == {"train_loss_step", "lr-Adam", "val_loss", "epoch"}
    for tag, (steps, values) in theirs.items():
        np.testing.assert_array_equal(ours[tag].steps, steps)
        np.testing.assert_allclose(ours[tag].values, values, rtol=1e-7)


def test_small_chunks_give_the_same_curves(tmp_path):
    path = write_framed(tmp_path / "events.out.tfevents.1.host", interleave(_mixed_curves(500)))
    whole = read_event_files([path])
    seen = []
    pieces = read_event_files([path], progress=seen.append, chunk_bytes=97)
    for tag in whole:
        np.testing.assert_array_equal(whole[tag].steps, pieces[tag].steps)
        np.testing.assert_array_equal(whole[tag].values, pieces[tag].values)
    assert sum(seen) == path.stat().st_size


@pytest.mark.parametrize("how", ["content", "float_val", "double_val"])
def test_tf2_tensor_scalars(tmp_path, how):
    # tf.summary.scalar writes plugin metadata with the first event of a tag only
    events = [tensor_event(s, "epoch_loss", 1.0 / (s + 1), how=how, metadata=s == 0) for s in range(5)]
    # a non-scalar plugin's tensors (e.g. a histogram) must not become a curve
    other = tensor_event(0, "weights", 3.0, how=how)
    other.summary.value[0].metadata.plugin_data.plugin_name = "histograms"
    events.append(other)
    events.append(tensor_event(1, "weights", 4.0, how=how, metadata=False))
    path = write_framed(tmp_path / "events.out.tfevents.2.host", events)
    curves = read_event_files([path])
    assert set(curves) == {"epoch_loss"}
    np.testing.assert_array_equal(curves["epoch_loss"].steps, np.arange(5))
    np.testing.assert_allclose(curves["epoch_loss"].values, 1.0 / np.arange(1, 6), rtol=1e-6)


def test_several_files_per_run_and_resumed_steps(tmp_path):
    run = tmp_path / "run"
    write_framed(run / "events.out.tfevents.100.host", [scalar_event(s, "loss", 1.0) for s in range(10)])
    # a resumed run logs steps 8.. again: the later file wins
    write_framed(run / "events.out.tfevents.200.host", [scalar_event(s, "loss", 2.0) for s in range(8, 15)])
    (found,) = find_event_runs(tmp_path)
    curves = read_event_files(found.files[""])
    np.testing.assert_array_equal(curves["loss"].steps, np.arange(15))
    assert curves["loss"].values[7] == 1.0 and curves["loss"].values[8] == 2.0


def test_nested_runs_and_keras_subruns(tmp_path):
    write_framed(tmp_path / "a" / "b" / "run1" / "events.out.tfevents.1.h", [scalar_event(1, "loss", 1.0)])
    write_framed(tmp_path / "run2" / "events.out.tfevents.1.h", [scalar_event(1, "loss", 1.0)])
    keras = tmp_path / "keras_logs"
    write_with_writer(keras / "train", [scalar_event(e, "epoch_loss", 1.0) for e in range(3)])
    write_with_writer(keras / "validation", [scalar_event(e, "epoch_loss", 1.5) for e in range(3)])
    runs = {r.name: r for r in find_event_runs(tmp_path)}
    assert set(runs) == {"a/b/run1", "run2", "keras_logs"}
    assert set(runs["keras_logs"].files) == {"train", "validation"}


def test_partial_last_record_is_a_live_run(tmp_path):
    path = write_framed(tmp_path / "events.out.tfevents.1.h", [scalar_event(s, "loss", float(s)) for s in range(50)])
    complete = path.read_bytes()
    extra = write_framed(tmp_path / "x" / "e", [scalar_event(50, "loss", 50.0)]).read_bytes()
    record = _last_record(extra)
    for cut in (3, 12, 20, len(record) - 1):  # inside the header, after it, inside the data
        path.write_bytes(complete + record[:cut])
        curves = read_event_files([path])
        np.testing.assert_array_equal(curves["loss"].steps, np.arange(50))


def test_partial_last_record_is_told_in_the_notes(tmp_path):
    """A run killed while writing (out of memory, a pre-empted job) leaves a partial record at the
    end of its event file: what came before it is kept, and the notes say where the file ends."""
    path = write_framed(tmp_path / "events.out.tfevents.1.h", [scalar_event(s, "loss", float(s)) for s in range(50)])
    complete = path.read_bytes()
    record = _last_record(write_framed(tmp_path / "x" / "e", [scalar_event(50, "loss", 50.0)]).read_bytes())
    for cut in (3, 20, len(record) - 1):  # inside the header, inside the data, one byte short
        path.write_bytes(complete + record[:cut])
        notes: list[str] = []
        curves = read_event_files([path], notes=notes, chunk_bytes=64)
        np.testing.assert_array_equal(curves["loss"].steps, np.arange(50))
        assert notes == [
            f"{path}: ends in a partial record at byte {len(complete)} ({cut} bytes: a run still being written, "
            "or killed while writing); read up to it"
        ]
    path.write_bytes(complete)
    notes = []
    read_event_files([path], notes=notes)
    assert notes == []  # a complete file: nothing to say


def _last_record(data: bytes) -> bytes:
    """The last TFRecord of a framed byte string."""
    pos, last = 0, b""
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 8], "little")
        last = data[pos : pos + 16 + n]
        pos += 16 + n
    return last


def test_corruption_before_the_end_is_an_error(tmp_path):
    path = write_framed(tmp_path / "events.out.tfevents.1.h", [scalar_event(s, "loss", float(s)) for s in range(50)])
    data = bytearray(path.read_bytes())
    bad_length = bytearray(data)
    bad_length[len(data) // 2 : len(data) // 2 + 8] = b"\xff" * 8  # garbage over a length field
    path.write_bytes(bytes(bad_length))
    with pytest.raises(EventFileError, match="corrupt record at byte"):
        read_event_files([path])
    # a record whose data does not parse (its length intact)
    second = 16 + int.from_bytes(data[0:8], "little")  # where the second record starts
    garbled = bytearray(data)
    garbled[second + 12 : second + 16] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(garbled))
    with pytest.raises(EventFileError):
        read_event_files([path])


def test_a_long_record_is_read_at_once(tmp_path):
    """A 1 MiB record (an image summary) read in 97-byte chunks: the rest of the record is read
    in one go once its header is known, not re-framed chunk after chunk (quadratic)."""
    image = summary_pb2.Summary.Image(encoded_image_string=b"x" * (1 << 20))
    big = event_pb2.Event(step=0, summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="i", image=image)]))
    path = write_framed(tmp_path / "events.out.tfevents.1.h", [big, *(scalar_event(s, "loss", 1.0) for s in range(10))])
    reads = []
    curves = read_event_files([path], progress=reads.append, chunk_bytes=97)
    assert list(curves) == ["loss"] and len(curves["loss"]) == 10
    assert len(reads) < 50 and sum(reads) == path.stat().st_size


def test_a_record_claiming_more_than_an_event_can_hold_cuts_the_run_short(tmp_path):
    path = write_framed(tmp_path / "events.out.tfevents.1.h", [scalar_event(s, "loss", 1.0) for s in range(10)])
    valid = path.stat().st_size
    header = struct.pack("<Q", MAX_RECORD_BYTES + 1)
    crc = mask(crc32c_rows(np.frombuffer(header, dtype=np.uint8)[None, :]))[0]
    path.write_bytes(path.read_bytes() + header + struct.pack("<I", int(crc)) + b"\0" * 5000)
    notes = []
    curves = read_event_files([path], notes=notes)
    assert len(curves["loss"]) == 10
    assert notes == [
        f"{path}: cut short at byte {valid}: the record there claims {MAX_RECORD_BYTES + 1} bytes, more than an "
        "event can hold; read up to it, the last 5012 bytes are skipped"
    ]
    # a record that runs past the end but could be genuine is a live run (or one killed while
    # writing): read up to it, with a note saying so, not the "more than an event can hold" one
    header = struct.pack("<Q", 6000)
    crc = mask(crc32c_rows(np.frombuffer(header, dtype=np.uint8)[None, :]))[0]
    path.write_bytes(path.read_bytes()[:valid] + header + struct.pack("<I", int(crc)) + b"\0" * 5000)
    notes = []
    assert len(read_event_files([path], notes=notes)["loss"]) == 10
    assert notes == [
        f"{path}: ends in a partial record at byte {valid} (5012 bytes: a run still being written, or killed "
        "while writing); read up to it"
    ]
