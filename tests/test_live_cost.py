"""Fixed costs scaled to the run: the live core proportions the train-start checks' budget to
the steps the trainer plans."""

from __future__ import annotations

import pytest

from mlcheck import Check
from mlcheck.checks.base import Signal
from mlcheck.live import LiveOptions, LiveRun
from mlcheck.run import RunInfo


class BudgetSpy(Check):
    """Records the step budget the train-start run hands it.

    What it does:
        Records a budget.
    Why it matters:
        Proves the proportioning.
    How to fix:
        Nothing.
    """

    id = "test-budget-spy"
    family = "test"
    consumes = frozenset({Signal.TRAIN_START})

    def reset(self) -> None:
        self.steps: int | None = None

    def preflight(self, ctx):
        self.steps = ctx.budget.steps
        return ()


class _Trainable:
    def rng_state(self):
        return None

    def set_rng_state(self, state):
        pass


@pytest.mark.parametrize(
    "total_steps, option, expected",
    [
        (None, None, 100),  # the trainer does not say: the pre-flight budget
        (135, None, 67),  # 3 epochs of digits: half the run
        (50, None, 60),  # never under the floor that memorises a batch
        (450, None, 100),  # 10 epochs (every run of the fault suite): unchanged
        (300_000, None, 100),
        (135, 40, 40),  # an explicit overfit_steps wins
    ],
)
def test_train_start_budget_is_proportioned_to_the_planned_steps(total_steps, option, expected):
    spy = BudgetSpy()
    live = LiveRun(LiveOptions(train_start_steps=option), [spy], info=RunInfo(total_steps=total_steps))
    assert live.train_start_steps() == expected
    live.run_train_start_checks(_Trainable, step=0, epoch=0)
    assert spy.steps == expected
