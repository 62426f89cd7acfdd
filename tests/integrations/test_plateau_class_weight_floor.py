"""A Keras classifier on hard 3-class labels at 20:4:1 trained with `class_weight=` "balanced"
levels off at a training loss near the entropy of the (unweighted) training labels, 0.69, while
its validation loss keeps falling: no `loss-plateau` WARNING "plateaued at 0.7058, no lower than
0.6865, the entropy of the training labels" (healthy-programs batch 16, k2: validation loss
0.77 -> 0.51, balanced accuracy 0.77). Under balanced weights a prediction that ignores the
inputs scores ln(3) = 1.10, the weighted shares' entropy, not the labels'. The same weights on
labels shuffled apart from their inputs still stall there and keep the WARNING."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import make_classification

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback


@pytest.mark.parametrize("shuffled", [False, True], ids=["learns", "labels-shuffled"])
def test_fa16_class_weighted_loss_is_set_against_its_own_floor(tmp_path, shuffled):
    x, y = make_classification(
        4000,
        10,
        n_informative=4,
        n_classes=3,
        n_clusters_per_class=1,
        weights=[0.8, 0.16, 0.04],
        class_sep=0.5,
        flip_y=0.08,
        random_state=12,
    )
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    if shuffled:
        y = np.random.default_rng(0).permutation(y)  # labels no longer belong to their inputs
    train, val = slice(0, 3000), slice(3000, None)
    counts = np.bincount(y[train])
    weights = {k: len(y[train]) / (3 * c) for k, c in enumerate(counts)}  # sklearn's "balanced"
    keras.utils.set_random_seed(12)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    cb = MLCheckCallback(log_dir=str(tmp_path))
    model.fit(
        x[train],
        y[train],
        class_weight=weights,
        validation_data=(x[val], y[val]),
        epochs=10,
        batch_size=64,
        verbose=0,
        callbacks=[cb],
    )
    plateau = [f for f in cb.findings if f.check == "loss-plateau" and f.severity >= Severity.WARNING]
    if shuffled:
        assert plateau, cb.findings
    else:
        assert plateau == [], plateau  # was: "no lower than 0.6865, the entropy of the training labels"
        assert not [f for f in cb.findings if f.severity >= Severity.WARNING], cb.findings
