"""The wall-clock safety net scales with the measured step time: a step budget that is cheap to
finish is finished on a slow machine instead of being cut into an INFO "inconclusive", and a
check that is truly slow is still cut, with the numbers that decided it. Slow machines are
played by steps that sleep (wall-clock time, so the tests hold on a loaded machine)."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlcheck.sanity import Budget, sanity
from numpy_trainable import NumpyTrainable, blobs

#: Adam-free softmax regression at 0.003: the first try (10 steps) stalls, the second (at 0.03)
#: fits the batch at step 20, so overfit-batch takes 30 training steps and finds nothing.
LR = 0.003
STEPS = 30


class SleepyTrainable(NumpyTrainable):
    """Each training step takes `delay` seconds longer."""

    def __init__(self, *args, delay=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.delay = delay

    def train_step(self, batch):
        time.sleep(self.delay)
        return super().train_step(batch)


def _overfit(delay, budget):
    return sanity(SleepyTrainable(*blobs(), lr=LR, delay=delay), select=["overfit-batch"], budget=budget)


def test_slow_steps_that_are_cheap_to_finish_are_finished():
    # 30 steps of 0.05 s: ~1.5 s, three times the 0.5 s net, well within the 30 s limit
    result = _overfit(0.05, Budget(steps=STEPS, seconds=0.5, max_seconds=30))
    assert result.inconclusive == [] and result.findings == [], [f.format() for f in result.findings]
    assert result.timings["overfit-batch"] > 0.5  # the net was passed, and the steps decided
    # the same run under a fixed net (the old rule) is cut, and its verdict lost
    fixed = _overfit(0.05, Budget(steps=STEPS, seconds=0.5, max_seconds=0.5))
    assert fixed.inconclusive == ["overfit-batch"]


def test_the_default_limit_is_three_times_the_net():
    assert Budget().limit == 30.0 and Budget(seconds=2).limit == 6.0
    assert Budget(seconds=5, max_seconds=60).limit == 60.0
    # a limit below the net was raised to it without a word (round 11): refused, naming both
    with pytest.raises(ValueError, match=r"Budget\(max_seconds=1\) is below seconds=5: the hard limit cannot come"):
        Budget(seconds=5, max_seconds=1)
    with pytest.raises(ValueError, match=r"Budget\(max_seconds=4\) is below seconds=10"):
        Budget(max_seconds=4)  # the default net
    assert Budget(seconds=5, max_seconds=5).limit == 5.0  # a fixed net
    with pytest.raises(ValueError, match=r"Budget\(max_seconds=\.\.\.\)"):
        Budget(max_seconds=float("nan"))


def test_truly_slow_steps_are_cut_with_the_numbers():
    # 1 s a step: after 3 measured steps, 30 more would end far past the 4 s limit
    result = _overfit(1.0, Budget(steps=STEPS, seconds=0.5, max_seconds=4))
    assert result.inconclusive == ["overfit-batch"]
    (finding,) = result.findings
    assert finding.severity.value == "info" and finding.key == "inconclusive"
    assert "3 steps measured" in finding.message and "past its limit of 4 s" in finding.message
    assert 0.9 <= finding.evidence["step_seconds"] < 2.0
    assert finding.evidence["projected_seconds"] > 4 and finding.evidence["steps_taken"] == 3
    assert "budget=Budget(max_seconds=" in finding.hint
    assert result.timings["overfit-batch"] < 4  # cut as soon as the projection was known


def test_a_check_that_does_not_count_its_steps_keeps_the_fixed_net():
    budget = Budget(seconds=0.05)
    time.sleep(0.1)
    assert budget.expired() and budget.projected is None


MODEL = """
import sys
sys.path.insert(0, {here!r})
from test_scaled_net import SleepyTrainable
from numpy_trainable import blobs

def mlcheck_target():
    return {{"model": SleepyTrainable(*blobs(), lr={lr}, delay={delay})}}
"""


@pytest.mark.parametrize("delay, found", [(0.05, []), (1.0, ["overfit-batch"])], ids=["cheap", "slow"])
def test_the_command_finishes_cheap_steps_and_names_its_option_when_it_cuts(tmp_path, delay, found):
    model = tmp_path / "model.py"
    model.write_text(textwrap.dedent(MODEL.format(here=str(Path(__file__).parent), lr=LR, delay=delay)))
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(model), "--json", "--select", "overfit-batch"]
        + ["--budget-steps", str(STEPS), "--budget-seconds", "0.5", "--budget-max-seconds", "4"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["inconclusive"] == found
    assert [f["check"] for f in report["findings"]] == found
    for finding in report["findings"]:
        assert "--budget-max-seconds" in finding["hint"] and "Budget(" not in finding["hint"]


def test_a_saved_model_file_gets_told_how_to_check_it(tmp_path):
    import subprocess
    import sys

    saved = tmp_path / "model.keras"
    saved.write_bytes(b"PK\x03\x04")
    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(saved)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "not a Python file" in out.stderr and "mlcheck_target" in out.stderr and "load_model" in out.stderr
