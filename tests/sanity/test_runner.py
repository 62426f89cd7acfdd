"""The runner's own behaviour, on a numpy Trainable (milliseconds per run)."""

import random

import numpy as np
import pytest

from mlcheck import Check, Severity
from mlcheck.sanity import Budget, sanity
from numpy_trainable import NumpyTrainable, blobs


class Raises(Check):
    """Fails internally."""

    id = "test-raises"
    family = "preflight"

    def preflight(self, ctx):
        raise RuntimeError("bug in the check")


class Slow(Check):
    """Trains until its wall-clock budget runs out, then (wrongly) blames the model."""

    id = "test-slow"
    family = "preflight"

    def preflight(self, ctx):
        clone = ctx.trainable.clone()
        batch = clone.batches("train", 1)[0]
        while not ctx.budget.expired():
            clone.train_step(batch)
        yield self.finding("model cannot learn", severity=Severity.ERROR)


class Consumes(Check):
    """Draws from every random generator and steps a clone."""

    id = "test-consumes"
    family = "preflight"

    def preflight(self, ctx):
        np.random.rand(10)
        random.random()
        clone = ctx.trainable.clone()
        for _ in range(ctx.budget.steps):
            clone.train_step(clone.batches("train", 1)[0])
        return ()


class Rows(Check):
    """Counts the rows a data check sees, per split, and reports them at the end."""

    id = "test-rows"
    family = "data"

    def reset(self):
        self.rows = {"train": 0, "val": 0}

    def on_batch(self, batch, run):
        self.rows[batch.split] += len(batch.inputs)
        return ()

    def on_end(self, run):
        yield self.finding("rows", evidence=dict(self.rows), severity=Severity.INFO)


def test_default_checks_are_silent_on_a_healthy_model():
    result = sanity(NumpyTrainable(*blobs()))
    assert not result.at_or_above("warning"), [f.format() for f in result.findings]
    assert not result.failed and not result.inconclusive
    ids = {c.check for c in result.checks}
    assert {"overfit-batch", "nonfinite-input", "train-val-overlap"} <= ids
    assert "loss-plateau" not in ids  # live-only checks have nothing to do before training


def test_data_checks_see_train_and_val_batches_then_on_end():
    x, y, xv, yv = blobs(n=2000)
    result = sanity(NumpyTrainable(x, y, xv, yv), checks=[Rows()])
    (finding,) = result.findings
    assert finding.evidence == {"train": 16 * 32, "val": len(xv)}  # 16 batches, all 400 val rows


def test_a_failing_check_is_skipped_and_named_the_others_still_run():
    result = sanity(NumpyTrainable(*blobs()), checks=[Raises(), Rows()])
    assert result.failed == {"test-raises": "RuntimeError: bug in the check"}
    assert [f.check for f in result.findings] == ["test-rows"]


def test_a_check_cut_short_is_inconclusive_info_never_an_error():
    result = sanity(NumpyTrainable(*blobs()), checks=[Slow()], budget=Budget(seconds=0.2))
    assert result.inconclusive == ["test-slow"]
    (finding,) = result.findings
    assert finding.severity is Severity.INFO and "inconclusive" in finding.message


def test_random_state_and_model_are_restored():
    trainable = NumpyTrainable(*blobs())
    before = trainable.parameters()
    np.random.seed(1)
    random.seed(1)
    expected = (np.random.rand(), random.random())
    np.random.seed(1)
    random.seed(1)
    sanity(trainable, checks=[Consumes()], budget=Budget(steps=5))
    assert (np.random.rand(), random.random()) == expected
    after = trainable.parameters()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert trainable.steps == 0


def test_select_and_suppress():
    t = NumpyTrainable(*blobs())
    assert [c.check for c in sanity(t, select=["nonfinite-input"]).checks] == ["nonfinite-input"]
    ids = [c.check for c in sanity(t, suppress=["nonfinite-input", "overfit-batch"]).checks]
    assert "nonfinite-input" not in ids and "overfit-batch" not in ids and ids
    result = sanity(t, select=["loss-plateau", "nonfinite-input"])
    assert any("loss-plateau" in note for note in result.notes)
    with pytest.raises(ValueError, match="unknown check id"):
        sanity(t, select=["no-such-check"])


def test_nan_in_the_data_is_found_through_the_interface():
    x, y, xv, yv = blobs()
    x[::7, 2] = np.nan
    result = sanity(NumpyTrainable(x, y, xv, yv))
    assert "nonfinite-input" in {f.check for f in result.at_or_above("error")}


def test_mlcheck_sanity_stays_callable_after_its_modules_are_imported():
    import mlcheck
    import mlcheck.sanity.runner  # noqa: F401  (rebinds the attribute mlcheck.sanity)

    assert mlcheck.sanity(NumpyTrainable(*blobs()), select=["nonfinite-input"]).checks


def test_a_check_ignoring_its_budget_is_interrupted():
    # in a subprocess: pytest-timeout holds this process's SIGALRM timer, and the hard stop
    # only arms when that timer is free
    import subprocess
    import sys
    from pathlib import Path

    code = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from numpy_trainable import NumpyTrainable, blobs
from mlcheck import Check
from mlcheck.sanity import Budget, runner, sanity
runner.HARD_LIMIT_GRACE = 0.0

class Hang(Check):
    '''Never looks at its budget.'''
    id = "test-hang"
    family = "preflight"
    def preflight(self, ctx):
        while True:
            time.sleep(0.01)

result = sanity(NumpyTrainable(*blobs()), checks=[Hang()], budget=Budget(seconds=0.2))
assert result.inconclusive == ["test-hang"], result.checks
assert [f.severity.value for f in result.findings] == ["info"]
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
