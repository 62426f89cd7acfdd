"""Keras CSVLogger files (every separator) and Lightning CSVLogger metrics.csv, written by real
runs, read back with the right curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlcheck
from analyze_runs import SEPARATORS
from mlcheck.analyze.csvlogs import read_csv_log
from mlcheck.errors import BadInput

# the real training runs are session fixtures: keep their tests on one xdist worker
pytestmark = pytest.mark.xdist_group("analyze-real-runs")


@pytest.mark.parametrize("separator", list(SEPARATORS))
def test_keras_csvlogger_any_separator(keras_csvs, separator):
    path = keras_csvs[separator]
    fmt, curves, columns = read_csv_log(path)
    assert fmt == "keras-csv"
    assert {"epoch", "loss", "val_loss", "accuracy", "val_accuracy"} <= set(columns)
    expected = pd.read_csv(path, sep=separator)
    np.testing.assert_allclose(curves["val_loss"].values, expected["val_loss"])
    np.testing.assert_array_equal(curves["loss"].steps, expected["epoch"])

    result = mlcheck.analyze(path)
    (run,) = result.runs
    assert run.format == "keras-csv" and run.epochs == 4
    assert run.series == {
        "epoch_train_loss": "loss",
        "val_loss": "val_loss",
        "train_metric:accuracy": "accuracy",
        "val_metric:accuracy": "val_accuracy",
    }


def test_lightning_csvlogger_metrics_csv(lightning_csv):
    fmt, curves, _ = read_csv_log(lightning_csv)
    assert fmt == "lightning-csv"
    table = pd.read_csv(lightning_csv)
    # step rows and epoch rows are interleaved; each curve keeps only the rows that logged it
    for column in ("train_loss_step", "train_loss_epoch", "val_loss", "lr-SGD"):
        rows = table[table[column].notna()]
        np.testing.assert_array_equal(curves[column].steps, rows["step"])
        np.testing.assert_allclose(curves[column].values, rows[column])

    result = mlcheck.analyze(lightning_csv)
    (run,) = result.runs
    assert run.format == "lightning-csv"
    assert run.epochs == 4 and run.steps == int(table["step"].max())
    assert run.series["train_loss"] == "train_loss_step"
    assert run.series["epoch_train_loss"] == "train_loss_epoch"
    assert run.series["val_loss"] == "val_loss"
    assert run.series["lr"] == "lr-SGD"
    assert run.series["val_metric:acc"] == "val_acc"


def test_lightning_metrics_csv_found_in_a_directory(lightning_csv):
    result = mlcheck.analyze(lightning_csv.parent.parent.parent)
    assert [r.name for r in result.runs] == ["lightning_logs/version_0"]


def test_csv_without_a_loss_column_names_its_columns(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,accuracy,val_accuracy\n0,0.5,0.4\n1,0.6,0.5\n")
    with pytest.raises(BadInput, match=r"no loss curve found \(columns: accuracy, epoch, val_accuracy\)"):
        mlcheck.analyze(path)
    # ... unless the user says which column is the loss
    result = mlcheck.analyze(path, mapping={"val_accuracy": "val_loss"})
    assert result.runs[0].series["val_loss"] == "val_accuracy"


def test_nan_cells_are_kept_and_empty_cells_skipped(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss,val_loss\n0,2.0,2.1\n1,nan,\n2,1.5,1.9\n")
    _, curves, _ = read_csv_log(path)
    np.testing.assert_array_equal(curves["loss"].steps, [0, 1, 2])
    assert np.isnan(curves["loss"].values[1])
    np.testing.assert_array_equal(curves["val_loss"].steps, [0, 2])


def test_epochs_counted_from_one_are_not_one_too_many(tmp_path):
    """Printouts and hand-made tables number epochs from 1; the run was reported with one epoch
    more than it had (and checks that read the planned length got it one too long)."""
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n1,1.0,1.1\n2,0.9,1.0\n3,0.8,0.95\n")
    (run,) = mlcheck.analyze(path).runs
    assert run.epochs == 3
    path.write_text("epoch,loss,val_loss\n0,1.0,1.1\n1,0.9,1.0\n2,0.8,0.95\n")
    (run,) = mlcheck.analyze(path).runs
    assert run.epochs == 3


def test_keras_na_cells_are_empty_not_text(tmp_path):
    """Keras' CSVLogger writes `NA` where an epoch's logs lack a column: a fit without validation
    data fills `val_*` with it, and `append=True` continues that file with a fit that has them.
    The CLI said each `val_*` column 'holds text that is not a number in 2 data row(s)' (stderr
    and `runs[].notes`), as if a value had been lost; `NA` is an empty cell."""
    import json
    import subprocess
    import sys

    import keras

    from analyze_runs import digits

    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    path = tmp_path / "training.log"
    fit = {"batch_size": 32, "verbose": 0}
    model.fit(x[:384], y[:384], epochs=2, callbacks=[keras.callbacks.CSVLogger(str(path), append=True)], **fit)
    model.fit(
        x[:384],
        y[:384],
        validation_data=(x[384:], y[384:]),
        initial_epoch=2,
        epochs=4,
        callbacks=[keras.callbacks.CSVLogger(str(path), append=True)],
        **fit,
    )
    assert path.read_text().count(",NA") == 4  # what Keras wrote: two val_* cells in each of two rows
    result = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    (run,) = json.loads(result.stdout)["runs"]
    assert run["notes"] == [] and "not a number" not in result.stderr
    assert run["series"]["val_loss"] == "val_loss" and run["epochs"] == 4


def test_user17_a_keras_log_saved_by_a_comma_decimal_spreadsheet_is_read(keras_csvs, tmp_path):
    """A Keras CSVLogger file opened and saved again by a spreadsheet in a German or French locale
    (Excel's "CSV UTF-8": `;` between cells, `0,2534` for 0.2534, a byte-order mark, CRLF): the
    command said "no loss curve found (...; without numbers: loss, val_loss); name one with --map",
    a fix that does not help. The numbers are now read, with a note, as the original file's."""
    import json
    import subprocess
    import sys

    original = keras_csvs[";"]
    saved = tmp_path / "training (Excel).csv"
    pd.read_csv(original, sep=";").to_csv(
        saved, sep=";", decimal=",", index=False, encoding="utf-8-sig", lineterminator="\r\n"
    )
    assert saved.read_bytes().startswith(b"\xef\xbb\xbfepoch;") and b"0," in saved.read_bytes()

    def analyze(path):
        done = subprocess.run(
            [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode in (0, 1), done.stderr
        assert "Traceback" not in done.stderr
        return json.loads(done.stdout), done.stderr

    want, _ = analyze(original)
    got, stderr = analyze(saved)
    (run,) = got["runs"]
    assert run["series"] == want["runs"][0]["series"] and run["epochs"] == want["runs"][0]["epochs"] == 4
    assert [f["message"] for f in got["findings"]] == [f["message"] for f in want["findings"]]
    assert "written with a decimal comma (first: data row 1" in stderr, stderr
    assert any("decimal comma" in note for note in run["notes"]), run["notes"]
    fmt, curves, _ = read_csv_log(saved)
    np.testing.assert_allclose(curves["val_loss"].values, pd.read_csv(original, sep=";")["val_loss"])
