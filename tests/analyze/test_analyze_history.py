"""A Keras `History` dict saved as text (`json.dump(history.history, f)`, or `print`ed and
pasted into a file) read by `mlcheck analyze` like the CSVLogger file of the same fit.
It used to be refused as "a header but no rows"."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mlcheck
from mlcheck.analyze.csvlogs import read_csv_log


@pytest.mark.parametrize("name", ["history.json", "history.txt"])
def test_a_saved_history_reads_as_the_csvlogger_file_of_the_same_fit(keras_csvs, name):
    csv = keras_csvs[","]
    fmt, curves, columns = read_csv_log(csv.parent / name)
    assert fmt == "keras-history" and set(columns) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    _, from_csv, _ = read_csv_log(csv)
    for metric in columns:  # the same epochs (0-based, as CSVLogger writes them), the same floats
        np.testing.assert_array_equal(curves[metric].steps, from_csv[metric].steps)
        np.testing.assert_allclose(curves[metric].values, from_csv[metric].values, rtol=1e-12)
    run = mlcheck.analyze.run(csv.parent / name)
    (one,) = run.runs
    assert one.format == "keras-history" and one.epochs == 4 and not run.findings


def test_reprs_wrappers_nan_and_bad_values(tmp_path):
    """What print(history.history) can hold: numpy scalars' reprs, tensors, nan and inf (which
    JSON and ast.literal_eval refuse); a value that is no number is a note, not a lost run."""
    path = tmp_path / "history.txt"
    path.write_text(
        "{'loss': [np.float32(2.5), tensor(1.5, dtype=torch.float64), nan, inf, 'x'], "
        "\"val_loss\": [2.0, 1.9, 1.8, 1.7, 1.6], 'lr': []}\n"
    )
    notes: list[str] = []
    fmt, curves, columns = read_csv_log(path, notes=notes)
    assert fmt == "keras-history" and columns == ["loss", "val_loss"]
    assert curves["loss"].steps.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(curves["loss"].values, [2.5, 1.5, np.nan, np.inf])
    (note,) = notes
    assert "'loss' holds 1 value(s) that are not numbers (first: epoch 4, \"'x'\")" in note


def test_the_command_finds_overfitting_in_a_history_and_scans_for_history_files(tmp_path):
    loss = [0.9, 0.7, 0.5, 0.4, 0.35, 0.3, 0.27, 0.25, 0.22, 0.2]
    val = [0.8, 0.6, 0.5, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "train_history.json").write_text(json.dumps({"loss": loss, "val_loss": val}))
    (tmp_path / "config.json").write_text('{"lr": [0.1, 0.01]}')  # not named like a History: not read
    (tmp_path / "broken_history.txt").write_text("{'loss': [0.9, 0.7")
    command = [sys.executable, "-m", "mlcheck", "analyze", str(tmp_path), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert [(r["name"], r["format"]) for r in payload["runs"]] == [("a/train_history.json", "keras-history")]
    (finding,) = payload["findings"]
    assert finding["check"] == "train-val-gap" and finding["evidence"]["best_epoch"] == 3
    assert "broken_history.txt starts like a Keras History dict but holds no metric" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_name_that_is_not_utf8_comes_out_as_valid_json_text(tmp_path):
    """Python holds the byte 0xff of such a name as a lone surrogate, which `--json` carried as
    "\\udcff": strict readers (and `str.encode`) refuse it. It is written as `\\xff` now."""
    folder = tmp_path / "runs"
    folder.mkdir()
    name = os.fsdecode(b"r\xffun_history.json")
    (folder / name).write_text(json.dumps({"loss": [0.9, 0.7, 0.5, 0.4], "val_loss": [0.8, 0.7, 0.6, 0.55]}))
    command = [sys.executable, "-m", "mlcheck", "analyze", str(folder), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["name"] == "r\\xffun_history.json"
    json.dumps(run, ensure_ascii=False).encode("utf-8")  # raised UnicodeEncodeError on a lone surrogate
    assert mlcheck.findings.json_safe({"k\udcff": ["\ud800", "é"]}) == {"k\\xff": ["\\ud800", "é"]}


def test_a_folder_of_unrelated_files_names_every_kind_of_log_it_looks_for(tmp_path):
    # a History printed into a .txt is read in a folder too: the refusal of a folder with none
    # of these logs must say so, not list `*history*.json` alone
    (tmp_path / "notes.txt").write_text("lr 0.1 was too high\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")  # a data set: no epoch or step column
    (tmp_path / "config.json").write_text('{"lr": 0.1}')
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stdout == ""
    text = " ".join(done.stderr.split())
    assert text.startswith(f"mlcheck: error: {tmp_path} holds no TensorBoard event files"), done.stderr
    assert "*history*.json" in text and "*history*.txt" in text and "Traceback" not in text


def test_the_history_object_printed_instead_of_its_dict_says_what_to_save(tmp_path):
    # `print(history)` pasted into a file, from a real fit: it was refused as a CSV with a
    # one-column header, which told the user nothing of `history.history`
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    history = model.fit(x, x[:, :1], epochs=1, verbose=0)
    path = tmp_path / "history.txt"
    path.write_text(f"{history}\n")
    command = [sys.executable, "-m", "mlcheck", "analyze", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    text = " ".join(done.stderr.split())
    assert "holds `print(history)`" in text and "json.dump(history.history, f)" in text, done.stderr
    assert "metrics CSV" not in text and "Traceback" not in text
    # the dict itself, printed, is read
    path.write_text(f"{history.history}\n")
    assert subprocess.run(command, capture_output=True, text=True, timeout=120).returncode == 0
