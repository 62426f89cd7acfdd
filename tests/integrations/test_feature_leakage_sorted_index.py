"""A table sorted by label, `df.reset_index()` before `to_numpy()`: the row number stays in the
inputs as a feature, then the rows are shuffled and split (batch 35's b10, Keras). The row number
is a monotone step function of the label, so its 1-nearest-neighbour errors sit at the class
boundaries only (a fixed count, whatever the rows): scored on 512 of digits' 1,400 rows it reached
0.96 < `min_score` 0.98 and `feature-leakage` stayed silent; on all the distinct rows it scores
~0.99. Controls: the same program without the index column, and with an honest feature that
follows the label with noise (label + N(0, 0.25): 0.953 on 512 rows, within reach, so scored
again on all 1,400: 0.948), stay silent."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback


def _table(extra: str) -> tuple[np.ndarray, np.ndarray]:
    """Digits sorted by label; `extra` is "index" (the row number kept by reset_index), "noisy"
    (an honest feature: the label plus N(0, 0.25)) or "none"; shuffled, 1,400 rows standardised."""
    x, y = load_digits(return_X_y=True)
    order = np.argsort(y, kind="stable")
    df = pd.DataFrame(x[order] / 16.0, columns=[f"px{i}" for i in range(64)])
    df["label"] = y[order]
    if extra == "index":
        df = df.reset_index()
    elif extra == "noisy":
        df.insert(0, "score", df["label"] + np.random.default_rng(3).normal(0, 0.25, len(df)))
    feats = df.drop(columns=["label"]).to_numpy(np.float32)
    labels = df["label"].to_numpy()
    perm = np.random.default_rng(1).permutation(len(df))[:1400]
    feats, labels = feats[perm], labels[perm]
    return (feats - feats.mean(0)) / (feats.std(0) + 1e-6), labels


@pytest.mark.parametrize("extra", ["index", "none", "noisy"])
def test_newbugs35_b10_row_number_of_a_label_sorted_table(tmp_path, extra):
    x, y = _table(extra)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    cb = MLCheckCallback(log_dir=str(tmp_path))
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    leaks = [f for f in cb.findings if f.check == "feature-leakage"]
    if extra != "index":
        assert leaks == []
        return
    assert [f.evidence["feature"] for f in leaks] == [0]  # was: silent (0.959 on 512 rows)
    assert leaks[0].severity is Severity.ERROR and leaks[0].evidence["score"] > 0.98
    assert leaks[0].evidence["rows"] > 512  # scored on more rows than the subsample
