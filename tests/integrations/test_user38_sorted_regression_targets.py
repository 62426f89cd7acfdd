"""user38: a Keras regression on data sorted by its target, split with `validation_split=0.2`.

Keras takes the last rows as validation before any shuffling, so validation holds only the
largest targets: on scikit-learn's diabetes data the validation loss stays ~6x the training loss
from the first epoch. Before, the run ended "no problems found": `label-shift` compares class
counts, and for regression targets only their scale (`target-scale`, 10x), which a sorted split of
one quantity does not reach (the means 2.8 training standard deviations apart). Now every
validation target beyond the training range, in sorted order, is a WARNING, key `target-sorted`;
the same data shuffled first stays silent."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
datasets = pytest.importorskip("sklearn.datasets")

from mlcheck import Severity  # noqa: E402
from mlcheck.integrations.keras import MLCheckCallback  # noqa: E402


def _fit(shuffle_first: bool, tmp_path):
    x, y = datasets.load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y)) if shuffle_first else np.argsort(y, kind="stable")
    x, y = x[order].astype("float32"), y[order].astype("float32")
    x = (x - x.mean(0)) / x.std(0)
    y = (y - y.mean()) / y.std()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    cb = MLCheckCallback(log_dir=tmp_path, overfit_batch=False)
    model.fit(x, y, validation_split=0.2, epochs=2, batch_size=32, callbacks=[cb], verbose=0)
    return cb.findings


def test_user38_regression_targets_sorted_before_validation_split_are_a_warning(tmp_path):
    found = [f for f in _fit(False, tmp_path) if f.check == "label-shift"]
    assert [(f.key, f.severity) for f in found] == [("target-sorted", Severity.WARNING)]
    evidence = found[0].evidence
    assert evidence["val_order"] == "ascending" and evidence["val_min"] >= evidence["train_max"]
    assert "sorted by their target" in found[0].message and "validation_split" in found[0].hint


def test_user38_the_same_regression_shuffled_first_is_silent(tmp_path):
    assert [f for f in _fit(True, tmp_path) if f.severity >= Severity.WARNING] == []
