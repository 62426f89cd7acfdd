"""The Keras validation row-loss capture holds each test step's outputs and reduces them once per
16 batches (cost25, issue 13): the per-row losses cost a few device calls a pass instead of a
few `keras.ops` calls a batch, and their sums still give the logged validation loss.

Real Keras fits on wine (38 validation rows in 19 batches of 2, so a pass folds twice), for the
three target kinds the capture reads: class indices into a softmax, one-hot rows into logits,
0/1 labels into one sigmoid unit.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from mlcheck import MLCheckWarning
from mlcheck.integrations.keras import MLCheckCallback, backend
from tests.integrations.test_small_val_sample_error import _wine

EPOCHS = 3
VAL_BATCH = 2  # 38 rows: 19 batches, folded as 16 + 3


def _fit(kind: str):
    x, y = (t.numpy() for t in _wine())
    keras.utils.set_random_seed(0)
    if kind == "sparse":
        head, loss, targets = keras.layers.Dense(3, activation="softmax"), "sparse_categorical_crossentropy", y
    elif kind == "one_hot":
        head = keras.layers.Dense(3)
        loss, targets = keras.losses.CategoricalCrossentropy(from_logits=True), np.eye(3, dtype="float32")[y]
    else:
        head, loss, targets = keras.layers.Dense(1, activation="sigmoid"), "binary_crossentropy", (y == 0) * 1.0
    model = keras.Sequential([keras.Input((13,)), keras.layers.Dense(16, activation="relu"), head])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    cb = MLCheckCallback(log_dir=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x[:140],
            targets[:140],
            validation_data=(x[140:], targets[140:]),
            validation_batch_size=VAL_BATCH,
            epochs=EPOCHS,
            batch_size=8,
            verbose=0,
            callbacks=[cb],
        )
    return cb.live.monitor


@pytest.mark.skipif(backend.name() != "torch", reason="test steps are seen eagerly on the torch backend only")
@pytest.mark.parametrize("kind", ["sparse", "one_hot", "binary"])
def test_cost25_validation_row_losses_reduced_once_per_16_batches(kind, monkeypatch):
    reductions = []
    reduce = backend.class_row_loss_sums

    def counted(ys, y_preds, from_logits, target_kind):
        reductions.append((len(ys), target_kind))
        return reduce(ys, y_preds, from_logits, target_kind)

    monkeypatch.setattr(backend, "class_row_loss_sums", counted)
    monitor = _fit(kind)
    # two reductions a pass (16 batches, then the last 3), not one a batch
    assert reductions == [(16, kind), (3, kind)] * EPOCHS
    rows = monitor.run.val_row_losses
    assert rows is not None and rows.rows == 38 and rows.epoch == EPOCHS - 1
    logged = float(monitor.run.val_loss.buckets(include_open=True)["mean"][-1])
    assert abs(rows.mean - logged) <= 1e-4 * logged  # the rows' -log p is Keras' own loss
