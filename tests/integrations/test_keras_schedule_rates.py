"""Keras parity for `lr-schedule`'s `cycles` (issue 12, batch 23's b03 on Keras): a schedule
whose period was given in epochs while a Keras `LearningRateSchedule` counts optimizer steps.

The Keras callback read the rate every `every_n_steps` (25) steps, too coarse to see a cycle of
10 steps, so `CosineDecayRestarts(first_decay_steps=5, t_mul=1)` (5 "epochs") went unnamed and a
`CosineDecay(decay_steps=5)` that sits at 0 from step 5 on was told only at step 127 of 150. A
schedule is a pure function of the step: the callback now evaluates it once at train start for
every step of the first two epochs (one vectorised call; `scheduled_rates`), so the same rules
judge it as they judge Lightning's per-step rates. Healthy schedules sized in steps stay silent.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import MLCheckWarning, Severity

EPOCHS, BATCHES = 5, 30  # 480 rows, batch 16


@pytest.fixture
def keras_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    return keras


def _schedule(keras, kind):
    s = keras.optimizers.schedules
    return {
        # the bugs: a period counted in epochs
        "restarts-epochs": s.CosineDecayRestarts(0.01, EPOCHS, t_mul=1.0),
        "cosine-epochs": s.CosineDecay(0.01, EPOCHS),
        # healthy: periods counted in optimizer steps
        "cosine-run": s.CosineDecay(0.01, EPOCHS * BATCHES),
        "restarts-each-epoch": s.CosineDecayRestarts(0.01, BATCHES, t_mul=1.0),
        "exponential": s.ExponentialDecay(0.01, BATCHES, 0.7),
        "piecewise": s.PiecewiseConstantDecay([2 * BATCHES, 4 * BATCHES], [0.01, 0.003, 0.001]),
        "warmup-cosine": s.CosineDecay(0.0, EPOCHS * BATCHES, warmup_target=1e-2, warmup_steps=15),
    }[kind]


def _fit(keras, kind, checks):
    from mlcheck.integrations.keras import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:480]
    x, y = (x[order] / 16.0).astype(np.float32), y[order]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(_schedule(keras, kind)), keras.losses.SparseCategoricalCrossentropy(True))
    cb = MLCheckCallback(log_dir=None, checks=checks, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0, callbacks=[cb])
    return [f for f in cb.findings if f.severity is not Severity.INFO], cb


def test_keras_restarts_counted_in_epochs_is_named_cycles(keras_torch):
    told, _ = _fit(keras_torch, "restarts-epochs", ["lr-schedule"])
    (f,) = told  # before: none (the rate read every 25 steps of a 5-step cycle)
    assert f.check == "lr-schedule" and f.key == "cycles" and f.severity is Severity.WARNING, f.format()
    assert f.evidence["cycle_steps"] == EPOCHS and f.evidence["steps_per_epoch"] == BATCHES
    assert f.step < 2 * BATCHES and "CosineDecayRestarts" in f.hint


def test_keras_cosine_decay_counted_in_epochs_is_told_in_the_first_epoch(keras_torch):
    told, _ = _fit(keras_torch, "cosine-epochs", ["lr-schedule"])
    (f,) = told
    assert f.check == "lr-schedule" and f.key == "zero", f.format()
    assert f.step < 2 * BATCHES, f.format()  # before: step 127 of 150


@pytest.mark.parametrize("kind", ["cosine-run", "restarts-each-epoch", "exponential", "piecewise", "warmup-cosine"])
def test_keras_schedules_sized_in_steps_stay_silent(keras_torch, kind):
    told, _ = _fit(keras_torch, kind, None)
    assert told == [], [f.format() for f in told]


@pytest.mark.parametrize("kind", ["restarts-epochs", "cosine-epochs", "exponential", "piecewise", "warmup-cosine"])
def test_scheduled_rates_are_the_rates_the_optimizer_trains_with(keras_torch, kind):
    from mlcheck.integrations.keras.trainable import RATE_TABLE_CALLS, scheduled_rates

    keras = keras_torch
    schedule = _schedule(keras, kind)
    optimizer = keras.optimizers.Adam(schedule)
    rates = scheduled_rates(optimizer, 3, 400)
    # a vectorised schedule gives all 400; one with control flow on the step (warm-up's cond,
    # PiecewiseConstantDecay) is read one step at a time, at most RATE_TABLE_CALLS of them
    assert len(rates) in (400, RATE_TABLE_CALLS)
    for i in (0, 1, 7, 29, len(rates) - 1):
        assert rates[i] == pytest.approx(float(schedule(3 + i)), rel=1e-6, abs=1e-12)
    assert scheduled_rates(keras.optimizers.Adam(0.01), 0, 10) is None  # a plain rate: read as before
