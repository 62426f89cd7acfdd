"""Malformed input to the real `mlcheck analyze` command, one row per input (issue 11, items 9-14
and more): every row runs the command as a subprocess with a timeout (no hang), asserts its exit
status (2 for bad input; 0 or 1 when a valid run beside the bad one is analysed), one line on
stderr naming the path and the problem, no traceback, and, where a valid run sits beside the
bad input, that its finding is still reported.

Rows marked `unprivileged` need a file the command cannot read: as root (here and in CI) the
subprocess runs without the capabilities that let root read anything (CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH), dropped from its bounding set before it starts.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

from analyze_logs import interleave, scalar_event, write_framed
from mlcheck.analyze.tfrecord import crc32c_rows, encode_records, mask

TIMEOUT_S = 60  # a hang fails the row instead of the whole session
EVENTS = "events.out.tfevents.1.host"


def _diverging(n: int = 3000) -> dict:
    """A per-step loss that falls then climbs tenfold: `loss-divergence` (an error, exit 1)."""
    s = np.arange(n)
    best = 2.3 * np.exp(-s / 400) + 0.2
    turn = n // 2
    loss = np.where(s < turn, best, best[turn] * np.minimum(10.0, 1 + (s - turn) / 100))
    return {"train_loss": (s, loss), "lr": (s, np.full(n, 0.01))}


def good_run(tmp: Path) -> Path:
    """The valid run that sits beside bad input; its `loss-divergence` must be reported."""
    return write_framed(tmp / "good" / EVENTS, interleave(_diverging()))


# -- building the inputs -------------------------------------------------------------------------


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _symlink(path: Path, target: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return path


def _unreadable(path: Path) -> Path:
    path.chmod(0)
    return path


def _valid_prefix() -> bytes:
    return encode_records(
        [event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString()]
        + [e.SerializeToString() for e in interleave(_diverging())]
    )


HUGE_RECORD_AT = len(_valid_prefix())


def _huge_record_header(path: Path) -> Path:
    """A valid run, then a record header claiming 2**62 bytes (valid checksum) at byte
    HUGE_RECORD_AT, and 4 MiB more."""
    length = struct.pack("<Q", 1 << 62)
    crc = mask(crc32c_rows(np.frombuffer(length, dtype=np.uint8)[None, :]))[0]
    return _write(path, _valid_prefix() + length + struct.pack("<I", int(crc)) + os.urandom(4 << 20))


def _bad_tensor_content(path: Path) -> Path:
    """A TF2 scalar whose tensor_content holds 3 bytes: not a whole float32."""
    tensor = tensor_pb2.TensorProto(dtype=1, tensor_shape=tensor_shape_pb2.TensorShapeProto(), tensor_content=b"abc")
    value = summary_pb2.Summary.Value(tag="loss", tensor=tensor)
    value.metadata.plugin_data.plugin_name = "scalars"
    events = [scalar_event(s, "loss", 1.0) for s in range(5)]
    events.append(event_pb2.Event(wall_time=1.7e9, step=5, summary=summary_pb2.Summary(value=[value])))
    return write_framed(path, events)


def _inf_epoch(path: Path) -> Path:
    """The diverging run with Lightning's `epoch` scalar, its last value inf."""
    curves = _diverging()
    steps = curves["train_loss"][0]
    epoch = (steps // 300).astype(float)
    epoch[-1] = np.inf
    return write_framed(path, interleave({**curves, "epoch": (steps, epoch)}))


def _deep(tmp: Path, levels: int = 1100) -> Path:
    """A folder `levels` deep (made one level at a time: os.makedirs recurses too)."""
    folder = tmp
    for _ in range(levels):
        folder = folder / "d"
        folder.mkdir()
    return folder


def _undeep(tmp: Path) -> None:
    """Removes what `_deep` made, bottom-up (shutil.rmtree, and so pytest's clean-up, recurse)."""
    folder = tmp / "d"
    if not folder.is_dir():
        return
    while (folder / "d").is_dir():
        folder = folder / "d"
    while folder != tmp:
        for item in folder.iterdir():
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        folder.rmdir()
        folder = folder.parent


def _length_crc_corrupt(path: Path) -> Path:
    write_framed(path, [scalar_event(s, "loss", 1.0) for s in range(40)])
    data = bytearray(path.read_bytes())
    data[300:308] = b"\x07" * 8
    path.write_bytes(bytes(data))
    return path


def _pictures_only(path: Path) -> Path:
    """Two images and a histogram, as SummaryWriter's add_image and add_histogram write them:
    a file that is neither empty nor cut off, with no scalar in it."""
    image = summary_pb2.Summary.Image(height=1, width=1, colorspace=1, encoded_image_string=b"png")
    values = [summary_pb2.Summary.Value(tag="x", image=image) for _ in range(2)]
    values.append(summary_pb2.Summary.Value(tag="w", histo=summary_pb2.HistogramProto(num=1)))
    return write_framed(path, [event_pb2.Event(wall_time=1.7e9, step=0, summary=summary_pb2.Summary(value=values))])


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def _pyproject(tmp: Path, toml: str) -> Path:
    """A run with a loss curve, configured by `toml` in tmp/pyproject.toml (found from cwd)."""
    _write(tmp / "pyproject.toml", toml)
    good_run(tmp / "logs")
    return tmp / "logs"


# a finding as the sinks write it (`findings.jsonl`), of the check the good run's curves also show
RECORDED = json.dumps(
    {
        "check": "loss-divergence",
        "severity": "error",
        "step": 1600,
        "epoch": None,
        "message": "Recorded live.",
        "evidence": {"loss": "nan"},
        "hint": "Lower the learning rate.",
        "run": None,
    }
)


def _recorded(folder: Path, text: bytes | str) -> Path:
    """The good run in tmp/good with `text` as its findings.jsonl."""
    good_run(folder)
    return _write(folder / "good" / "findings.jsonl", text)


KERAS_ROWS = "".join(f"{e},{2.0 / (1 + e):.4f},{2.2 / (1 + e):.4f}\n" for e in range(8))
# KERAS_ROWS with a column of text (a run name: no note) and one loss written as "1.#QNAN"
TEXT_AMONG_NUMBERS = "".join(
    f"{e},{'1.#QNAN' if e == 3 else f'{2.0 / (1 + e):.4f}'},{2.2 / (1 + e):.4f},exp1\n" for e in range(8)
)


# 402 epochs: the first 4 KiB (where a byte that is not UTF-8 refuses the file) are clean
LONG_KERAS_CSV = (
    "epoch,loss,val_loss\n" + "".join(f"{e},{2.0 / (1 + e):.4f},{2.2 / (1 + e):.4f}\n" for e in range(400))
).encode()
# a Trainer state whose loss is text in two entries ("nan" written by a callback's own logging)
TRAINER_STATE_TEXT_VALUES = json.dumps(
    {
        "log_history": [
            {"loss": "nan" if k == 3 else ("0.5" if k == 6 else 2.0 / k), "step": 10 * k} for k in range(1, 30)
        ]
    }
)


# -- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One malformed input: `build(tmp)` makes it under tmp and returns PATH for the command.

    exit: the expected status. stderr: text the one stderr line must hold (besides the path
    named by `names`, relative to tmp). beside: a valid run sits beside the bad input (its
    finding must be in the output). unprivileged: the command must not be able to read
    mode-000 files.
    """

    id: str
    build: Callable[[Path], Path]
    exit: int
    stderr: tuple[str, ...]
    names: str | None = None
    beside: bool = False
    unprivileged: bool = False


# steps as a careless writer leaves them: too large for an int64, not finite, negative
TRAINER_STATE_BAD_STEPS = json.dumps(
    {"log_history": [{"loss": 1.0, "step": 1e30}, {"loss": 0.9, "step": float("nan")}, {"loss": 0.8, "step": -3}]}
)


def _beside(build: Callable[[Path], object]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        good_run(tmp)
        build(tmp)
        return tmp

    return make


def _alone(build: Callable[[Path], object], path: str | None = None) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        build(tmp)
        return tmp / path if path else tmp

    return make


CASES = [
    # item 9: symbolic links that lead nowhere, unreadable folders
    Case(
        "dangling-symlink-beside",
        _beside(lambda t: _symlink(t / "bad" / EVENTS, "missing")),
        1,
        ("which does not exist",),
        f"bad/{EVENTS}",
        beside=True,
    ),
    Case(
        "looping-symlink-beside",
        _beside(lambda t: _symlink(t / "bad" / EVENTS, EVENTS)),
        1,
        ("symbolic link loop",),
        f"bad/{EVENTS}",
        beside=True,
    ),
    Case("dangling-symlink-alone", _alone(lambda t: _symlink(t / EVENTS, "missing")), 2, ("does not exist",), EVENTS),
    Case(
        "symlink-loop-as-path",
        _alone(lambda t: _symlink(t / "loop", "loop"), "loop"),
        2,
        ("symbolic link loop",),
        "loop",
    ),
    Case(
        "unreadable-root",
        _alone(lambda t: (good_run(t / "root"), _unreadable(t / "root")), "root"),
        2,
        ("permission denied",),
        "root",
        unprivileged=True,
    ),
    Case(
        "unreadable-subdirectory-beside",
        _beside(lambda t: _unreadable(good_run(t / "bad").parent.parent)),
        1,
        ("cannot be read (permission denied)",),
        "bad",
        beside=True,
        unprivileged=True,
    ),
    Case(
        "only-an-unreadable-subdirectory",
        _alone(lambda t: _unreadable(good_run(t / "bad").parent.parent)),
        2,
        ("cannot be read (permission denied)",),
        "bad",
        unprivileged=True,
    ),
    Case(
        "unreadable-event-file-beside",
        _beside(lambda t: _unreadable(good_run(t / "bad"))),
        1,
        ("cannot be read (permission denied)",),
        f"bad/good/{EVENTS}",
        beside=True,
        unprivileged=True,
    ),
    # item 10: a FIFO named like a log is never opened (it would block forever)
    Case("fifo-event-file-beside", _beside(lambda t: _fifo(t / "bad" / EVENTS)), 1, ("FIFO",), f"bad/{EVENTS}", True),
    Case("fifo-event-file-alone", _alone(lambda t: _fifo(t / EVENTS)), 2, ("FIFO",), EVENTS),
    Case("fifo-as-path", _alone(lambda t: _fifo(t / EVENTS), EVENTS), 2, ("FIFO",), EVENTS),
    Case(
        "fifo-metrics-csv-beside",
        _beside(lambda t: _fifo(t / "b" / "metrics.csv")),
        1,
        ("FIFO",),
        "b/metrics.csv",
        True,
    ),
    # item 11: a header claiming 2**62 bytes mid-file: read up to it, say where it was cut short
    Case(
        "record-claiming-2**62-bytes",
        _alone(lambda t: _huge_record_header(t / "good" / EVENTS)),
        1,
        (f"cut short at byte {HUGE_RECORD_AT}", "claims 4611686018427387904 bytes"),
        f"good/{EVENTS}",
        beside=True,
    ),
    # item 12: a tensor whose content is not a whole number of values
    Case(
        "corrupt-tensor-content-beside",
        _beside(lambda t: _bad_tensor_content(t / "bad" / EVENTS)),
        1,
        ("tensor_content holds 3 bytes",),
        f"bad/{EVENTS}",
        beside=True,
    ),
    Case(
        "corrupt-tensor-content-alone",
        _alone(lambda t: _bad_tensor_content(t / EVENTS)),
        2,
        ("corrupt record at byte", "tensor_content"),
        EVENTS,
    ),
    # item 13: absurd steps and epochs; unreadable CSVs
    Case(
        "tensorboard-epoch-scalar-inf",
        _alone(lambda t: _inf_epoch(t / "good" / EVENTS)),
        1,
        ("'epoch' are not epoch numbers", "inf at step 2999", "ignored"),
        "good",
        beside=True,
    ),
    Case(
        "csv-epoch-1e300",
        _alone(lambda t: _write(t / "log.csv", "epoch,loss\n0,1.0\n1e300,0.5\n"), "log.csv"),
        2,
        ("epoch is 1e+300",),
        "log.csv",
    ),
    Case(
        "csv-step-inf",
        _alone(lambda t: _write(t / "metrics.csv", "epoch,step,train_loss\n0,0,1.0\n0,inf,0.5\n"), "metrics.csv"),
        2,
        ("step is inf",),
        "metrics.csv",
    ),
    Case(
        "unreadable-metrics-csv-beside",
        _beside(lambda t: _unreadable(_write(t / "b" / "metrics.csv", "epoch,step,loss\n0,0,1\n"))),
        1,
        ("cannot be read (permission denied)",),
        "b/metrics.csv",
        beside=True,
        unprivileged=True,
    ),
    Case(
        "unreadable-metrics-csv-as-path",
        _alone(lambda t: _unreadable(_write(t / "metrics.csv", "epoch,step,loss\n0,0,1\n")), "metrics.csv"),
        2,
        ("cannot be read (permission denied)",),
        "metrics.csv",
        unprivileged=True,
    ),
    # item 14: bad configuration values: exit 2 naming the file and the key
    Case("config-checks-5", lambda t: _pyproject(t, "[tool.mlcheck]\nchecks = 5\n"), 2, ("checks",), "pyproject.toml"),
    Case("config-select-5", lambda t: _pyproject(t, "[tool.mlcheck]\nselect = 5\n"), 2, ("select",), "pyproject.toml"),
    Case(  # `select = []` used to run every default check, as if `select` were absent
        "config-select-empty",
        lambda t: _pyproject(t, "[tool.mlcheck]\nselect = []\n"),
        2,
        ("select = []", "names no check id", "remove `select`"),
        "pyproject.toml",
    ),
    Case(
        "config-fail-on-bogus",
        lambda t: _pyproject(t, '[tool.mlcheck]\nfail-on = "bogus"\n'),
        2,
        ("fail-on", "'bogus'"),
        "pyproject.toml",
    ),
    Case(
        "config-fail-on-3", lambda t: _pyproject(t, "[tool.mlcheck]\nfail-on = 3\n"), 2, ("fail-on",), "pyproject.toml"
    ),
    Case(
        "config-check-args-not-a-table",
        lambda t: _pyproject(t, "[tool.mlcheck.checks]\nloss-divergence = 5\n"),
        2,
        ("loss-divergence", "table"),
        "pyproject.toml",
    ),
    Case(
        "config-unknown-check-argument",
        lambda t: _pyproject(t, "[tool.mlcheck.checks.loss-divergence]\nnope = 1\n"),
        2,
        ("loss-divergence", "nope"),
        "pyproject.toml",
    ),
    Case(
        "config-check-argument-of-the-wrong-kind",
        lambda t: _pyproject(t, '[tool.mlcheck.checks.loss-divergence]\nfactor = "x"\n'),
        2,
        ("[tool.mlcheck.checks.loss-divergence]", "factor must be a number"),
        "pyproject.toml",
    ),
    # a threshold no check can mean was taken: factor = -3 or nan (every comparison with NaN is
    # false: the check never fired and the run read as clean)
    Case(
        "config-check-argument-negative-where-its-default-is-positive",
        lambda t: _pyproject(t, "[tool.mlcheck.checks.loss-divergence]\nfactor = -3\n"),
        2,
        ("[tool.mlcheck.checks.loss-divergence]", "factor must be >= 0, as its default 2.0 is, got -3"),
        "pyproject.toml",
    ),
    Case(
        "config-check-argument-nan",
        lambda t: _pyproject(t, "[tool.mlcheck.checks.train-val-gap]\nz = nan\n"),
        2,
        ("[tool.mlcheck.checks.train-val-gap]", "z must be a number, not NaN (default 3.0)"),
        "pyproject.toml",
    ),
    # select and suppress naming the same checks ran none: "No problems found.", exit 0
    Case(
        "config-everything-selected-is-suppressed",
        lambda t: _pyproject(t, '[tool.mlcheck]\nselect = ["loss-divergence"]\nsuppress = ["loss-divergence"]\n'),
        2,
        ("every check selected (loss-divergence) is also suppressed, so none would run",),
    ),
    Case(
        "config-mlcheck-5",
        lambda t: _pyproject(t, "[tool]\nmlcheck = 5\n"),
        2,
        ("[tool.mlcheck] must be a table",),
        "pyproject.toml",
    ),
    Case("config-tool-5", lambda t: _pyproject(t, "tool = 5\n"), 2, ("tool",), "pyproject.toml"),
    Case(
        "config-suppress-unknown-id",
        lambda t: _pyproject(t, '[tool.mlcheck]\nsuppress = "nope"\n'),
        2,
        ("suppress", "nope"),
        "pyproject.toml",
    ),
    Case("config-not-toml", lambda t: _pyproject(t, "[tool.mlcheck\n"), 2, ("cannot read",), "pyproject.toml"),
    # more: empty and garbage files
    Case("empty-file", _alone(lambda t: _write(t / "log.csv", b""), "log.csv"), 2, ("is empty",), "log.csv"),
    # blank lines above the header: it was "log.csv is empty: no CSV header"
    Case(
        "user16-blank-first-line",
        _alone(lambda t: _write(t / "log.csv", "\n\nepoch,loss\n0,1.0\n1,0.9\n"), "log.csv"),
        2,
        ("its first line is blank",),
        "log.csv",
    ),
    Case("zero-length-event-file", _alone(lambda t: _write(t / EVENTS, b"")), 2, ("no scalars",), ""),
    Case(
        "zero-length-event-file-beside",
        _beside(lambda t: _write(t / "bad" / EVENTS, b"")),
        1,
        ("no scalars",),
        "bad",
        beside=True,
    ),
    Case(
        "garbage-named-like-an-event-file",
        _alone(lambda t: _write(t / EVENTS, bytes(range(256)) * 64)),
        2,
        ("corrupt record at byte 0",),
        EVENTS,
    ),
    Case(
        "length-checksum-corrupt-beside",
        _beside(lambda t: _length_crc_corrupt(t / "bad" / EVENTS)),
        1,
        ("corrupt record at byte",),
        f"bad/{EVENTS}",
        beside=True,
    ),
    Case(
        "newline-in-a-file-name",
        _alone(lambda t: _write(t / "bad\nrun" / EVENTS, b"\x07" * 64)),
        2,
        ("bad\\x0arun", "corrupt record at byte 0"),
    ),
    Case(
        "binary-garbage-file",
        _alone(lambda t: _write(t / "x.bin", bytes(range(256)) * 4), "x.bin"),
        2,
        ("neither",),
        "x.bin",
    ),
    Case(
        "directory-of-nothing", _alone(lambda t: _write(t / "notes.txt", "hi")), 2, ("no TensorBoard event files",), ""
    ),
    # more: CSVs
    Case(
        "csv-header-only",
        _alone(lambda t: _write(t / "log.csv", "epoch,loss,val_loss\n"), "log.csv"),
        2,
        ("has a header", "but no rows"),
        "log.csv",
    ),
    Case(
        "csv-non-numeric-loss",
        _alone(lambda t: _write(t / "log.csv", "epoch,loss\n0,high\n1,low\n"), "log.csv"),
        2,
        ("no loss curve found", "without numbers: loss"),
        "log.csv",
    ),
    Case(
        "csv-space-delimited",
        _alone(lambda t: _write(t / "log.csv", "epoch loss\n0 1.0\n1 0.5\n"), "log.csv"),
        2,
        ("does not look like a metrics CSV",),
        "log.csv",
    ),
    Case(
        "csv-utf16",
        _alone(lambda t: _write(t / "log.csv", ("epoch,loss\n" + KERAS_ROWS).encode("utf-16")), "log.csv"),
        2,
        ("neither a TensorBoard event file nor a CSV",),
        "log.csv",
    ),
    Case(
        "csv-huge-header-line",
        _alone(lambda t: _write(t / "log.csv", "epoch," + "x" * (4 << 20)), "log.csv"),
        2,
        ("first line is longer than",),
        "log.csv",
    ),
    # findings recorded live (findings.jsonl) beside a run: bad lines are skipped with one line
    # naming the file, the good lines and the run's own findings are still shown
    Case(
        "findings-jsonl-bad-lines",
        _alone(
            lambda t: _recorded(
                t,
                b"\n".join(
                    [
                        RECORDED.encode(),
                        b"not json",
                        b"[1, 2]",
                        b'{"check": "loss-divergence"}',
                        b'{"check": "x", "severity": "bogus", "message": "m"}',
                        b'{"check": "x", "severity": "info", "message": "m", "step": "three"}',
                        b'{"check": "x", "severity": "info", "message": "m", "evidence": [1]}',
                        b"\xff\xfe garbage",
                        b"[" * 100_000,
                        b"",
                        RECORDED.encode(),
                        b'{"check": "loss-div',  # cut short: the run is still writing
                    ]
                ),
            )
        ),
        1,
        ("9 line(s) that are not findings were skipped", "first: line 2: not JSON"),
        "good/findings.jsonl",
        beside=True,
    ),
    Case(
        "findings-jsonl-last-line-cut-short",
        _alone(lambda t: _recorded(t, RECORDED + "\n" + RECORDED[:40])),
        1,
        ("1 line(s)", "line 2: cut short"),
        "good/findings.jsonl",
        beside=True,
    ),
    Case(
        "findings-jsonl-line-over-1-MiB",
        _alone(lambda t: _recorded(t, "x" * (2 << 20) + "\n" + RECORDED + "\n")),
        1,
        ("line 1: longer than 1048576 bytes",),
        "good/findings.jsonl",
        beside=True,
    ),
    Case(
        "findings-jsonl-fifo",
        _alone(lambda t: (good_run(t), _fifo(t / "good" / "findings.jsonl"))),
        1,
        ("not a regular file",),
        "good/findings.jsonl",
        beside=True,
    ),
    Case(
        "findings-jsonl-dangling-symlink",
        _alone(lambda t: (good_run(t), _symlink(t / "good" / "findings.jsonl", "missing"))),
        1,
        ("cannot be read (no such file or directory)",),
        "good/findings.jsonl",
        beside=True,
    ),
    Case(
        "findings-jsonl-unreadable",
        _alone(lambda t: _unreadable(_recorded(t, RECORDED + "\n"))),
        1,
        ("cannot be read (permission denied)",),
        "good/findings.jsonl",
        beside=True,
        unprivileged=True,
    ),
    Case(
        "findings-jsonl-fifo-in-a-folder-of-its-own",
        _beside(lambda t: _fifo(t / "other" / "findings.jsonl")),
        1,
        ("skipped", "not a regular file"),
        "other/findings.jsonl",
        beside=True,
    ),
    # a cell of text among numbers: its row is left out of the curve, said in a note (was silent:
    # a NaN written as MSVC's "1.#QNAN" passed unseen)
    Case(
        "csv-nul-byte-in-a-cell",
        _alone(lambda t: _write(t / "log.csv", "epoch,loss\n0,1.0\n1,\x000.5\n2,0.4\n"), "log.csv"),
        0,
        ("column 'loss' holds text that is not a number in 1 data row(s) (first: row 2, '\\x000.5')",),
        "log.csv",
    ),
    Case(
        "csv-text-among-numbers-beside",
        _beside(lambda t: _write(t / "log.csv", "epoch,loss,val_loss,run\n" + TEXT_AMONG_NUMBERS)),
        1,
        ("column 'loss' holds text that is not a number in 1 data row(s) (first: row 4, '1.#QNAN')", "left out"),
        "log.csv",
        beside=True,
    ),
    Case(
        "csv-huge-cell",
        _alone(lambda t: _write(t / "log.csv", "epoch,loss\n0," + "9" * (4 << 20) + "\n"), "log.csv"),
        2,
        ("unreadable CSV", "field larger than field limit"),
        "log.csv",
    ),
    # two CSV logs joined with `cat`: the second header was "text that is not a number" in every
    # column, one line each
    Case(
        "csv-header-repeated",
        _alone(lambda t: _write(t / "log.csv", ("epoch,loss,val_loss\n" + KERAS_ROWS) * 2), "log.csv"),
        0,
        ("its header line is repeated 1 time(s) (first: after data row 8;", "those lines are skipped"),
        "log.csv",
    ),
    # a JSON list given as PATH was read as a CSV: "has a header ([1, 2, 3]) but no rows"
    Case(
        "json-list-not-a-history",
        _alone(lambda t: _write(t / "history.json", "[1, 2, 3]\n"), "history.json"),
        2,
        ("holds JSON that is not a Keras History dict of lists ('[1, 2, 3]')", "json.dump(history.history, f)"),
        "history.json",
    ),
    # an event file of pictures was called "empty, or cut off before the first complete record"
    Case(
        "images-and-histograms-only",
        _alone(lambda t: _pictures_only(t / "run" / EVENTS), "run"),
        2,
        ("no scalars in its event files, only histograms (1), images (2)", "mlcheck judges scalar curves"),
        "run",
    ),
    # round 12: a run just started (the header event alone) was "empty, or cut off before the first
    # complete record", which it is not
    Case(
        "event-file-header-only",
        _alone(
            lambda t: write_framed(
                t / "run" / EVENTS, [event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2")]
            ),
            "run",
        ),
        2,
        ("no scalars in its event files (empty, only the header a writer starts with", "writer.flush()"),
        "run",
    ),
    # round 10 (a new user's bad input): a Trainer state whose steps are no step numbers was
    # "could not be read (OverflowError: ...); please report this"; a binary trainer_state.json in a
    # folder was passed over ("holds no TensorBoard event files ..."); a Latin-1 CSV did not say so
    Case(
        "trainer-state-steps-not-numbers-beside",
        _beside(lambda t: _write(t / "hf" / "trainer_state.json", TRAINER_STATE_BAD_STEPS)),
        1,
        ("skipped", "no logged value can be placed: 3 log_history entries without a step number", "1e+30"),
        "hf/trainer_state.json",
        beside=True,
    ),
    Case(
        "trainer-state-not-utf8-in-folder",
        _alone(lambda t: _write(t / "out" / "trainer_state.json", b"\xff\xfe{garbage")),
        2,
        ("not UTF-8: byte 0xff",),
        "out/trainer_state.json",
    ),
    Case(
        "csv-latin-1",
        _alone(lambda t: _write(t / "log.csv", "époque,loss\n0,1.0\n1,0.5\n".encode("latin-1")), "log.csv"),
        2,
        ("neither a TensorBoard event file nor a CSV", "not UTF-8: byte 0xe9", "saved as UTF-8"),
        "log.csv",
    ),
    # a row with cells past the header's (a delimiter inside a value) was read silently
    Case(
        "csv-row-wider-than-header",
        _alone(lambda t: _write(t / "log.csv", "epoch,loss,val_loss\n" + KERAS_ROWS + "8,0.2,0.25,7,9\n"), "log.csv"),
        0,
        ("1 data row(s) hold more cells than the header's 3 columns (first: data row 9;", "left out"),
        "log.csv",
    ),
    # round 11: a byte that is not UTF-8 past the first 4 KiB refused the whole file ("unreadable
    # CSV ('utf-8' codec can't decode ...)"); negative epochs were read as they were (findings at
    # "epoch -2"); a Trainer state's text values were left out without a word
    Case(
        "csv-not-utf8-past-the-head",
        _alone(lambda t: _write(t / "log.csv", LONG_KERAS_CSV + b"400,0.0\xe91,0.2\n401,0.01,0.2\n"), "log.csv"),
        0,
        ("1 cell(s) hold bytes that are not UTF-8 (first: data row 401, column 'loss', byte 0xe9)", "left out"),
        "log.csv",
    ),
    Case(
        "csv-negative-epochs",
        _alone(
            lambda t: _write(t / "log.csv", "epoch,loss,val_loss\n-2,3.0,3.1\n-1,2.5,2.6\n" + KERAS_ROWS), "log.csv"
        ),
        0,
        ("2 data row(s) have a negative epoch (first: data row 1, epoch -2)", "those rows are left out"),
        "log.csv",
    ),
    Case(
        "csv-every-epoch-negative",
        _alone(lambda t: _write(t / "log.csv", "epoch,loss\n-3,1.0\n-2,0.9\n-1,0.8\n"), "log.csv"),
        2,
        ("every data row's epoch is negative (3 rows); epochs count from 0",),
        "log.csv",
    ),
    Case(
        "trainer-state-text-values",
        _alone(lambda t: _write(t / "hf" / "trainer_state.json", TRAINER_STATE_TEXT_VALUES), "hf"),
        0,
        ("'loss' holds text, not a number, in 2 log_history entries (first: entry 2, 'nan')", "left out"),
        "hf/trainer_state.json",
    ),
    # no run readable: every reason named, not the first one and "(and 1 more)"
    Case(
        "no-run-readable-each-reason-named",
        _alone(
            lambda t: (
                _pictures_only(t / "a" / EVENTS),
                write_framed(t / "b" / EVENTS, [scalar_event(s, "hp/metric", 1.0) for s in range(3)]),
            )
        ),
        2,
        (
            "could be read (2 tried): [1] ",
            "only histograms (1), images (2)",
            "; [2] ",
            "no loss curve found (scalar tags: hp/metric)",
        ),
        "b",
    ),
]

# inputs that are not bad: read as they are, with nothing on stderr
VALID = [
    ("csv-with-byte-order-mark", lambda t: _write(t / "log.csv", "\ufeffepoch,loss,val_loss\n" + KERAS_ROWS)),
    # a line ended by a delimiter (spreadsheet exports): was "does not look like a metrics CSV"
    (
        "csv-lines-ended-by-a-delimiter",
        lambda t: _write(t / "log.csv", "epoch,loss,val_loss,\n" + KERAS_ROWS.replace("\n", ",\n")),
    ),
    ("directory-loop-beside", _beside(lambda t: _symlink(t / "sub" / "loop", ".."))),
    ("data-csv-beside", _beside(lambda t: _write(t / "data.csv", "x,y\n1,2\n"))),
    ("findings-jsonl-empty", lambda t: _recorded(t, "").parent.parent),
    ("findings-jsonl-blank-lines", lambda t: _recorded(t, "\n\n" + RECORDED + "\n\n").parent.parent),
]


def _cut(path: Path, n: int) -> str:
    path.write_bytes(path.read_bytes()[:-n])
    return path.name


# -- running the command -------------------------------------------------------------------------

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_read_anything() -> None:
    """In the child, before exec: drop the capabilities that let root read mode-000 files from
    the bounding set, so the command runs as root that obeys file permissions."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)


def mlcheck_analyze(path: Path, *args: str, cwd: Path, unprivileged: bool = False) -> subprocess.CompletedProcess:
    drop = unprivileged and os.geteuid() == 0
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=cwd,
        preexec_fn=_drop_read_anything if drop else None,
    )


