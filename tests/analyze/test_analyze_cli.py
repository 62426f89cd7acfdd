"""The real `mlcheck analyze` command: exit codes, --json, --map, and every kind of bad input
(one line on stderr, exit 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from analyze_logs import interleave, scalar_event, write_framed


def mlcheck(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def _strict(text):
    def reject(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=reject)


def _diverging(n=3000):
    s = np.arange(n)
    best = 2.3 * np.exp(-s / 400) + 0.2
    turn = n // 2
    loss = np.where(s < turn, best, best[turn] * np.minimum(10.0, 1 + (s - turn) / 100))
    return {"train_loss": (s, loss), "lr": (s, np.full(n, 0.01))}


def _bad_input(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlcheck: error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_path(tmp_path):
    _bad_input(mlcheck(tmp_path / "nope"), "no such file or directory")


def test_empty_directory(tmp_path):
    _bad_input(mlcheck(tmp_path), "is an empty directory")


def test_directory_without_logs(tmp_path):
    (tmp_path / "README.txt").write_text("notes")
    (tmp_path / "data.csv").write_text("x,y\n1,2\n")  # a data set, not a log
    _bad_input(mlcheck(tmp_path), "no TensorBoard event files")


def test_event_file_cut_before_its_first_record(tmp_path):
    path = write_framed(tmp_path / "events.out.tfevents.1.h", [])
    path.write_bytes(path.read_bytes()[:7])
    _bad_input(mlcheck(tmp_path), "no scalars in its event files")


def test_corrupt_event_file(tmp_path):
    path = write_framed(tmp_path / "events.out.tfevents.1.h", [scalar_event(s, "loss", 1.0) for s in range(40)])
    data = bytearray(path.read_bytes())
    data[300:308] = b"\x07" * 8
    path.write_bytes(bytes(data))
    _bad_input(mlcheck(tmp_path), "corrupt record at byte", "events.out.tfevents.1.h")
    _bad_input(mlcheck(path), "corrupt record at byte")


def test_csv_without_a_loss_column(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch;accuracy;val_accuracy\n0;0.5;0.4\n1;0.6;0.5\n")
    _bad_input(mlcheck(path), "no loss curve found", "columns: accuracy, epoch, val_accuracy")


@pytest.mark.parametrize(
    "content,needle",
    [
        (bytes(range(256)) * 4, "neither a TensorBoard event file nor a CSV"),
        (b"just some words\n", "does not look like a metrics CSV"),
        (b"", "is empty"),
    ],
)
def test_unknown_file_types(tmp_path, content, needle):
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    _bad_input(mlcheck(path), needle)


def test_bad_map_option(tmp_path):
    write_framed(tmp_path / "events.out.tfevents.1.h", interleave(_diverging(100)))
    _bad_input(mlcheck(tmp_path, "--map", "loss"), "--map expects TAG=ROLE")
    _bad_input(mlcheck(tmp_path, "--map", "loss=speed"), "unknown role 'speed'")
    # one tag, two roles: the later one used to win silently
    _bad_input(
        mlcheck(tmp_path, "--map", "loss=train_loss", "--map", "loss=val_loss"),
        "--map gives 'loss' two roles: 'train_loss' and 'val_loss'",
    )
    same = mlcheck(tmp_path, "--map", "hp=ignore", "--map", " hp=ignore")  # one role twice is fine
    assert same.returncode == 0 and same.stderr == "", same.stderr


@pytest.mark.parametrize("command", ["analyze", "sanity"])
def test_a_select_that_names_no_check_is_refused(command, tmp_path):
    """`--select "$IDS"` with IDS empty ran every default check, as if --select were left out."""
    (tmp_path / "model.py").write_text("raise SystemExit('model.py must not even be imported')\n")
    path = tmp_path / ("model.py" if command == "sanity" else "")
    for given in (["--select", ""], ["--select", " , ", "--select", ","]):
        result = subprocess.run(
            [sys.executable, "-m", "mlcheck", command, str(path), *given],
            capture_output=True,
            text=True,
            timeout=120,
        )
        _bad_input(result, "names no check id", "leave --select out")


def test_divergent_log_json_and_exit_codes(tmp_path):
    write_framed(tmp_path / "exp" / "events.out.tfevents.1.h", interleave(_diverging()))
    result = mlcheck(tmp_path, "--json")
    assert result.returncode == 1, result.stderr  # loss-divergence is an error
    payload = _strict(result.stdout)
    (finding,) = [f for f in payload["findings"] if f["check"] == "loss-divergence"]
    assert finding["run"] == "exp" and finding["severity"] == "error" and finding["step"] > 1500
    assert payload["runs"][0]["series"] == {"train_loss": "train_loss", "lr": "lr"}
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    # --suppress / --select / --fail-on reach the checks and the exit status
    assert mlcheck(tmp_path, "--suppress", "loss-divergence,lr-too-high,loss-plateau").returncode == 0
    assert mlcheck(tmp_path, "--select", "lr-schedule").returncode == 0
    table = mlcheck(tmp_path)
    assert table.returncode == 1 and "loss-divergence" in table.stdout and "Read 1 run(s)" in table.stdout


def test_nan_loss_is_strict_json(tmp_path):
    curves = _diverging(400)
    curves["train_loss"][1][100:] = np.nan
    write_framed(tmp_path / "events.out.tfevents.1.h", interleave(curves))
    result = mlcheck(tmp_path, "--json")
    payload = _strict(result.stdout)
    assert any(f["check"] == "nonfinite-loss" for f in payload["findings"])
    assert result.returncode == 1


def test_map_option_and_unreadable_runs_on_stderr(tmp_path):
    write_framed(
        tmp_path / "good" / "events.out.tfevents.1.h",
        [scalar_event(s, "objective", 2.0 / (1 + s / 50)) for s in range(300)],
    )
    bad = write_framed(tmp_path / "bad" / "events.out.tfevents.1.h", [scalar_event(s, "loss", 1.0) for s in range(40)])
    bad.write_bytes(bad.read_bytes()[:100] + b"\xff" * 200)
    result = mlcheck(tmp_path, "--map", "objective=train_loss", "--json")
    assert result.returncode == 0, result.stderr
    payload = _strict(result.stdout)
    assert [r["name"] for r in payload["runs"]] == ["good"]
    assert payload["runs"][0]["series"] == {"train_loss": "objective"}
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mlcheck: skipped {bad}: corrupt record at byte"), line
    assert "Traceback" not in result.stderr


def test_a_loss_stuck_at_chance_is_found_without_the_class_count(tmp_path):
    """A Keras CSVLogger file of a real fit whose learning rate is far too high (SGD at 3.0): the
    loss falls from its blown-up first epoch to ln(10) and sits there with accuracy 0.10. The
    log never says there are 10 classes; the loss and the accuracy agree on it, and
    `loss-plateau` names the chance level."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    os.environ.setdefault("KERAS_HOME", str(tmp_path / "keras"))
    import keras
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(0)
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype("float32")
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
    model.compile(
        keras.optimizers.SGD(3.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    log = tmp_path / "training.csv"
    model.fit(x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=10, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(str(log))])  # fmt: skip
    result = mlcheck(log, "--json")
    assert result.returncode == 0, result.stderr
    (finding,) = [f for f in _strict(result.stdout)["findings"] if f["check"] == "loss-plateau"]
    assert finding["severity"] == "warning" and "chance level ln(10)" in finding["message"]


# -- round 11: a new user's careless command lines ----------------------------------------------


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_several_paths_say_to_give_their_folder(tmp_path):
    """`mlcheck analyze *.csv` (a shell glob) was "unrecognized arguments: b.csv" under the
    top-level usage; an unknown option keeps argparse's error, under the command's own usage."""
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("epoch,loss\n0,1.0\n1,0.5\n")
    _bad_input(
        _cli("analyze", "a.csv", "b.csv", cwd=tmp_path),
        "mlcheck analyze takes one PATH, got 2: a.csv, b.csv; give the folder that holds them",
    )
    _bad_input(_cli("sanity", "m.py", "n.py", cwd=tmp_path), "mlcheck sanity takes one PATH, got 2: m.py, n.py")
    unknown = _cli("analyze", "a.csv", "--bogus", cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.startswith("usage: mlcheck analyze ")
    assert "mlcheck analyze: error: unrecognized arguments: --bogus" in unknown.stderr


@pytest.mark.parametrize("command", ["analyze", "sanity"])
def test_a_url_or_stdin_as_path_is_named(command, tmp_path):
    """`gs://bucket/logs` (TensorBoard reads it) was "gs:/bucket/logs: no such file"; `-` was
    "-: no such file or directory"."""
    _bad_input(_cli(command, "gs://bucket/logs", cwd=tmp_path), "gs://bucket/logs is a URL: mlcheck reads local files")
    _bad_input(_cli(command, "-", cwd=tmp_path), "PATH is '-': mlcheck does not read standard input")


def test_a_missing_path_says_what_was_probably_meant(tmp_path):
    """A quoted `~` and a name with a space after it were only "no such file or directory"."""
    (tmp_path / "a.csv").write_text("epoch,loss\n0,1.0\n1,0.5\n")
    _bad_input(_cli("analyze", "~/nope/a.csv", cwd=tmp_path), "a quoted ~ is not expanded: write '")
    _bad_input(_cli("analyze", "a.csv ", cwd=tmp_path), "the name has spaces around it: 'a.csv' exists")


def test_an_archive_or_a_notebook_is_named_as_such(tmp_path):
    """A .csv.gz and a .zip were "not UTF-8 ... saved in another encoding"; a notebook "starts
    like a Keras History dict but holds no metric"."""
    import gzip
    import zipfile

    rows = "epoch,loss\n0,1.0\n1,0.5\n"
    with gzip.open(tmp_path / "metrics.csv.gz", "wt") as fh:
        fh.write(rows)
    with zipfile.ZipFile(tmp_path / "logs.zip", "w") as z:
        z.writestr("metrics.csv", rows)
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    _bad_input(mlcheck(tmp_path / "metrics.csv.gz"), "is gzip-compressed, not a log: unpack it first (gunzip")
    _bad_input(mlcheck(tmp_path / "logs.zip"), "is a zip archive, not a log: unpack it first (unzip logs.zip)")
    _bad_input(mlcheck(tmp_path / "nb.ipynb"), "is a Jupyter notebook: mlcheck reads the logs a run writes")


def test_each_command_help_says_what_it_does_and_its_exit_status():
    for command in ("sanity", "analyze"):
        text = " ".join(_cli(command, "--help").stdout.split())
        assert "Exit status: 0 clean, 1 findings at or above --fail-on, 2 bad input" in text, text
    assert "`mlcheck checks` lists the ids" in " ".join(_cli("explain", "--help").stdout.split())


def _overfitting_rows(step_of):
    """40 rows whose validation loss turns up from the 17th while the training loss falls."""
    k = np.arange(40)
    train = 2 * np.exp(-k / 6) + 0.05 + 0.005 * np.sin(k)
    val = 2 * np.exp(-k / 6) + 0.1 + (np.maximum(0, k - 16) / 20) ** 2 + 0.005 * np.cos(k)
    return [f"{step_of(i)},{t:.4f},{v:.4f}" for i, t, v in zip(k, train, val)]


@pytest.mark.parametrize("step_of", [lambda i: 50 * i + 49, lambda i: i], ids=["every-50", "consecutive"])
def test_cli13_a_metrics_csv_with_steps_and_no_epochs_is_read_as_steps(tmp_path, step_of):
    """`step,train_loss,val_loss` and no `epoch` column: each row was counted as an epoch ("40
    epochs", "(epoch 19) ... over 3 epochs", "Keep the checkpoint from epoch 19"; steps 0, 1, 2, ...
    even became the epochs themselves, "step 22, epoch 22")."""
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(["step,train_loss,val_loss", *_overfitting_rows(step_of)]) + "\n")
    result = mlcheck(path, "--json")
    assert result.returncode == 0, result.stderr
    out = _strict(result.stdout)
    (run,) = out["runs"]
    assert run["epochs"] is None and run["steps"] == step_of(39)
    (finding,) = out["findings"]
    assert finding["check"] == "train-val-gap" and finding["epoch"] is None
    best = finding["evidence"]["best_step"]
    assert best in {step_of(i) for i in range(40)} and "best_epoch" not in finding["evidence"]
    assert f"around step {best}," in finding["message"] and " validations while" in finding["message"]
    assert "epoch" not in finding["message"] + finding["hint"]
    assert f"Keep the checkpoint from step {best}" in finding["hint"]
    assert any("no epoch column: its rows are read as steps" in line for line in run["info"])
    text = mlcheck(path).stdout
    assert f"(lightning-csv, to step {step_of(39)})" in text and "epochs)" not in text


def test_user18_twenty_lightning_versions_are_listed_in_order_and_a_shared_note_said_once(lightning_tb, tmp_path):
    # 20 versions of one program under lightning_logs/: each run was judged, but listed 0, 1, 10,
    # 11, ..., 19, 2, 3, ... and each version said the same "too few for loss-plateau" note, 20
    # lines that differ by their version number.
    import shutil

    logs = tmp_path / "lightning_logs"
    for k in range(20):
        shutil.copytree(lightning_tb, logs / f"version_{k}")
    done = mlcheck(logs, "--json")
    assert done.returncode in (0, 1), done.stderr
    runs = _strict(done.stdout)["runs"]
    assert [r["name"] for r in runs] == [f"version_{k}" for k in range(20)]
    shared = runs[0]["info"]
    assert shared and all(
        r["info"] == [line.replace("version_0", f"version_{k}") for line in shared] for k, r in enumerate(runs)
    )
    table = mlcheck(logs)
    notes = [line for line in table.stdout.splitlines() if line.startswith("note: ")]
    text = shared[0].partition(": ")[2]
    first = ", ".join(f"{logs}/version_{k}" for k in range(3))
    assert notes == [f"note: 20 runs ({first}, and 17 more): {text}"], notes
    read = " ".join(table.stdout.split())
    assert read.index("version_9 (") < read.index("version_10 ("), read
