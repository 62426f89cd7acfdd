"""A Keras `CSVLogger(append=True)` file that two fits wrote (the epoch column restarts at 0) is
read as two runs, and `mlcheck analyze` says so; a fit continued with `initial_epoch` (the epochs
go on) and a run resumed from an earlier checkpoint (the epochs fall back, but not to the file's
first) stay one run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import mlcheck
from analyze_runs import digits


def _fits(path: Path, plan: list[tuple[int, int, bool]]) -> None:
    """Fits a tiny Keras MLP on digits once per (initial_epoch, epochs, new model) in `plan`,
    each appending to one CSVLogger file, as a notebook re-running its fit cell does."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    keras.utils.set_random_seed(0)
    x, y = digits()
    model = None
    for initial_epoch, epochs, new in plan:
        if new or model is None:
            model = keras.Sequential(
                [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
            )
            model.compile(
                optimizer=keras.optimizers.SGD(0.05),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
        model.fit(
            x[:384],
            y[:384],
            validation_data=(x[384:], y[384:]),
            initial_epoch=initial_epoch,
            epochs=epochs,
            batch_size=32,
            verbose=0,
            callbacks=[keras.callbacks.CSVLogger(str(path), append=True)],
        )


def test_two_fits_appended_to_one_csvlogger_file_are_two_runs(tmp_path):
    path = tmp_path / "training.log"
    _fits(path, [(0, 5, True), (0, 3, True)])
    table = pd.read_csv(path)
    assert list(table["epoch"]) == [0, 1, 2, 3, 4, 0, 1, 2]  # the header once, then both fits

    result = mlcheck.analyze(path)
    # was: one run of 5 epochs, the second fit's rows over the first's epochs 0-2
    first, second = result.runs
    assert (first.name, first.epochs) == ("training.log (fit 1 of 2)", 5)
    assert (second.name, second.epochs) == ("training.log (fit 2 of 2)", 3)
    assert "restarts at data row(s) 6" in first.info[0] and "fit 2 (rows 6-8)" in first.info[0]
    assert not any("restarts" in line for line in second.info)

    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    read = " ".join(out.stdout.split())  # rich wraps long lines
    assert "Read 2 run(s): training.log (fit 1 of 2) (keras-csv, 5 epochs), training.log (fit 2 of 2)" in read
    assert "read as 2 runs, fit 1 (rows 1-5), fit 2 (rows 6-8)" in read


def test_a_continued_fit_and_a_resumed_run_stay_one_run(tmp_path):
    continued, resumed = tmp_path / "continued.log", tmp_path / "resumed.log"
    _fits(continued, [(0, 4, True), (4, 7, False)])  # model.fit(..., initial_epoch=4): epochs go on
    _fits(resumed, [(0, 4, True), (2, 6, False)])  # back to epoch 2, as from a checkpoint saved there
    for path, epochs in ((continued, 7), (resumed, 6)):
        (run,) = mlcheck.analyze(path).runs
        assert run.name == path.name and run.epochs == epochs
        assert not any("restarts" in line for line in run.info)
    # the resumed run's repeated epochs take the later rows, as before
    table = pd.read_csv(resumed)
    _, scalars, _ = mlcheck.analyze.csvlogs.read_csv_log(resumed)
    np.testing.assert_allclose(scalars["val_loss"].values[2:], table["val_loss"].iloc[4:])