@pytest.fixture(scope="module")
def permissions_hold(tmp_path_factory) -> bool:
    """Whether a mode-000 file is unreadable to the command (false where capabilities cannot
    be dropped, e.g. a container without CAP_SETPCAP)."""
    secret = tmp_path_factory.mktemp("perm") / "secret"
    secret.write_text("x")
    secret.chmod(0)
    drop = os.geteuid() == 0
    probe = subprocess.run(
        [sys.executable, "-c", f"open({str(secret)!r}).read()"],
        capture_output=True,
        timeout=TIMEOUT_S,
        preexec_fn=_drop_read_anything if drop else None,
    )
    return probe.returncode != 0


def _findings(result: subprocess.CompletedProcess) -> list[dict]:
    return json.loads(result.stdout)["findings"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input(case: Case, tmp_path: Path, request) -> None:
    if case.unprivileged and not request.getfixturevalue("permissions_hold"):
        pytest.skip("cannot make a file unreadable to this process")
    path = case.build(tmp_path)
    try:
        result = mlcheck_analyze(path, cwd=tmp_path, unprivileged=case.unprivileged)
    finally:
        for p in [tmp_path, *tmp_path.rglob("*")]:  # let pytest clean up what was made unreadable
            if not p.is_symlink():
                p.chmod(0o755)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == case.exit, (result.stdout[-2000:], result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("mlcheck: error:" if case.exit == 2 else "mlcheck:"), line
    if case.names is not None:
        assert str(tmp_path / case.names) in line, line
    for needle in case.stderr:
        assert needle in line, line
    if case.beside:
        found = [(f["run"], f["check"]) for f in _findings(result)]
        assert ("good", "loss-divergence") in found, found


@pytest.mark.parametrize("name,build", VALID, ids=[v[0] for v in VALID])
def test_odd_but_valid_input(name: str, build: Callable[[Path], Path], tmp_path: Path) -> None:
    path = build(tmp_path)
    result = mlcheck_analyze(path, cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1), result.stderr
    assert result.stderr == ""
    payload = json.loads(result.stdout)
    assert payload["runs"] and not payload["unreadable"]
    assert all(r["series"].get("train_loss") or r["series"].get("epoch_train_loss") for r in payload["runs"])


def test_partial_last_record_is_read_up_to_and_noted(tmp_path: Path) -> None:
    """A run killed while writing its event file: analysed as far as it goes, one line on stderr
    naming the file (it was read with nothing said, as if the file were whole)."""
    name = _cut(good_run(tmp_path), 9)
    result = mlcheck_analyze(tmp_path / "good" / name, cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    assert "ends in a partial record at byte" in result.stderr and name in result.stderr
    payload = json.loads(result.stdout)
    (run,) = payload["runs"]
    assert run["series"].get("train_loss") and any("partial record" in n for n in run["notes"])


@pytest.fixture
def outside_pytest_tmp():
    """A folder outside pytest's temporary folders: pytest's clean-up (shutil.rmtree) recurses,
    and a tree 1,100 deep left by an interrupted test would break it for every later session."""
    root = Path(tempfile.mkdtemp(prefix="mlcheck-deep-"))
    yield root
    _undeep(root)
    shutil.rmtree(root, ignore_errors=True)


def test_a_tree_1100_folders_deep(outside_pytest_tmp: Path) -> None:
    """Deeper than Python's recursion limit (os.walk recursed): both runs found, one analysed."""
    deep = _deep(outside_pytest_tmp)
    good_run(deep)
    _write(deep / "empty" / EVENTS, b"")
    result = mlcheck_analyze(outside_pytest_tmp, cwd=outside_pytest_tmp)
    assert "Traceback" not in result.stderr and result.returncode == 1, result.stderr[-2000:]
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mlcheck: skipped {deep / 'empty'}: no scalars"), line[-300:]
    (run,) = json.loads(result.stdout)["runs"]
    assert run["name"].endswith("/d/d/good") and run["findings"] >= 1


def test_a_lone_string_is_one_check_id(tmp_path: Path) -> None:
    """`suppress="loss-divergence"` from Python silences that check, not the letters l, o, s..."""
    import mlcheck

    good_run(tmp_path)
    assert "loss-divergence" in [f.check for _, f in mlcheck.analyze(tmp_path).findings]
    quiet = mlcheck.analyze(tmp_path, suppress="loss-divergence")
    assert "loss-divergence" not in [f.check for _, f in quiet.findings]
    assert [f.check for _, f in mlcheck.analyze(tmp_path, select="loss-divergence").findings] == ["loss-divergence"]


def test_a_parent_config_is_announced(tmp_path: Path) -> None:
    """A pyproject.toml above the working folder suppressing `nonfinite-loss` turns an all-NaN
    log from exit 1 into exit 0: allowed, but never unannounced. A lone string is one id."""
    _write(tmp_path / "pyproject.toml", '[tool.mlcheck]\nsuppress = "nonfinite-loss"\n')
    work = tmp_path / "project"
    work.mkdir()
    steps = np.arange(200)
    write_framed(work / "run" / EVENTS, interleave({"train_loss": (steps, np.full(200, np.nan))}))
    result = mlcheck_analyze(work, cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"mlcheck: using configuration from {tmp_path / 'pyproject.toml'}"
    assert not [f for f in _findings(result) if f["check"] == "nonfinite-loss"]
    unconfigured = mlcheck_analyze(work, "--config", str(_write(work / "pyproject.toml", "")), cwd=work)
    assert unconfigured.returncode == 1 and "nonfinite-loss" in unconfigured.stdout


def test_wrong_python_arguments_name_themselves(tmp_path: Path) -> None:
    """`mlcheck.analyze` from Python: each was an AttributeError or TypeError naming no argument,
    or (a non-string tag) "could not be read ... please report this"; a generator for `suppress`
    was read empty by the time the findings were filtered."""
    import mlcheck

    good_run(tmp_path)
    refusals = [
        ({"path": None}, "path must be a path"),
        ({"mapping": [("loss", "train_loss")]}, "mapping must be a dict"),
        ({"mapping": {1: "train_loss"}}, "mapping must map tags .* got 1: 'train_loss'"),
        ({"progress": 5}, "progress must be a function"),
    ]
    for kwargs, message in refusals:
        with pytest.raises(TypeError, match=message):
            mlcheck.analyze(**({"path": tmp_path} | kwargs))
    quiet = mlcheck.analyze(tmp_path, suppress=(i for i in ["loss-divergence"]))
    assert "loss-divergence" not in [f.check for _, f in quiet.findings]
    lone = mlcheck.analyze(tmp_path, checks="loss-divergence")  # one check, as for Monitor
    assert [f.check for _, f in lone.findings] == ["loss-divergence"]


def test_a_trainer_state_entry_without_a_step_number_is_left_out_with_a_note(tmp_path: Path) -> None:
    """The entries whose steps can be placed are read and judged; the others are named once."""
    s = np.arange(1, 3001, 10)
    loss = _diverging()["train_loss"][1][s]
    history = [{"loss": float(v), "step": int(k)} for k, v in zip(s, loss)]
    history[5]["step"] = 1e30
    _write(tmp_path / "hf" / "trainer_state.json", json.dumps({"log_history": history}))
    result = mlcheck_analyze(tmp_path / "hf", cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    assert ("trainer_state.json", "loss-divergence") in [(f["run"], f["check"]) for f in _findings(result)]
    note = "1 log_history entry without a step number (a whole number from 0 to 2**53) (first: entry 5, step 1e+30)"
    assert result.stderr.count(note) == 1, result.stderr
    assert note in json.loads(result.stdout)["runs"][0]["notes"][0]


def test_a_column_named_twice_is_its_first_column_with_a_note(tmp_path: Path) -> None:
    """`loss,loss` (two logs pasted side by side): the first column is the loss (it was the last,
    silently, so the first column's divergence was lost), and a note names both columns."""
    rows = []
    for e in range(30):
        clean = 2.0 / (1 + e)
        diverging = clean if e < 15 else 2.0 / 16 * (e - 14)
        rows.append(f"{e},{diverging:.4f},{clean:.4f},{clean * 1.1:.4f}\n")
    path = _write(tmp_path / "log.csv", "epoch,loss,loss,val_loss\n" + "".join(rows))
    result = mlcheck_analyze(path, cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    assert "loss-divergence" in [f["check"] for f in _findings(result)]
    note = f"{path}: the header names 'loss' 2 times (columns 2, 3): column 2 is read as 'loss', the others are"
    assert result.stderr.strip() == f"mlcheck: {note} left out", result.stderr


def test_user16_a_history_saved_with_pandas_to_csv_is_read_with_its_index_as_the_epoch(tmp_path: Path) -> None:
    """`pd.DataFrame(history.history).to_csv("history.csv")` writes pandas' index as a first
    column with no name (`,loss,val_loss`): the command refused the file ("does not look like a
    metrics CSV") and the divergence in it went unreported. The index is the epoch; a
    `pd.concat` of two fits' histories (the index starts again at 0) is one run per fit."""
    import pandas as pd

    epochs = np.arange(30)
    clean = 2.0 / (1 + epochs)
    diverging = np.where(epochs < 15, clean, 2.0 / 16 * (epochs - 14))
    history = {"loss": diverging, "val_loss": clean * 1.1}
    pd.DataFrame(history).to_csv(tmp_path / "history.csv")
    assert (tmp_path / "history.csv").read_text().startswith(",loss,val_loss\n0,")
    result = mlcheck_analyze(tmp_path / "history.csv", cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    assert "loss-divergence" in [f["check"] for f in _findings(result)]
    (run,) = json.loads(result.stdout)["runs"]
    assert run["epochs"] == 30 and "loss" in run["series"].values()

    healthy = {"loss": clean, "val_loss": clean * 1.1}
    pd.concat([pd.DataFrame(healthy), pd.DataFrame(healthy)]).to_csv(tmp_path / "two.csv", sep=";")
    result = mlcheck_analyze(tmp_path / "two.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # the second fit's restart is no divergence
    runs = json.loads(result.stdout)["runs"]
    assert [(r["name"], r["epochs"]) for r in runs] == [("two.csv (fit 1 of 2)", 30), ("two.csv (fit 2 of 2)", 30)]

    # an index that is no epoch number (dates, names) is left out: the rows are the epochs
    frame = pd.DataFrame(history, index=[f"day {k}" for k in epochs])
    frame.to_csv(tmp_path / "named.csv")
    result = mlcheck_analyze(tmp_path / "named.csv", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "loss-divergence" in [f["check"] for f in _findings(result)]
    # beside an epoch column, the index is left out
    frame = pd.DataFrame({"epoch": epochs + 5, **history})
    frame.to_csv(tmp_path / "epochs.csv")
    (run,) = json.loads(mlcheck_analyze(tmp_path / "epochs.csv", cwd=tmp_path).stdout)["runs"]
    assert run["epochs"] in (34, 35) and "" not in run["series"].values()  # the epoch column, not 0-29


def test_user16_event_points_at_a_negative_step_are_left_out_with_a_note(tmp_path: Path) -> None:
    """A CSV's rows at a negative step are left out with a note; an event file's points were
    judged as the start of the curve: a healthy falling loss logged with steps counted down
    to 0 (its best at step -299) was an ERROR `loss-divergence` "best at step -299". Now they
    are left out, as in a CSV, with a note; the points at steps 0 and on are judged."""
    steps = np.arange(300)
    falling = 2.0 * np.exp(-steps / 100) + 0.1
    events = [scalar_event(-int(s), "train_loss", float(v)) for s, v in zip(steps, falling)]
    events += [scalar_event(int(s), "train_loss", float(v)) for s, v in zip(steps, falling)]
    path = write_framed(tmp_path / "run" / EVENTS, events)
    result = mlcheck_analyze(path.parent, cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stdout
    assert _findings(result) == []
    note = "run: 299 point(s) are logged at a negative step (first: 'train_loss' at step -299); steps count from 0"
    assert note in result.stderr, result.stderr
    assert note in json.loads(result.stdout)["runs"][0]["notes"][0]
