"""Weights & Biases runs read from their own file, `wandb/run-<date>_<time>-<id>/run-<id>.wandb`
(issue #12, readers20).

What real repositories commit of a wandb run (wandb 0.10 on) is that binary file, with
`files/wandb-summary.json` (the last value of each key: no curve) and `files/output.log` (the
console) beside it; `wandb-history.jsonl` is no longer written. For example
nicetea17/CIFAR10-Classifier-AlexNet-and-Resnet18 at 20b3cd3402babbd633e5e6b162403a5044041a71,
`wandb/run-20251020_205458-pypd7lzd/run-pypd7lzd.wandb` (583 kB, 2,008 records, 50 history
records, wandb 0.22.2) and its copy under `wandb/latest-run/`. The files below are written here
in the same layout, byte for byte as wandb's datastore frames them: a 7-byte header, 32 KiB
blocks, records split across blocks (first / middle / last), protobuf `Record`s whose history
items name their key in `nested_key` and hold the value as JSON.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import mlcheck
from mlcheck.analyze.wandb import read_wandb_run
from mlcheck.errors import CSVLogError

BLOCK = 32768


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _history(step: int, values: dict[str, object]) -> bytes:
    """A `Record` holding one `wandb.log(values)` call at `step`, as wandb 0.22 writes it."""
    items = b"".join(
        _field(1, _field(2, key.encode()) + _field(16, json.dumps(value).encode()))
        for key, value in {**values, "_step": step, "_runtime": 1.5 + step, "_timestamp": 1.76e9 + step}.items()
    )
    history = items + (_field(2, _field(1, step)) if step else _field(2, b""))
    return _field(1, 10 + step) + _field(2, history) + _field(200, _field(1, b"pypd7lzd"))


def _other(number: int, size: int = 40) -> bytes:
    """A record that is no history: console output (field 13) of `size` bytes."""
    return _field(1, number) + _field(13, _field(1, b"x" * size))


def _framed(records: list[bytes]) -> bytes:
    """wandb's datastore framing: the header, then each record in 32 KiB blocks."""
    out = bytearray(struct.pack("<4sHB", b":W&B", 0xBEE1, 0))
    for record in records:
        data, first = record, True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < 7:
                out += b"\0" * left
                continue
            room = left - 7
            piece, data = data[:room], data[room:]
            kind = (1 if first else 4) if not data else (2 if first else 3)
            out += struct.pack("<IHB", 0, len(piece), kind) + piece
            first = False
            if not data:
                break
    return bytes(out)


def _overfitting_run(path: Path, epochs: int = 30) -> Path:
    records = [_field(1, 1) + _field(21, _field(1, b"0.22.2")), _other(2, 70_000)]  # a record of 3 blocks
    for epoch in range(epochs):
        train = 2.0 * math.exp(-epoch / 6) + 0.05
        val = 1.0 + 0.8 * math.exp(-epoch / 4) + (0.03 * (epoch - 12) if epoch > 12 else 0.0)
        values = {"epoch": epoch, "train_loss": train, "val_loss": val, "val_acc": 60 + min(epoch, 12)}
        values["learning_rate"] = 3e-4
        values["samples"] = {"_type": "table-file", "path": "media/table.json"}  # media: no curve
        records += [_history(epoch, values), _other(100 + epoch)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_framed(records))
    return path


def test_a_wandb_run_file_is_read_and_judged(tmp_path):
    # was: "holds no TensorBoard event files ... and no MLflow run" (exit 2)
    root = tmp_path / "wandb"
    run = _overfitting_run(root / "run-20251020_205458-pypd7lzd" / "run-pypd7lzd.wandb")
    latest = root / "latest-run" / run.name  # wandb's link to the newest run, a copy in a repository
    latest.parent.mkdir()
    latest.write_bytes(run.read_bytes())

    result = mlcheck.analyze(tmp_path)

    (one,) = result.runs  # latest-run is the same run: once
    assert one.name == "wandb/run-20251020_205458-pypd7lzd" and one.format == "wandb"
    assert one.series == {
        "epoch_train_loss": "train_loss",
        "val_loss": "val_loss",
        "val_metric:acc": "val_acc",
        "lr": "learning_rate",
    }
    assert one.epochs == 30 and one.notes == []
    gap = [f for f in one.findings if f.check == "train-val-gap" and f.severity.value == "warning"]
    assert gap and gap[0].evidence["best_epoch"] in range(10, 15)


def test_the_curves_are_the_logged_values_at_their_steps(tmp_path):
    path = _overfitting_run(tmp_path / "run-abc123.wandb", epochs=5)
    fmt, scalars, _ = read_wandb_run(path)
    assert fmt == "wandb"
    assert set(scalars) == {"epoch", "train_loss", "val_loss", "val_acc", "learning_rate"}
    assert scalars["val_acc"].steps.tolist() == [0, 1, 2, 3, 4]
    assert scalars["val_acc"].values.tolist() == [60, 61, 62, 63, 64]


def test_a_run_killed_while_writing_is_read_up_to_its_last_record_with_a_note(tmp_path):
    path = _overfitting_run(tmp_path / "run-abc123.wandb", epochs=5)
    whole = path.read_bytes()
    path.write_bytes(whole + _framed([_history(5, {"train_loss": 0.1})])[7:][:30])  # cut mid-record
    notes: list[str] = []
    _, scalars, _ = read_wandb_run(path, notes)
    assert len(scalars["train_loss"]) == 5
    assert notes == [
        f"{path}: ends in a partial record at byte {len(whole)} (30 bytes: a run still being written, or killed "
        "while writing); read up to it"
    ]


def test_a_file_that_is_not_wandbs_is_bad_input(tmp_path):
    path = tmp_path / "run-abc123.wandb"
    path.write_bytes(b"not a wandb file at all")
    with pytest.raises(CSVLogError, match="not a wandb run file"):
        read_wandb_run(path)
    empty = tmp_path / "run-def456.wandb"
    empty.write_bytes(_framed([_other(1)]))
    result = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(empty)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "history holds no number" in result.stderr


def test_an_old_wandb_history_jsonl_is_read_in_a_folder(tmp_path):
    # wandb before 0.10 wrote `wandb-history.jsonl` (one line per wandb.log call) into the run's
    # folder: was passed over in a folder ("holds no ... JSON-lines log") and, by path, read
    # against the line number with `_runtime` and `_timestamp` as curves
    run = tmp_path / "wandb" / "run-20200101_000000-abc123"
    run.mkdir(parents=True)
    lines = []
    for epoch in range(30):
        train = 2.0 * math.exp(-epoch / 6) + 0.05
        val = 1.0 + 0.8 * math.exp(-epoch / 4) + (0.03 * (epoch - 12) if epoch > 12 else 0.0)
        entry = {"epoch": epoch, "loss": train, "val_loss": val, "_step": 2 * epoch, "_runtime": 1.0 + epoch}
        lines.append(json.dumps({**entry, "_timestamp": 1.6e9 + epoch, "examples": {"_type": "images"}}))
    (run / "wandb-history.jsonl").write_text("\n".join(lines) + "\n")
    (one,) = mlcheck.analyze(tmp_path).runs
    assert one.format == "wandb-history" and one.epochs == 30
    assert one.series == {"epoch_train_loss": "loss", "val_loss": "val_loss"}
    assert "train-val-gap" in {f.check for f in one.findings if f.severity.value == "warning"}
