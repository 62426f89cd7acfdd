"""Keras holds its steps as Lightning does (`LiveRun(host_losses=True)`): a flush every 16th step
of the run instead of every step, yet a fixed-seed fit's findings, findings.jsonl and TensorBoard
events are those of a flush every step, each finding raised after the same batch (so `stop_on`
stops at the same step), a NaN loss included."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from mlcheck import MLCheckWarning
from mlcheck.integrations.keras import MLCheckCallback
from mlcheck.integrations.keras import callback as keras_callback
from mlcheck.live import LiveRun
from tests.integrations.test_keras import _keras_record, data, diverging, mlp

STEPS_PER_EPOCH = 38


class _EveryStep(LiveRun):
    """The live core as the Keras adapter had it before: each step flushed on its own."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.update(flush_every=1, host_losses=False)
        super().__init__(*args, **kwargs)


class _Moments(keras.callbacks.Callback):
    """The number of findings after each training batch, and the flushes made."""

    def __init__(self, watched: MLCheckCallback) -> None:
        super().__init__()
        self.watched, self.after_batch = watched, []

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.after_batch.append(len(self.watched.findings))


def _canonical(value):
    """`value` with its dicts' keys sorted (tags in any order) and NaN as text (NaN != NaN)."""
    if isinstance(value, dict):
        return sorted((repr(k), _canonical(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return repr(value) if isinstance(value, float) else value


def _fit(case: str, log_dir, monkeypatch, every_step: bool) -> tuple:
    if every_step:
        monkeypatch.setattr(keras_callback, "LiveRun", _EveryStep)
    flushes = []
    original = LiveRun.flush_steps

    def counted(self, *args, **kwargs):
        flushes.append(len(self._pending))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LiveRun, "flush_steps", counted)
    keras.backend.clear_session()  # the same layer names in both fits
    (xt, yt), (xv, yv) = data()
    if case == "nan":
        model, yt, yv = diverging()
    else:
        model = mlp(optimizer=keras.optimizers.Adam(1.0 if case == "lr_x1000" else 1e-3), dropout=0.0)
    cb = MLCheckCallback(log_dir=log_dir, overfit_batch=False)
    moments = _Moments(cb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(xt, yt, validation_data=(xv, yv), epochs=3, batch_size=32, verbose=0, callbacks=[cb, moments])
    monkeypatch.undo()
    return _keras_record(cb, log_dir), moments.after_batch, [n for n in flushes if n]


@pytest.mark.parametrize("case", ["lr_x1000", "healthy", "nan"])
def test_cost35_keras_held_steps_leave_every_finding_event_and_moment_unchanged(tmp_path, monkeypatch, case):
    held, held_moments, held_flushes = _fit(case, tmp_path / "held", monkeypatch, every_step=False)
    every, every_moments, every_flushes = _fit(case, tmp_path / "every", monkeypatch, every_step=True)
    findings = {f["check"] for f in held[0]}
    if case == "lr_x1000":
        assert "lr-too-high" in findings
    elif case == "nan":
        assert "nonfinite-loss" in findings
    assert held[2]["train"][0]  # the curves were written
    assert _canonical(held) == _canonical(every)
    assert held_moments == every_moments  # each finding after the same batch
    assert len(every_flushes) == 3 * STEPS_PER_EPOCH
    if case != "nan":  # a NaN run flushes every step from its first non-finite loss on
        # the first epoch is the full pass: each of its batches reaches the checks, the held
        # steps before it; later epochs flush every 16th step and at the validation pass
        assert len(held_flushes) < len(every_flushes) // 2
        assert sum(held_flushes) == 3 * STEPS_PER_EPOCH and max(held_flushes) <= LiveRun.FLUSH_EVERY
    assert np.isfinite(sum(held_flushes))
