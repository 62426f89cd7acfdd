"""mlcheck's own code raises no numpy RuntimeWarning on NaN inputs (a column of only NaN)."""

import warnings

import numpy as np

from mlcheck import Monitor


def test_nan_inputs_raise_no_runtime_warning():
    x = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    x[:, 2] = np.nan  # a column with no value at all
    x[3, 0] = np.inf
    y = np.arange(64) % 3
    monitor = Monitor(warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for split in ("train", "val"):
            monitor.log_batch(x, y, split=split, step=0, epoch=0)
        monitor.log_epoch(0, train_loss=float("nan"), val_loss=float("nan"))
        monitor.close()
    assert "nonfinite-input" in {f.check for f in monitor.findings}
