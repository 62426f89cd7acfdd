"""The rules behind two regression-target findings, on real data sets through a real Monitor and
on the check's own label pooling:

- `unnormalized-input` key `targets`: regression targets far from unit scale under a loss whose
  size grows with them; silent on classic regression targets in their units (sklearn's diabetes
  and linnerud), on classification and on losses that work on ratios, logs or rates;
- `output-loss-mismatch` key `class-indices`: whole numbers 0..K-1, all present and none rare,
  under a regression loss with one output unit; silent on counts, ratings from 1, gaps, 0/1.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits, load_linnerud

from mlcheck import Monitor, RunInfo, Severity
from mlcheck.checks.data import UnnormalizedInput
from mlcheck.checks.preflight.output_loss_mismatch import OutputLossMismatch
from mlcheck.trainable import LossConfig


def target_findings(y, *, loss=None, task=None, batch_size=32):
    """`unnormalized-input`'s target findings for standardised inputs and targets `y`, fed as
    the callbacks feed sampled training batches."""
    x = np.random.default_rng(0).normal(size=(len(y), 4)).astype(np.float32)
    monitor = Monitor([UnnormalizedInput()], warn=False, default_sinks=False, info=RunInfo(loss=loss, task=task))
    for index, start in enumerate(range(0, len(y), batch_size)):
        rows = slice(start, start + batch_size)
        monitor.log_batch(x[rows], y[rows], split="train", step=index, epoch=0, index=index)
    monitor.close()
    return [f for f in monitor.findings if f.check == "unnormalized-input"]


def prices(n=256):
    return (2.5e5 + 7e4 * np.random.default_rng(1).normal(size=n)).astype(np.float32)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "smooth_l1", "log_cosh", "mean_squared_error"])
def test_unscaled_targets_warn_under_scale_sensitive_losses(loss):
    [f] = target_findings(prices(), loss=loss)
    assert (f.key, f.severity) == ("targets", Severity.WARNING)
    assert 2.3e5 < f.evidence["target_mean"] < 2.7e5 and 5e4 < f.evidence["target_std"] < 9e4
    assert f.evidence["targets_seen"] >= 32
    assert ("first loss is about 6" in f.message) == (loss in ("mse", "mean_squared_error"))


def test_unknown_loss_is_judged_only_in_a_regression_run():
    assert [f.key for f in target_findings(prices(), task="regression")] == ["targets"]
    assert target_findings(prices()) == []  # no loss, no task: the targets could be anything


@pytest.mark.parametrize("loss", ["cross_entropy", "bce", "poisson", "msle", "mape"])
def test_other_losses_stay_silent(loss):
    assert target_findings(prices(), loss=loss) == []


@pytest.mark.parametrize(
    "targets",
    [
        pytest.param(lambda: load_diabetes().target, id="diabetes-25-346"),
        pytest.param(lambda: load_linnerud().target, id="linnerud-up-to-247"),
        pytest.param(lambda: load_digits().target.astype(np.float64), id="digit-values-0-9"),
        pytest.param(lambda: np.random.default_rng(0).normal(size=400), id="standardised"),
        pytest.param(lambda: np.random.default_rng(0).normal(455, 17, size=400), id="power-plant-420-496"),
    ],
)
def test_classic_regression_targets_in_their_units_stay_silent(targets):
    y = np.asarray(targets(), dtype=np.float32)
    assert target_findings(y, loss="mse") == []


def test_the_verdict_waits_for_enough_targets_and_comes_once():
    y = prices(40)
    assert target_findings(y[:24], loss="mse", batch_size=8) == []  # under min_target_samples
    assert len(target_findings(np.concatenate([y] * 5), loss="mse")) == 1


# -- class indices -----------------------------------------------------------------------------


def class_index_findings(*batches, loss="mse", units=1):
    check = OutputLossMismatch()
    cfg = LossConfig(loss=loss, output_units=units, task="regression")
    return check._class_indices(cfg, "regression", units, [np.asarray(b) for b in batches], {})


def digit_labels(n=128):
    return load_digits().target[:n].astype(np.float32)


def test_class_indices_under_mse_are_info():
    [f] = class_index_findings(digit_labels()[:64], digit_labels()[64:128])
    assert (f.key, f.severity) == ("class-indices", Severity.INFO)
    assert f.evidence["classes"] == 10 and f.evidence["targets_seen"] == 128


def test_class_indices_pool_over_the_first_pass():
    """At train start the callbacks see one batch, which comes again in the first pass: the
    pre-flight only arms the count, and the first pass's batches complete it (judged at 128
    labels, then at each doubling: a few looks, not one per batch)."""
    from mlcheck.run import BatchObservation, RunState

    check = OutputLossMismatch()
    y = digit_labels(320)
    cfg = LossConfig(loss="mse", output_units=1)
    assert check._class_indices(cfg, "regression", 1, [y[:32]], {}, live=True) == []
    run = RunState(RunInfo(loss="mse"))
    found = []
    for start in range(0, 320, 32):
        batch = BatchObservation(inputs=None, targets=y[start : start + 32], split="train", step=start // 32)
        found += check.on_batch(batch, run)
    assert [(f.key, f.evidence["targets_seen"], f.step) for f in found] == [("class-indices", 128, 3)]


def test_the_first_look_is_not_one_of_many_chances():
    """Poisson counts with a small mean can look uniform over a few dozen values; the verdict
    waits for 128 and is taken again only as the count doubles."""
    hits = 0
    for seed in range(50):
        y = np.random.default_rng(seed).poisson(2.0, size=512).astype(np.float32)
        hits += bool(class_index_findings(*np.split(y, 16)))
    assert hits == 0


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param(lambda rng: rng.poisson(2.0, size=256), id="poisson-counts"),
        pytest.param(lambda rng: rng.geometric(0.3, size=256) - 1, id="geometric-counts"),
        pytest.param(lambda rng: rng.integers(1, 6, size=256), id="ratings-1-5"),
        pytest.param(lambda rng: rng.choice([0, 1, 2, 4, 5], size=256), id="a-gap"),
        pytest.param(lambda rng: rng.integers(0, 2, size=256), id="binary-0-1"),
        pytest.param(lambda rng: rng.integers(0, 80, size=256), id="80-values"),
        pytest.param(lambda rng: rng.integers(0, 10, size=256) + 0.5, id="fractions"),
    ],
)
def test_what_is_not_class_indices_stays_silent(labels):
    y = labels(np.random.default_rng(0)).astype(np.float32)
    assert class_index_findings(y) == []


@pytest.mark.parametrize(("loss", "units"), [("cross_entropy", 10), ("mse", 10), ("poisson", 1), ("msle", 1)])
def test_class_indices_need_a_scale_sensitive_loss_and_one_unit(loss, units):
    assert class_index_findings(digit_labels(), loss=loss, units=units) == []
