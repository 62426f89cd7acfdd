"""`loss-divergence` on the shapes real divergent runs take besides a climb: explosions by orders
of magnitude that recover, losses that run away below zero, and a known non-negative loss going
negative; and the healthy shapes that must stay silent (warm-up bumps, cosine restarts, noisy
plateaus at convergence, losses that legitimately cross zero)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcheck import Monitor, RunInfo, Severity
from mlcheck.checks.base import get_check
from mlcheck.task import NONNEGATIVE_LOSSES, loss_from_tag


def _steps(loss, info=None, vectorised=False):
    m = Monitor(checks=[get_check("loss-divergence")()], warn=False, info=info, strict=True)
    if vectorised:
        m.log_steps(np.arange(len(loss)), loss=np.asarray(loss, float))
    else:
        for i, v in enumerate(loss):
            m.log_step(i, loss=float(v))
    m.close()
    return [f for f in m.findings if f.severity >= Severity.WARNING]


def _epochs(train, val=None, info=None):
    m = Monitor(checks=[get_check("loss-divergence")()], warn=False, info=info, strict=True)
    for e, v in enumerate(train):
        m.log_epoch(epoch=e, train_loss=float(v), val_loss=None if val is None else float(val[e]))
    m.close()
    return [f for f in m.findings if f.severity >= Severity.WARNING]


def _noisy(clean, rel=0.1, seed=0):
    rng = np.random.default_rng(seed)
    return clean * np.exp(rel * rng.standard_normal(len(clean)))


def _converging(n, l0=2.3, floor=0.05, tau=0.15):
    t = np.arange(n)
    return floor + (l0 - floor) * np.exp(-t / (tau * n))


# -- explosions that recover -----------------------------------------------------------------------


def test_spikes_that_recover_in_epoch_losses():
    # the real shape (a random-search trial in handson-ml2 ch. 10): an epoch 20-40x above its
    # neighbours and 10x above where the loss started, then back, again and again
    train = _noisy(_converging(30, l0=0.7, floor=0.3), 0.05)
    train[9] *= 30
    train[20] *= 70
    (f,) = _epochs(train)
    assert f.key == "spikes" and f.severity is Severity.WARNING
    assert f.evidence["explosions"] == 2 and f.evidence["first_epoch"] == 9
    assert f.epoch == 21  # once the second explosion fell back
    assert f.evidence["largest_ratio"] > 50


def test_one_huge_spike_suffices_two_moderate_ones_needed():
    base = _noisy(_converging(30, l0=0.7, floor=0.3), 0.05)
    one_huge = base.copy()
    one_huge[12] *= 5000
    assert [f.key for f in _epochs(one_huge)] == ["spikes"]
    one_moderate = base.copy()
    one_moderate[12] *= 30  # 30x its level, 13x the initial loss: once is not enough
    assert _epochs(one_moderate) == []
    # once to 100x where the loss started is (SGD at 0.05 in handson-ml2 ch. 10: 0.55 -> 63.7 -> 0.94)
    one_far = base.copy()
    one_far[12] = 0.7 * 120
    assert [f.key for f in _epochs(one_far)] == ["spikes"]


def test_explosion_in_the_first_epochs_is_seen():
    # handson-ml2 ch. 10 (benchmarks/reallogs): 0.76, then 8e9 at epoch 2, then stuck at 1.34;
    # before, an explosion needed 5 epochs before it to be judged against
    loss = [0.7645, 8.16e9, 1.344, 1.355, 1.351, 1.327, 1.364, 1.349]
    (f,) = _epochs(loss)
    assert f.key == "spikes" and f.evidence["first_epoch"] == 1
    assert f.evidence["largest_ratio"] > 1e9


def test_silent_on_a_bumpy_first_epochs():
    # a warm-up bump of 3x at the second epoch, and a loss that starts tiny and jumps 50x: both
    # below the 10x-initial and 100x-level bars
    assert _epochs([2.3, 6.9, 1.2, 0.9, 0.8, 0.7]) == []
    assert _epochs([0.01, 0.5, 0.3, 0.2, 0.1, 0.05]) == []


def test_spikes_in_step_losses():
    loss = _noisy(_converging(3000), 0.1, seed=1)
    for start in (900, 1700, 2400):
        loss[start : start + 20] *= 300  # a few steps blown up, then back
    found = _steps(loss)
    assert [f.key for f in found] == ["spikes"]
    assert found[0].evidence["explosions"] == 2 and 1700 < found[0].step < 1800


def _gaussian_nll(n=24, seed=0):
    # a Gaussian negative log-likelihood: from ~5 through zero to about -2.5, noisy by 0.15
    rng = np.random.default_rng(seed)
    return -2.5 + 7.5 * np.exp(-np.arange(n) / 3.0) + 0.15 * rng.standard_normal(n)


def test_spikes_on_a_loss_that_goes_below_zero():
    # benchmarks/reallogs held-out-8, 2jogger1 (a Gaussian-NLL composite loss): epochs 30-300x
    # above their neighbours that fall back (21.8 -> 683 -> 195, 5.3 -> 1063, -2.7 -> 389) on a
    # loss that goes negative; the ratio to a level near or below zero meant nothing, and no
    # explosion reached 10x the first epoch's 89.6, so it was silent
    train = _gaussian_nll()
    train[9] = 300.0
    train[17] = 700.0
    (f,) = _epochs(train)
    assert f.key == "spikes" and f.severity is Severity.WARNING
    assert f.evidence["explosions"] == 2 and f.evidence["first_epoch"] == 9 and f.epoch == 18
    assert "below zero" in f.evidence["judged_on"]
    one = _gaussian_nll()
    one[12] = 300.0  # once, 100x the loss's size: not "again and again"
    assert _epochs(one) == []


def test_the_real_run_with_spikes_on_a_negative_loss():
    train = [89.58, 24.68, 21.76, 683.3, 195.5, 37.04, -2.247, 717.7, 5.574, 15.12, 25.51, 5.282]
    train += [1063.0, 72.82, -2.459, -2.608, -2.632, 388.9, -2.669, -2.685, 12.24, 27.10, 5.261, -2.790]
    (f,) = _epochs(train)
    assert f.key == "spikes" and f.evidence["first_epoch"] == 3


@pytest.mark.parametrize("seed", range(5))
def test_silent_on_healthy_losses_below_zero(seed):
    rng = np.random.default_rng(seed)
    n = 40
    # a Gaussian NLL that crosses zero, with a warm-up bump of 2-3x its size at epoch 6
    nll = _gaussian_nll(n, seed)
    nll[6] = 2.5 * abs(nll[5]) + nll[5]
    assert _epochs(nll) == []
    # an ELBO-like loss far below zero, noisy and heavy-tailed (Student t, 3 degrees of freedom)
    elbo = -100.0 - 40.0 * (1 - np.exp(-np.arange(n) / 8.0)) + 3.0 * rng.standard_t(3, n)
    assert _epochs(elbo) == []
    # a contrastive loss (negative cosine similarity, as in SimSiam) noisy near -0.9, never spiking
    contrastive = -0.9 + 0.05 * rng.standard_t(3, n)
    assert _epochs(contrastive) == []
    # the same with a warm restart every 10 epochs: back up to -0.3, then down again
    restarts = contrastive + np.where(np.arange(n) % 10 == 0, 0.6, 0.0)
    assert _epochs(restarts) == []
    # and a step-logged one: 2,000 noisy steps of a loss crossing zero
    steps = -1.0 + 3.0 * np.exp(-np.arange(2000) / 300.0) + 0.2 * rng.standard_t(3, 2000)
    assert _steps(steps) == []


# -- runaway below zero ----------------------------------------------------------------------------


def _runaway(n=40, start=0.7):
    # BCE fed labels {0, 2}: falls through zero and accelerates to -1e4 and beyond
    t = np.arange(n, dtype=float)
    return start - 0.05 * t - np.where(t > 8, np.expm1((t - 8) / 3.0), 0.0)


def test_runaway_below_zero_without_known_loss_is_a_warning():
    (f,) = _epochs(_runaway())
    assert f.key == "runaway" and f.severity is Severity.WARNING
    assert f.evidence["loss"] < -100 * f.evidence["initial_loss"]


def test_known_nonnegative_loss_below_zero_is_an_error_at_once():
    loss = np.concatenate([_noisy(_converging(200, l0=0.7, floor=0.2), 0.05), np.linspace(0.1, -0.3, 50)])
    found = _steps(loss, info=RunInfo(loss="bce_with_logits"))
    (f,) = found
    assert f.key == "negative" and f.severity is Severity.ERROR
    first_negative = int(np.argmax(loss < -1e-4))
    assert first_negative <= f.step <= first_negative + 32  # at the next evaluation point
    assert "{0, 1}" in f.hint


@pytest.mark.parametrize("vectorised", [False, True])
def test_below_zero_reads_no_bucket_while_every_value_stays_above_it(vectorised, monkeypatch):
    # `_below_zero` runs at every judgement: while each curve's smallest value (`Series.lowest`)
    # is above -tolerance it reads no bucket; the finding, once a value goes below, is the one
    # the buckets give (its step, minimum and latest loss), and a loss that dips to -tolerance
    # exactly, or below 0 by less than it, raises nothing
    from mlcheck.checks.optimization import LossDivergence
    from mlcheck.series import Series

    reads = []
    buckets = Series.buckets

    def counted(self, include_open=False):
        reads.append(self)
        return buckets(self, include_open)

    monkeypatch.setattr(Series, "buckets", counted)
    check = LossDivergence()
    m = Monitor(checks=[check], warn=False, info=RunInfo(loss="mse"), strict=True)
    loss = np.concatenate([_noisy(_converging(200, l0=0.7, floor=0.2), 0.05), np.full(40, -1e-4)])
    if vectorised:
        m.log_steps(np.arange(240), loss=loss)
    else:
        for i, v in enumerate(loss):
            m.log_step(i, loss=float(v))
    assert m.findings == []  # -1e-4 is the tolerance itself (initial loss < 1): not below it
    assert m.run.train_loss.lowest == -1e-4
    reads.clear()
    check._below_zero(m.run)
    assert reads == []  # nothing below -tolerance: no bucket read
    more = np.concatenate([np.full(5, -1e-4), [-0.02], np.full(60, -1e-4)])
    if vectorised:
        m.log_steps(np.arange(240, 240 + len(more)), loss=more)
    else:
        for i, v in enumerate(more, start=240):
            m.log_step(i, loss=float(v))
    m.close()
    (f,) = [f for f in m.findings if f.severity >= Severity.WARNING]
    assert f.key == "negative" and f.evidence["min_loss"] == -0.02 and f.evidence["first_step"] == 245


def test_negative_validation_loss_of_known_loss():
    train = _noisy(_converging(10, l0=2.3, floor=0.4), 0.02)
    val = train.copy()
    val[6:] = -0.5
    (f,) = _epochs(train, val, info=RunInfo(loss="mse"))
    assert f.key == "negative" and f.epoch == 6 and "validation loss" in f.message


@pytest.mark.parametrize("vectorised", [False, True])
def test_silent_on_losses_that_may_cross_zero(vectorised):
    # a Gaussian negative log-likelihood: starts ~1.4, settles near -2.5 (unknown loss)
    loss = _noisy(-2.5 + 3.9 * np.exp(-np.arange(2000) / 300), 0.02)
    assert _steps(loss, vectorised=vectorised) == []
    # the same curve named as a loss that may be negative
    assert _steps(loss, info=RunInfo(loss="poisson"), vectorised=vectorised) == []


def test_known_loss_near_zero_rounding_is_silent():
    loss = np.abs(_noisy(_converging(500, floor=1e-6), 0.3)) - 1e-7  # float32 rounding below zero
    assert _steps(loss, info=RunInfo(loss="cross_entropy")) == []


# -- healthy shapes --------------------------------------------------------------------------------


def test_silent_on_warmup_bumps_restarts_and_noisy_plateaus():
    n = 3000
    t = np.arange(n)
    clean = _converging(n)
    clean[100:108] *= 3.0  # a warm-up spike of 3x
    clean[300:360] *= 1.8  # and a longer bump
    restarts = 1 + 0.8 * (np.cos(np.pi * (t % 1000) / 1000) + 1) / 2  # cosine restarts: 1.8x jumps
    plateau = np.full(n, 0.05)
    for shape in (clean, clean * restarts, plateau):
        assert _steps(_noisy(shape, 0.4, seed=2)) == []
    # a heavy-tailed converged loss: single batches 50x the median
    heavy = _noisy(plateau, 0.3, seed=3)
    heavy[::97] *= 50
    assert _steps(heavy) == []


def test_silent_on_epoch_losses_with_restarts():
    level = _converging(30, l0=2.3, floor=0.3)
    bump = np.tile(1 + 0.8 * (np.cos(np.pi * np.arange(10) / 10) + 1) / 2, 3)  # SGDR, 10-epoch cycles
    assert _epochs(_noisy(level * bump, 0.05)) == []


# -- the loss table --------------------------------------------------------------------------------


def test_loss_from_tag_only_when_unambiguous():
    assert loss_from_tag("bce_loss") == "bce"
    assert loss_from_tag("train/bce_with_logits") == "bce_with_logits"
    assert loss_from_tag("val/mean_squared_error") == "mse"
    assert loss_from_tag("epoch_loss") is None and loss_from_tag("loss") is None
    assert loss_from_tag("rmse") is None  # words, not substrings
    assert loss_from_tag("nll_loss") is None  # a density's NLL may be negative
    assert loss_from_tag("mse_plus_bce") is None  # two losses


def test_nonnegative_table():
    assert {"cross_entropy", "bce", "mse", "mae", "hinge", "sparse_categorical_crossentropy"} <= NONNEGATIVE_LOSSES
    assert not {"poisson", "kl_div"} & NONNEGATIVE_LOSSES
    assert math.isfinite(1.0)
