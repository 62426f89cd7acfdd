"""The callbacks' train-start checks take at most the time of 100 of their own training steps
(issue 13: overfit-a-batch at most the time of 100 of the run's steps): a retry is fitted to the
time left, so a model whose step is slow keeps its verdict within that time; a small model's
phase, below the net's floor, runs its whole schedule as before. A clock that only training
steps move makes the step times exact, so these hold on a loaded machine."""

import time

import numpy as np
import pytest

from mlcheck.checks.preflight.overfit_batch import OverfitBatch
from mlcheck.live import LiveOptions, LiveRun
from mlcheck.run import RunInfo
from numpy_trainable import NumpyTrainable


class Clock:
    """`time.perf_counter` for the test: moves only when a training step says so."""

    def __init__(self) -> None:
        self.now = time.perf_counter()
        self.steps = 0  # the training steps of every copy

    def __call__(self) -> float:
        return self.now

    def __deepcopy__(self, memo) -> "Clock":
        return self  # one clock for the model and its copies


class TimedTrainable(NumpyTrainable):
    """Each training step takes `step_seconds` on `clock`, each evaluation (`loss`, `forward`)
    `eval_seconds`; nothing else takes time."""

    clock: Clock
    step_seconds: float = 0.0
    eval_seconds: float = 0.0

    def loss(self, batch):
        self.clock.now += self.eval_seconds
        return super().loss(batch)

    def forward(self, batch):
        self.clock.now += self.eval_seconds
        return super().forward(batch)

    def train_step(self, batch):
        self.clock.now += self.step_seconds
        self.clock.steps += 1
        evals, self.eval_seconds = self.eval_seconds, 0.0  # the step's own forward is in step_seconds
        try:
            return super().train_step(batch)
        finally:
            self.eval_seconds = evals


def _unfittable(step_seconds: float, clock: Clock, eval_seconds: float = 0.0) -> TimedTrainable:
    """A softmax regression on one feature with random labels: it cannot memorise 16 samples,
    and at lr 0.003 its first try falls too slowly, so overfit-batch tries 10x the rate."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 1)), rng.integers(0, 3, 64)
    model = TimedTrainable(x, y, lr=0.003, batch_size=16)
    model.clock, model.step_seconds, model.eval_seconds = clock, step_seconds, eval_seconds
    return model


def _phase(monkeypatch, step_seconds: float, eval_seconds: float = 0.0, **options):
    clock = Clock()
    monkeypatch.setattr(time, "perf_counter", clock)
    model = _unfittable(step_seconds, clock, eval_seconds)
    live = LiveRun(LiveOptions.from_arguments({"warn": False, **options}), [OverfitBatch()], info=RunInfo())
    started = clock.now
    live.run_train_start_checks(lambda: model, step=0, epoch=0)
    live.release_held()
    return live.monitor.findings, clock.steps, clock.now - started


def test_cost17_a_slow_models_phase_takes_at_most_100_of_its_steps_and_keeps_its_verdict(monkeypatch):
    # 50 ms a step: the whole schedule (33 + 100 steps) would take 133 steps' time
    found, steps, seconds = _phase(monkeypatch, 0.05)
    assert steps <= 100 and seconds <= 100 * 0.05, (steps, seconds)
    # the verdict of the full schedule (the user's own step count lifts the net)
    # (33 + 100 steps, both tries stalled; then the configured rate again over the steps its
    # time allows, up to 100: the capped phase leaves that third try out)
    full, full_steps, _ = _phase(monkeypatch, 0.05, overfit_steps=100)
    assert 133 < full_steps <= 233
    assert [(f.check, f.severity, f.key) for f in found] == [(f.check, f.severity, f.key) for f in full]
    assert [(f.check, f.severity.value) for f in found] == [("overfit-batch", "error")]
    assert found[0].evidence["lrs_tried"] == [0.003, 0.03]


def test_cost17_a_small_models_phase_below_the_floor_runs_its_whole_schedule(monkeypatch):
    # 1 ms a step: 233 steps take 0.23 s, under the 5 s floor: the whole schedule runs (a third
    # of the steps at 0.003, 100 at 0.03, both stalled: 100 more at 0.003 before the verdict)
    found, steps, _ = _phase(monkeypatch, 0.001)
    assert steps == 233
    assert [(f.check, f.severity.value) for f in found] == [("overfit-batch", "error")]


def test_cost17_a_retry_that_cannot_fit_is_cut_into_an_inconclusive_info(monkeypatch):
    # evaluations of 4 steps' time each: the first try (33 steps, 9 evaluations) leaves time for
    # fewer than 40 more steps; no short retry decides the verdict, the net cuts it: an INFO
    # with its numbers, and the phase ends by 1.25 x its limit (100 steps of 50 ms)
    found, steps, seconds = _phase(monkeypatch, 0.05, eval_seconds=0.2, overfit_seconds=1000)
    (finding,) = found
    assert finding.severity.value == "info" and finding.key == "inconclusive", finding.message
    assert "past the time of 100 of those steps" in finding.message
    assert finding.evidence["median_step_seconds"] == pytest.approx(0.05)
    assert steps < 133  # cut before the whole schedule ran
    # the net counts from the third step on (what comes before, here 4.6 s of evaluations, is set-up)
    assert seconds <= 1.25 * 100 * 0.05 + 25 * 0.2
    assert "overfit_steps=100" in finding.hint
