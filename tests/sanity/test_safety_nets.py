"""The wall-clock nets of `mlcheck.sanity` from Python: a stage that hangs raises a documented
`StageTimeout` (never kills the caller), and the caller's SIGALRM handler and timer are put back
afterwards, also when the run raises. The command's side is tests/sanity/test_hostile_models.py."""

import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlcheck.errors import BadInput
from mlcheck.sanity import Budget, sanity
from mlcheck.sanity.usercode import UserCodeError
from mlcheck.sanity.watchdog import StageTimeout
from numpy_trainable import NumpyTrainable, blobs

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"


def _callers_handler(signum, frame):
    raise AssertionError("the caller's timer fired during the test")


@pytest.fixture
def callers_alarm():
    """A SIGALRM handler and a pending timer of the caller's own, restored after the test."""
    before = signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)
    signal.signal(signal.SIGALRM, _callers_handler)
    signal.setitimer(signal.ITIMER_REAL, 900.0)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, before[0])
    if before[1][0] > 0:
        signal.setitimer(signal.ITIMER_REAL, *before[1])


def _assert_callers_alarm_is_back():
    assert signal.getsignal(signal.SIGALRM) is _callers_handler
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 0 < left < 900.0  # still pending, less the time the run took


def test_the_callers_handler_and_timer_are_restored(callers_alarm):
    result = sanity(NumpyTrainable(*blobs()), select=["overfit-batch", "nonfinite-input"])
    assert result.checks
    _assert_callers_alarm_is_back()


def test_they_are_restored_when_the_run_raises(callers_alarm):
    with pytest.raises(UserCodeError, match="forward is not implemented yet"):
        sanity(HOSTILE / "forward_raises.py", budget=Budget(seconds=2))
    _assert_callers_alarm_is_back()


def test_a_forward_pass_that_never_returns_raises_stage_timeout(callers_alarm):
    with pytest.raises(StageTimeout) as info:
        sanity(HOSTILE / "loop_in_forward.py", budget=Budget(seconds=1))
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, BadInput)
    assert str(info.value).startswith("loop_in_forward.py: the first forward pass did not return within 6 s")
    assert "while True:" in info.value.user_traceback  # where the user's code was stopped
    _assert_callers_alarm_is_back()


def test_a_blocking_loader_raises_stage_timeout():
    with pytest.raises(StageTimeout, match="reading the first training batch did not return"):
        sanity(HOSTILE / "loader_blocks_on_queue.py", budget=Budget(seconds=1))


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf, -1.0, 0.0, "10", True])
def test_budget_seconds_must_be_finite_and_positive(seconds):
    with pytest.raises(ValueError, match=r"Budget\(seconds=\.\.\.\)"):
        Budget(seconds=seconds)


@pytest.mark.parametrize("steps", [0, -5, 1.5, math.nan, "100", False])
def test_budget_steps_must_be_a_whole_number(steps):
    with pytest.raises(ValueError, match=r"Budget\(steps=\.\.\.\)"):
        Budget(steps=steps)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--budget-seconds", "nan"),
        ("--budget-seconds", "inf"),
        ("--budget-seconds", "-inf"),
        ("--budget-seconds", "-1"),
        ("--budget-seconds", "0"),
        ("--budget-seconds", "ten"),
        ("--budget-steps", "0"),
        ("--budget-steps", "1.5"),
    ],
)
def test_bad_budget_options_are_rejected_at_the_argument(option, value, tmp_path):
    model = tmp_path / "model.py"
    model.write_text("raise SystemExit('model.py must not even be imported')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(model), f"{option}={value}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"argument {option}: " in proc.stderr and repr(value) in proc.stderr
    assert "Traceback" not in proc.stderr and "must not even be imported" not in proc.stderr


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--budget-max-seconds", "1", "--budget-seconds", "5"], "--budget-max-seconds 1 is below --budget-seconds 5:"),
        (["--budget-max-seconds", "4"], "--budget-max-seconds 4 is below --budget-seconds 10 (the default):"),
    ],
)
def test_a_hard_limit_below_the_safety_net_is_refused(options, said, tmp_path):
    """Round 11: `--budget-max-seconds 1 --budget-seconds 5` was taken without a word (the limit
    silently raised to the net); refused before model.py is imported, naming both."""
    model = tmp_path / "model.py"
    model.write_text("raise SystemExit('model.py must not even be imported')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(model), *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"mlcheck: error: {said} the hard limit cannot come before the safety net"), line
    assert "must not even be imported" not in proc.stderr
