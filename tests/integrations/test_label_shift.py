"""`label-shift` on real Keras training: `validation_split` on label-sorted digits holds only the
last classes; the same split of shuffled data is silent."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback


def _digits(sort: bool) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.argsort(y, kind="stable") if sort else np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16).astype(np.float32), y[order].astype(np.int64)


def _fit(tmp_path, sort: bool, epochs: int = 8) -> MLCheckCallback:
    x, y = _digits(sort)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=str(tmp_path))
    model.fit(x, y, validation_split=0.2, epochs=epochs, batch_size=32, verbose=0, callbacks=[cb])
    return cb


def test_validation_split_of_label_sorted_data_is_a_label_shift(tmp_path):
    cb = _fit(tmp_path, sort=True)
    shift = [f for f in cb.findings if f.check == "label-shift"]
    assert len(shift) == 1, [f.format() for f in cb.findings]
    finding = shift[0]
    assert finding.severity == Severity.WARNING and finding.epoch == 0
    assert finding.evidence["total_variation_distance"] > 0.5
    assert set(finding.evidence["overrepresented_in_val"]) <= {7, 8, 9}
    assert "classes 8, 9 make up" in finding.message
    # what looks like overfitting follows from the split, and says so
    symptoms = [f for f in cb.findings if f.check in ("train-val-gap", "suspicious-val")]
    assert symptoms
    for symptom in symptoms:
        assert symptom.evidence.get("likely_cause") == "label-shift", symptom.format()
        assert "label-shift" in symptom.message


def test_validation_split_of_shuffled_data_is_silent(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MLCheckWarning)
        cb = _fit(tmp_path, sort=False, epochs=3)
    assert not [f for f in cb.findings if f.check == "label-shift"]
    assert not [f for f in cb.findings if f.severity >= Severity.WARNING], [f.format() for f in cb.findings]


def test_newbugs26_training_oversampled_after_the_split_is_info(tmp_path):
    """Batch 26's h07: 'is it a 0' (about 1:9), split first, the training positives repeated 8x
    (imbalanced-learn's RandomOverSampler does the same), validation at its natural mix: a
    resampling on purpose is told as INFO `rebalanced`, not a label-shift WARNING."""
    x, y = _digits(sort=False)
    y = (y == 0).astype(np.float32)
    xt, yt, xv, yv = x[:1400], y[:1400], x[1400:], y[1400:]
    pos = np.flatnonzero(yt == 1)
    xt, yt = np.concatenate([xt] + [xt[pos]] * 7), np.concatenate([yt] + [yt[pos]] * 7)
    order = np.random.default_rng(0).permutation(len(xt))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    cb = MLCheckCallback(log_dir=str(tmp_path))
    model.fit(xt[order], yt[order], validation_data=(xv, yv), epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    shift = [f for f in cb.findings if f.check == "label-shift"]
    assert [(f.severity, f.key) for f in shift] == [(Severity.INFO, "rebalanced")], [f.format() for f in cb.findings]
    assert shift[0].evidence["total_variation_distance"] > 0.3
