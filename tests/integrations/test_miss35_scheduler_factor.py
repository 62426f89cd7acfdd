"""Batch 32's b08 (issue 12) on a real Keras fit (torch backend): a `LearningRateScheduler` whose
function returns a decay factor (`0.8 ** epoch`, 1.0 at the first epoch) where Keras takes the
rate itself, on Adam built at 1e-3. `lr-schedule` key `set-far-above` names it (the first rate
1,000x the built one); a scheduler scaling the rate it is handed (h06's `lr * 0.9`) and one
returning rates 10x the built SGD rate (a step schedule from 0.1 over SGD's default 0.01) stay
silent on it.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback


def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x[:384] / 16).astype(np.float32), y[:384].astype(np.int64)


@pytest.mark.parametrize(
    ("optimizer", "schedule", "fires"),
    [
        ("adam", lambda epoch: 0.8**epoch, True),  # b08: a factor returned as the rate
        ("adam", lambda epoch, lr: lr * 0.9, False),  # h06: scales the rate it is handed
        ("sgd", lambda epoch: 0.1 if epoch < 1 else 0.01, False),  # 10x SGD's default 0.01
    ],
)
def test_scheduler_returning_a_factor_is_named(tmp_path, optimizer, schedule, fires):
    x, y = _digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    built = keras.optimizers.Adam(1e-3) if optimizer == "adam" else keras.optimizers.SGD()
    model.compile(built, "sparse_categorical_crossentropy")
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x,
            y,
            epochs=2,
            batch_size=32,
            verbose=0,
            callbacks=[keras.callbacks.LearningRateScheduler(schedule), cb],
        )
    found = [f for f in cb.findings if f.check == "lr-schedule" and f.key == "set-far-above"]
    if not fires:
        assert found == [], [f.format() for f in found]
        assert not [f for f in cb.findings if f.check == "lr-schedule" and f.severity >= Severity.WARNING]
        return
    (finding,) = found
    assert finding.severity == Severity.WARNING, finding.format()
    assert finding.evidence["lr"] == 1.0 and finding.evidence["built_lr"] == pytest.approx(1e-3)
    assert "1,000x" in finding.message and "LearningRateScheduler" in finding.hint
