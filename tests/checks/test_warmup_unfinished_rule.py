"""`lr-schedule` key `warmup-unfinished` on rates fed to a `Monitor` (the live runs are in
tests/integrations/test_warmup_unfinished.py): a 100-epoch run of 100 steps an epoch whose
rate rises from ~0 towards the configured 1e-3. A linear warm-up of 200,000 steps (ending at 5%
of the rate) is told within the run's first quarter (its pace read geometrically as well).
Warm-ups that end within the plan stay silent, also where the rate is still under 10% of its
peak at the first epoch's end: a linear one over 15% of the run, an exponential one from 1e-7
over 10% (its pace read geometrically too), a cosine-shaped ramp over 30% that starts at 0.
Without `RunInfo.base_lr` nothing is judged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcheck import Monitor, RunInfo, Severity
from mlcheck.checks.learning_rate import LRSchedule

EPOCHS, PER_EPOCH = 100, 100
TOTAL = EPOCHS * PER_EPOCH
BASE = 1e-3


def _rate(shape: str, step: np.ndarray) -> np.ndarray:
    if shape == "linear-200000":
        return BASE * np.minimum(1.0, (step + 1) / 200_000)
    if shape == "linear-15%":
        return BASE * np.minimum(1.0, (step + 1) / (0.15 * TOTAL))
    if shape == "exponential-tenth":
        return BASE * 1e-4 ** np.maximum(0.0, 1 - step / (TOTAL // 10))
    if shape == "cosine-ramp":
        t = np.minimum(1.0, step / (0.3 * TOTAL))
        return BASE * (1 - np.cos(math.pi * t)) / 2
    raise ValueError(shape)


def _findings(shape: str, epochs: int = EPOCHS, base: float | None = BASE):
    m = Monitor(checks=[LRSchedule()], warn=False, info=RunInfo(total_steps=TOTAL, max_epochs=EPOCHS, base_lr=base))
    for e in range(epochs):
        steps = np.arange(e * PER_EPOCH, (e + 1) * PER_EPOCH)
        m.log_steps(steps, loss=np.full(PER_EPOCH, 1.0), lr=_rate(shape, steps), epoch=e)
        m.log_epoch(e, step=int(steps[-1]), train_loss=1.0)
    return [f for f in m.findings if f.check == "lr-schedule" and f.severity >= Severity.WARNING]


def test_a_warmup_longer_than_the_run_is_told_within_its_first_quarter():
    (f,) = _findings("linear-200000")
    # the pace read geometrically too (an exponential warm-up's) reaches 1e-3 sooner: told at step
    # ~2,400, not at the first epoch's end; at the end it ends at 5% of the configured rate
    assert f.key == "warmup-unfinished" and f.step < 0.3 * TOTAL
    assert f.evidence["reaches_base_at_step"] > TOTAL and f.evidence["share_of_base"] < 0.02


@pytest.mark.parametrize("shape", ["linear-15%", "exponential-tenth", "cosine-ramp"])
def test_warmups_that_end_within_the_run_are_silent(shape):
    assert _rate(shape, np.array([PER_EPOCH - 1]))[0] < 0.1 * BASE  # under 10% at the first epoch's end
    assert _findings(shape) == []


def test_without_the_configured_rate_nothing_is_judged():
    assert _findings("linear-200000", base=None) == []
