"""Batch 32's b09 and b12 (issue 12), each on a real Keras fit (torch backend) with its control:

- b09: `Normalization(axis=None)` computes one mean and variance over every value, so raw
  breast_cancer columns keep their 1e4-fold spread of scales; `unnormalized-input` judged the
  layer as a per-feature rescaling and stayed silent. The default `axis=-1` stays silent.
- b12: the last LSTM left at `return_sequences=True` before `Dense(1)` on one target per
  sequence: the loss broadcasts the target over the time steps; `output-loss-mismatch` `broadcast`
  knew only (N, 1) outputs against (N,) targets. A sequence-to-one model and a seq2seq model with
  one target per step stay silent.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback


def _fit(model, x, y, tmp_path, *, epochs=1, batch_size=32):
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[cb])
    return cb.findings


def _serious(findings, check):
    return [f for f in findings if f.check == check and f.severity >= Severity.WARNING]


def _breast_cancer_fit(tmp_path, norm, *, adapt: bool):
    """The findings of one epoch of a small classifier on raw breast_cancer columns (1e4-fold
    apart in scale) behind `norm`, adapted to them or not."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x, y = x[:320].astype(np.float32), y[:320].astype(np.float32)
    keras.utils.set_random_seed(0)
    if adapt:
        norm.adapt(x)
    model = keras.Sequential(
        [
            keras.Input((30,)),
            norm,
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return _fit(model, x, y, tmp_path)


@pytest.mark.parametrize("axis", [None, -1])
def test_normalization_axis_none_leaves_columns_apart(tmp_path, axis):
    findings = _breast_cancer_fit(tmp_path, keras.layers.Normalization(axis=axis), adapt=True)
    found = _serious(findings, "unnormalized-input")
    if axis == -1:  # one mean and variance per feature: standardised columns
        assert found == [], [f.format() for f in findings]
        return
    (finding,) = found
    assert finding.key == "scale" and "axis=None" in finding.message, finding.format()
    assert "wildly different scales" in finding.message
    assert finding.evidence["train_column_ratio"] > 1e3
    assert "axis=-1" in finding.hint


def _walks(n=256, steps=12):
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 0.3, (n, steps)), axis=1)
    x = (walk + rng.normal(0, 0.1, walk.shape))[..., None].astype(np.float32)
    return x, walk


@pytest.mark.parametrize(
    ("sequences", "target", "severity"),
    [
        (True, "flat", Severity.ERROR),  # (N, T, 1) against (N,): every step against every target
        (True, "column", Severity.WARNING),  # (N, T, 1) against (N, 1): each step against its own
        (False, "flat", None),  # sequence-to-one, the fix
        (True, "per-step", None),  # seq2seq: one target per step, (N, T, 1)
    ],
)
def test_sequence_outputs_against_one_target_per_sequence(tmp_path, sequences, target, severity):
    x, walk = _walks()
    if target == "per-step":
        y = walk[..., None].astype(np.float32)
    else:
        y = walk[:, -3:].mean(1).astype(np.float32)
        y = y if target == "flat" else y[:, None]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(x.shape[1:]), keras.layers.LSTM(8, return_sequences=sequences), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(2e-3), "mse")
    findings = _fit(model, x, y, tmp_path)
    found = [f for f in findings if f.check == "output-loss-mismatch" and f.key == "broadcast"]
    if severity is None:
        assert found == [] and _serious(findings, "output-loss-mismatch") == [], [f.format() for f in findings]
        return
    (finding,) = found
    assert finding.severity == severity, finding.format()
    assert finding.evidence["output_shape"] == [32, 12, 1] and finding.evidence["steps"] == 12
    assert "return_sequences=False" in finding.hint


def test_review38_normalization_kind_is_read_from_the_layer_not_its_name(tmp_path):
    """review38: `Normalization(axis=None)` and a never-adapted layer were told apart by words in
    the layer's description, so a per-feature layer named like the other got its advice. Now
    the adapter hands the kind over as fields (`InputRescale.over_every_value`, `.adapted`)."""
    norm = keras.layers.Normalization(axis=-1, name="norm_axis=None")  # never adapted: raw columns pass
    (finding,) = _serious(_breast_cancer_fit(tmp_path, norm, adapt=False), "unnormalized-input")
    assert "never adapted" in finding.evidence["judged_after"], finding.format()
    assert finding.hint.startswith("Adapt the Normalization layer"), finding.format()
    assert "one scale" not in finding.evidence.get("column_measure", ""), finding.format()
