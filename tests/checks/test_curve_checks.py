"""The curve checks on synthetic curves fed through a real `Monitor`: each fires on its symptom
and stays silent on healthy curves (converged, noisy, schedules, short, regression, epoch-only,
no validation)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mlcheck import MLCheckWarning, Monitor, RunInfo, Severity
from mlcheck.checks.base import get_check
from mlcheck.run import EarlyStop

CURVE_CHECKS = (
    "nonfinite-loss",
    "loss-divergence",
    "loss-plateau",
    "train-val-gap",
    "suspicious-val",
    "lr-too-high",
    "lr-too-low",
    "lr-schedule",
)


def monitor(info: RunInfo | None = None, warn: bool = False) -> Monitor:
    return Monitor(checks=[get_check(c)() for c in CURVE_CHECKS], warn=warn, info=info, strict=True)


def run_steps(loss=None, lr=None, ratio=None, info=None, vectorised=False, epochs=(), per_step=None):
    """Feeds per-step arrays (and optional epoch rows) and returns the findings after close()."""
    m = monitor(info)
    n = len(loss if loss is not None else lr)
    if vectorised:
        m.log_steps(
            np.arange(n),
            loss=None if loss is None else np.asarray(loss, float),
            lr=None if lr is None else np.asarray(lr, float),
        )
    else:
        for i in range(n):
            r = None if ratio is None or not np.isfinite(ratio[i]) else float(ratio[i])
            m.log_step(
                i,
                loss=None if loss is None else float(loss[i]),
                lr=None if lr is None else float(lr[i]),
                update_ratio=r,
                **(per_step or {}).get(i, {}),
            )
    for row in epochs:
        m.log_epoch(**row)
    m.close()
    return m.findings


def run_epochs(rows, info=None):
    m = monitor(info)
    for row in rows:
        m.log_epoch(**row)
    m.close()
    return m.findings


def ids(findings, severity=Severity.WARNING):
    return {f.check for f in findings if f.severity >= severity}


def noisy(clean, rel=0.1, seed=0, df=5):
    rng = np.random.default_rng(seed)
    eps = rng.standard_t(df, len(clean)) / math.sqrt(df / (df - 2))
    return np.maximum(clean * (1 + rel * eps), clean * 0.05)


def converging(n=1500, l0=2.3, floor=0.05, tau=0.15):
    t = np.arange(n)
    return floor + (l0 - floor) * np.exp(-t / (tau * n))


# -- healthy curves: no warning or error from any curve check -------------------------------------


def _schedules(n):
    t = np.arange(n)
    warm = max(1, n // 20)
    peak = 3e-3
    return {
        "warmup-linear": np.where(t < warm, peak * t / warm, peak * (n - t) / (n - warm)),
        "cosine": 0.5 * peak * (1 + np.cos(np.pi * t / n)),
        "warmup-cosine": np.where(
            t < warm, peak * (t + 1) / warm, 0.5 * peak * (1 + np.cos(np.pi * (t - warm) / (n - warm)))
        ),
        "step": peak * 0.1 ** np.floor(t * 3 / n),
        "one-cycle": np.where(
            t < 0.3 * n,
            peak / 25 + (peak - peak / 25) * t / (0.3 * n),
            peak * (1 - (t - 0.3 * n) / (0.7 * n)) + peak / 1e4,
        ),
        "restarts": 0.5 * peak * (1 + np.cos(np.pi * (t % (n / 3)) / (n / 3))),
        "constant": np.full(n, peak),
    }


@pytest.mark.parametrize("schedule", list(_schedules(10)))
@pytest.mark.parametrize("vectorised", [False, True])
def test_silent_on_schedules(schedule, vectorised):
    n = 1200
    lr = _schedules(n)[schedule]
    progress = np.cumsum(lr) / lr.sum()
    clean = 0.05 + 2.25 * np.exp(-progress / 0.2) + 0.1 * lr / lr.max()
    info = RunInfo(total_steps=n, has_scheduler=schedule != "constant")
    found = run_steps(noisy(clean, 0.15, seed=3), lr=lr, info=info, vectorised=vectorised)
    assert not ids(found), [f.format() for f in found]


@pytest.mark.parametrize(
    "name,loss",
    [
        ("converged", noisy(converging(), 0.05)),
        ("noisy-improving", noisy(converging(), 0.6, seed=1, df=3)),
        ("near-zero", noisy(converging(floor=1e-4, tau=0.05), 0.3, seed=2)),
        ("regression-scale", noisy(converging(l0=850.0, floor=40.0), 0.1, seed=4)),
        ("small-scale", noisy(converging(l0=0.02, floor=0.001), 0.1, seed=5)),
        ("short", noisy(converging(n=25), 0.1, seed=6)),
        ("very-short", np.array([2.3, 2.1])),
        ("slow-start", noisy(np.concatenate([np.full(80, 2.3), converging(1420, l0=2.3)]), 0.05, seed=7)),
    ],
)
def test_silent_on_healthy_losses(name, loss):
    for vectorised in (False, True):
        found = run_steps(loss, lr=np.full(len(loss), 1e-3), vectorised=vectorised)
        assert not ids(found), (name, [f.format() for f in found])


def test_silent_on_isolated_spikes():
    loss = noisy(converging(2000), 0.1, seed=8)
    for i in (300, 900, 1500):
        loss[i] *= 5
    assert not ids(run_steps(loss))


def _epoch_rows(n_ep=30, val=True, gap=0.1, val_noise=0.02, seed=0, accuracy=False):
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_ep):
        train = 0.1 + 2.2 * math.exp(-(e + 1) / 5)
        row = {"epoch": e, "train_loss": train * (1 + 0.01 * rng.standard_normal())}
        if val:
            row["val_loss"] = (0.1 + gap + 2.2 * math.exp(-(e + 1) / 5)) * (1 + val_noise * rng.standard_normal())
            if accuracy:
                row["val_metrics"] = {"accuracy": 1 - row["val_loss"] / 2.5}
                row["train_metrics"] = {"accuracy": 1 - row["train_loss"] / 2.5}
        rows.append(row)
    return rows


@pytest.mark.parametrize("val", [True, False])
def test_silent_on_epoch_only_logs(val):
    # `mlcheck analyze` on a Keras CSV sees epoch rows only.
    assert not ids(run_epochs(_epoch_rows(val=val, accuracy=val)))


def test_silent_on_noisy_validation_that_flattens():
    rows = _epoch_rows(n_ep=40, val_noise=0.05, seed=11)
    assert not ids(run_epochs(rows))


def test_silent_on_regression_epochs_with_step_losses():
    n_ep, per = 20, 50
    loss = noisy(converging(n_ep * per, l0=120.0, floor=8.0), 0.1, seed=12)
    rows = [
        {
            "epoch": e,
            "step": (e + 1) * per - 1,
            "train_loss": float(loss[e * per : (e + 1) * per].mean()),
            "val_loss": float(loss[(e + 1) * per - 1] * 1.1),
        }
        for e in range(n_ep)
    ]
    m = monitor(RunInfo(task="regression"))
    for e in range(n_ep):
        for i in range(e * per, (e + 1) * per):
            m.log_step(i, loss=float(loss[i]), lr=1e-3)
        m.log_epoch(**rows[e])
    m.close()
    assert not ids(m.findings), [f.format() for f in m.findings]


# -- nonfinite-loss --------------------------------------------------------------------------------


def test_nonfinite_loss_names_the_step_and_warns():
    loss = converging(300)
    loss[137] = np.nan
    m = monitor(warn=True)
    with pytest.warns(MLCheckWarning, match="NaN at step 137"):
        for i, value in enumerate(loss):
            m.log_step(i, loss=float(value))
    m.close()
    f = [f for f in m.findings if f.check == "nonfinite-loss"]
    assert len(f) == 1 and f[0].severity is Severity.ERROR and f[0].step == 137


def test_nonfinite_loss_inf_val_loss_and_weights():
    loss = converging(100)
    found = run_steps(loss, epochs=[{"epoch": 0, "val_loss": 1.0}, {"epoch": 1, "val_loss": math.inf}])
    assert [f.epoch for f in found if f.check == "nonfinite-loss"] == [1]
    found = run_steps(loss, per_step={40: {"nonfinite_weights": ["fc.weight", "fc.bias"]}})
    (f,) = [f for f in found if f.check == "nonfinite-loss"]
    assert f.step == 40 and "fc.weight" in f.message and f.severity is Severity.ERROR


def test_nonfinite_loss_silent_on_mixed_precision_skipped_steps():
    # A GradScaler skips steps whose gradients overflowed: the loss stays finite and the adapters
    # report no update for those steps and no non-finite weights.
    loss = noisy(converging(400), 0.05)
    ratio = np.full(400, 1e-3)
    ratio[[10, 11, 50, 200]] = np.nan  # skipped: no update measured
    assert "nonfinite-loss" not in ids(run_steps(loss, ratio=ratio))


def test_nonfinite_loss_vectorised_same_as_per_step():
    loss = noisy(converging(700), 0.1)
    loss[500:] = np.inf
    a = [(f.check, f.step, f.message) for f in run_steps(loss) if f.check == "nonfinite-loss"]
    b = [(f.check, f.step, f.message) for f in run_steps(loss, vectorised=True) if f.check == "nonfinite-loss"]
    assert a == b == [("nonfinite-loss", 500, "The training loss became Inf at step 500.")]


def test_nonfinite_loss_names_minus_inf_as_such():
    loss = noisy(converging(700), 0.1)
    loss[500:] = -np.inf  # a log of zero probability, a loss that runs away downwards
    (finding,) = [f for f in run_steps(loss) if f.check == "nonfinite-loss"]
    assert finding.message == "The training loss became -Inf at step 500."


# -- loss-divergence -------------------------------------------------------------------------------


def _diverging(n=1500, onset=800, seed=0):
    t = np.arange(n)
    clean = converging(n)
    clean = np.where(t >= onset, clean[onset] * np.exp((t - onset) / 120.0).clip(max=40), clean)
    return noisy(clean, 0.1, seed=seed)


def test_divergence_fires_after_onset():
    found = run_steps(_diverging())
    (f,) = [f for f in found if f.check == "loss-divergence"]
    assert f.severity is Severity.ERROR
    assert 800 < f.step < 1300
    assert f.evidence["ratio"] > 2 and f.evidence["best_step"] < 900


def test_divergence_on_epoch_only_losses():
    rows = [
        {"epoch": e, "train_loss": v}
        for e, v in enumerate([2.3, 1.5, 1.1, 0.9, 0.8, 0.85, 1.4, 2.6, 4.9, 7.5, 9.0, 9.4])
    ]
    found = [f for f in run_epochs(rows) if f.check == "loss-divergence"]
    assert found and found[0].epoch <= 10 and found[0].evidence["best_epoch"] == 4


def test_divergence_from_the_start():
    t = np.arange(400)
    found = run_steps(noisy(2.3 * np.exp(t / 100).clip(max=30), 0.05))
    assert "loss-divergence" in ids(found)


def test_divergence_silent_on_noisy_but_improving_loss():
    rng = np.random.default_rng(3)
    clean = converging(2000, floor=0.3)
    loss = clean * np.exp(rng.normal(0, 0.5, 2000))  # heavy multiplicative noise
    assert "loss-divergence" not in ids(run_steps(loss))


# -- loss-plateau ----------------------------------------------------------------------------------


def test_plateau_fires_at_chance_level():
    loss = noisy(np.full(1500, math.log(10)), 0.05)
    found = run_steps(loss, info=RunInfo(task="classification", num_classes=10, total_steps=1500))
    (f,) = [f for f in found if f.check == "loss-plateau"]
    assert f.severity is Severity.WARNING and "chance" in f.message
    assert f.step < 1500  # judged during the run, not only at its end


def test_plateau_after_bad_init_drop_to_chance():
    t = np.arange(1500)
    clean = math.log(10) + 12 * np.exp(-t / 40)
    found = run_steps(noisy(clean, 0.05), info=RunInfo(task="classification", num_classes=10))
    assert "loss-plateau" in ids(found)


def test_plateau_on_epoch_only_losses():
    rows = [{"epoch": e, "train_loss": 0.69 * (1 + 0.01 * math.sin(e))} for e in range(12)]
    assert "loss-plateau" in ids(run_epochs(rows))


def test_plateau_silent_when_validation_still_improves():
    rows = [{"epoch": e, "train_loss": 1.0 + 0.005 * math.sin(e), "val_loss": 1.5 - 0.05 * e} for e in range(12)]
    assert "loss-plateau" not in ids(run_epochs(rows))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plateau_silent_on_a_slow_steady_fall(seed):
    """A loss that falls 3.5% in its first epoch, then steadily by 0.6% an epoch (beyond its
    noise) is learning slowly, not stalled (held-out-5: a Keras run called a plateau at epoch 7
    that fell another 7.8% by epoch 19); the same run whose fall has stopped is still a plateau."""
    rng = np.random.default_rng(seed)
    n_ep = 25
    info = RunInfo(max_epochs=n_ep)  # judged during the run, from a quarter of it on
    slow = [0.606 * (1.0 if e == 0 else 0.965 * 0.994**e) * (1 + 0.0005 * rng.standard_normal()) for e in range(n_ep)]
    assert "loss-plateau" not in ids(run_epochs([{"epoch": e, "train_loss": v} for e, v in enumerate(slow)], info))
    stalled = [v if e < 4 else slow[3] * (1 + 0.0005 * rng.standard_normal()) for e, v in enumerate(slow)]
    assert "loss-plateau" in ids(run_epochs([{"epoch": e, "train_loss": v} for e, v in enumerate(stalled)], info))
    # a fall beyond the noise but too slow to matter (0.05% an epoch) is still a stall
    creeping = [
        0.606 * (1.0 if e == 0 else 0.965 * 0.9995**e) * (1 + 0.0005 * rng.standard_normal()) for e in range(n_ep)
    ]
    assert "loss-plateau" in ids(run_epochs([{"epoch": e, "train_loss": v} for e, v in enumerate(creeping)], info))


def test_plateau_waits_for_warmup():
    n = 1000
    lr = np.arange(n) / n * 1e-3  # a long warmup, still ramping up
    loss = noisy(np.full(n, 2.3), 0.02)  # flat while the learning rate is still tiny
    m = monitor(RunInfo(total_steps=1200))
    for i in range(n):
        m.log_step(i, loss=float(loss[i]), lr=float(lr[i]))
    assert "loss-plateau" not in ids(m.findings)


# -- train-val-gap ---------------------------------------------------------------------------------


def _overfitting(n_ep=30, best=12, seed=0, rise=0.04):
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_ep):
        train = 0.05 + 2.2 * math.exp(-(e + 1) / 4)
        val = 0.35 + 2.0 * math.exp(-(e + 1) / 4) + rise * max(0, e - best)
        rows.append({"epoch": e, "train_loss": train, "val_loss": val * (1 + 0.01 * rng.standard_normal())})
    return rows


def test_train_val_gap_reports_best_epoch():
    (f,) = [f for f in run_epochs(_overfitting()) if f.check == "train-val-gap"]
    assert f.severity is Severity.WARNING
    assert abs(f.evidence["best_epoch"] - 12) <= 2
    assert f.epoch <= 20  # found within a few epochs of the turn
    assert "epoch" in f.hint


@pytest.mark.parametrize("spike", [False, True])
def test_train_val_gap_names_the_best_epochs_own_loss_beside_the_best_level(spike):
    """The best level the rise is measured from (a median or a stretch's mean) is not the best
    epoch's loss: the message names both, so its numbers are true (held-out-5: "its best 1.894"
    where that epoch's loss was 1.626)."""
    rows = _overfitting()
    if spike:
        rows[12]["val_loss"] *= 0.8  # one lucky low epoch: the level and the epoch's loss differ
    (f,) = [f for f in run_epochs(rows) if f.check == "train-val-gap"]
    at_best = next(r["val_loss"] for r in rows if r["epoch"] == f.evidence["best_epoch"])
    assert f.evidence["val_loss_at_best"] == pytest.approx(at_best, rel=1e-3)
    assert f"whose own loss was {at_best:.4g}" in f.message
    assert f"best level {f.evidence['best_val_loss']:.4g}" in f.message


def _swinging(seed, n=30, best=10, rise=0.6, swing=0.12):
    """A validation loss that bottoms out at epoch `best` and climbs by `rise` of its level by the
    end, through epoch-to-epoch swings of `swing` (log scale: 12% is a typical step of 10-17%, as
    held-out-8's missed runs swing 7-56%), while the training loss falls."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n):
        train = 0.1 + 1.5 * math.exp(-(e + 1) / 6)
        val = (0.5 + 1.0 * math.exp(-(e + 1) / 3)) * (1 + rise * max(0, e - best) / (n - best))
        rows.append({"epoch": e, "train_loss": train, "val_loss": val * math.exp(swing * rng.standard_normal())})
    return rows


def test_train_val_gap_sees_a_lasting_rise_through_large_epoch_swings():
    """The stretch test compares two means of `patience` epochs, whose difference has sqrt(2 / p) x
    one epoch's noise, and takes a rise by ranks (Mann-Kendall) where the fitted line's error is
    widened by a few wild epochs (benchmarks/reallogs held-out-8: 10sajan10's air temperature run,
    validation 0.157 -> 0.220 in 7 epochs while training fell 0.146 -> 0.090, was silent; fa21)."""
    val = [0.2102, 0.1725, 0.1634, 0.1603, 0.1679, 0.1786, 0.1566, 0.1845, 0.1760, 0.1824, 0.1987, 0.1830]
    val += [0.2047, 0.2196]
    train = [0.2662, 0.1872, 0.1734, 0.1652, 0.1573, 0.1520, 0.1453, 0.1377, 0.1309, 0.1224, 0.1161, 0.0993]
    train += [0.0936, 0.0899]
    rows = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(zip(train, val))]
    assert "train-val-gap" in ids(run_epochs(rows))
    # a 60% rise through 12% swings: 17 of 20 seeds (12 before the change)
    caught = [s for s in range(20) if "train-val-gap" in ids(run_epochs(_swinging(s)))]
    assert len(caught) >= 16


def test_train_val_gap_silent_on_a_two_epoch_spike_that_recovers():
    """Each of the last `patience` epochs must lie above the best level by the noise of the
    compared means, not only the mean of them: a spike of two epochs in three carries the mean
    alone (benchmarks/reallogs held-out-9 `bflameswif-icpr-version-0`, its first 75 epochs as
    logged: validation 0.0475, 0.133, 0.230 at 67-69 against a level of 0.0416, back to 0.043 at
    70, its minimum 0.0395 at 93; a WARNING at 69 before, a healthy run by the corpus's rule 5)."""
    log = Path(__file__).parents[2] / "benchmarks/reallogs/runs/bflameswif-icpr-version-0.csv"
    logged = [line.split(",") for line in log.read_text().splitlines()[1:76]]
    rows = [{"epoch": int(e), "train_loss": float(t), "val_loss": float(v)} for e, t, v in logged]
    assert "train-val-gap" not in ids(run_epochs(rows))
    # the same epochs with a rise that lasts from 67 (each epoch well above the level) still warn
    for k, row in enumerate(rows[66:]):
        row["val_loss"] = 0.048 + 0.006 * k
    assert "train-val-gap" in ids(run_epochs(rows))


@pytest.mark.parametrize("seed", range(30))
def test_train_val_gap_silent_on_a_converged_validation_loss_with_large_swings(seed):
    # a validation loss noisy by 15% that flattens: the looser bar must not turn its noise into a
    # rise (seed 35 is flagged, before this change as after: left, reported on branch fa21)
    assert not ids(run_epochs(_epoch_rows(n_ep=40, val_noise=0.15, seed=seed)))


def test_train_val_gap_silent_on_one_epoch_uptick():
    rows = _epoch_rows(n_ep=20, val_noise=0.0)
    rows[12]["val_loss"] *= 1.5  # one bad epoch (UMLAUT's rule fires on this)
    assert "train-val-gap" not in ids(run_epochs(rows))


def test_train_val_gap_silent_without_validation_and_on_divergence():
    assert not ids(run_epochs(_epoch_rows(val=False)))
    rows = _overfitting()
    for row in rows[14:]:
        row["train_loss"] = 3.0  # training loss went up too: not overfitting
    assert "train-val-gap" not in ids(run_epochs(rows))


# Five-epoch runs as tutorials print them (validation best at epoch 1 or 2, then worse): too
# short for the noise estimate of the main rule, judged by shape (benchmarks/reallogs held-out-2).
_SHORT_TRAIN = [0.30, 0.15, 0.12, 0.11, 0.07]


@pytest.mark.parametrize(
    "val, best",
    [([0.54, 0.60, 0.64, 0.71, 0.78], 0), ([0.44, 0.426, 0.4287, 0.466, 0.63], 1)],
)
def test_train_val_gap_judges_five_epoch_runs_by_shape(val, best):
    rows = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(zip(_SHORT_TRAIN, val))]
    (f,) = [f for f in run_epochs(rows) if f.check == "train-val-gap"]
    assert f.severity is Severity.WARNING
    assert f.evidence["best_epoch"] == best
    assert f.epoch == best + 3  # three rising epochs after the best: Keras EarlyStopping(3)'s lag
    assert "val_noise" not in f.evidence  # too short to measure it; the finding does not pretend


@pytest.mark.parametrize(
    "val",
    [
        [0.54, 0.60, 0.58, 0.63, 0.66],  # rises, but one epoch came back down: could be noise
        [0.54, 0.55, 0.56, 0.57, 0.58],  # rises every epoch, by 6% in all: below 10%
        [0.60, 0.55, 0.52, 0.50, 0.49],  # healthy
    ],
)
def test_train_val_gap_silent_on_short_runs_without_a_lasting_rise(val):
    rows = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(zip(_SHORT_TRAIN, val))]
    assert "train-val-gap" not in ids(run_epochs(rows), Severity.INFO)


@pytest.mark.parametrize(("max_epochs", "at_epoch"), [(None, 3), (5, 3), (12, 4)])
def test_train_val_gap_short_rule_waits_while_the_run_can_still_measure_its_noise(max_epochs, at_epoch):
    """Three rises in a row in the first epochs of a run configured for 12 epochs are judged once
    the noise is measurable; a run that ends there (stopped early, or cut short) is judged by shape
    at its end. A run configured for 5 epochs, or of unknown length, is judged by shape at once.
    (The training loss falls by a third, not by half: a validation loss never better than its
    first while the training loss halves is told at once, `test_fold19_b_...` below.)"""
    val = [0.54, 0.60, 0.64, 0.71, 0.78]
    train = [0.30, 0.25, 0.22, 0.20, 0.18]
    rows = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(zip(train, val))]
    m = monitor(RunInfo(max_epochs=max_epochs))
    for row in rows[:4]:
        m.log_epoch(**row)
    during = [f.epoch for f in m.findings if f.check == "train-val-gap"]
    m.log_epoch(**rows[4])
    m.close()
    (f,) = [f for f in m.findings if f.check == "train-val-gap"]
    assert f.severity is Severity.WARNING and f.evidence["best_epoch"] == 0
    assert during == ([] if max_epochs == 12 else [3])
    assert f.epoch == at_epoch


# fold19 (issue 12): real runs the short-run rule missed because one epoch fell among the rises
# (benchmarks/reallogs held-out-2's tensorflow-deep-learning 08 c99, held-out-5's panstenos sarcasm)
# (training loss, validation loss, the epoch told where the run is known to be 5 epochs long and
# where its length is unknown: c99's fifth epoch falls again, two falls, so only the known length
# tells it, at its fourth)
_ONE_FALL = {
    "c99": ([0.2995, 0.1516, 0.1192, 0.1113, 0.0735], [0.5397, 0.6465, 0.6384, 0.8098, 0.7787], 3, None),
    "sarcasm": ([0.2754, 0.1176, 0.05176, 0.03156, 0.0215], [0.1913, 0.195, 0.2774, 0.2676, 0.2853], 4, 4),
}


@pytest.mark.parametrize("run", sorted(_ONE_FALL))
@pytest.mark.parametrize("max_epochs", [5, None])
def test_fold19_a_short_run_whose_rise_one_epoch_interrupts_is_still_judged(run, max_epochs):
    """A 5-epoch run whose validation loss rose from its first epoch with one small fall on the way:
    each of the last 3 lies above the lowest by more than 3 x the noise that fall shows, 10% above
    it on average. Told where the run is known to be 5 epochs long, or at its end where its length
    is unknown; the training loss fell meanwhile."""
    train, val, at, at_unknown = _ONE_FALL[run]
    rows = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(zip(train, val))]
    found = [f for f in run_epochs(rows, RunInfo(max_epochs=max_epochs)) if f.check == "train-val-gap"]
    expected = at if max_epochs else at_unknown
    if expected is None:
        assert found == []
        return
    (f,) = found
    assert f.severity is Severity.WARNING and f.evidence["best_epoch"] == 0
    assert f.epoch == expected


@pytest.mark.parametrize(
    "val",
    [
        [0.60, 0.45, 1.20, 0.95, 0.70, 0.52, 0.46],  # a warm-up spike of 2.7x that falls back
        [0.50, 1.40, 0.90, 1.10, 0.80, 0.70, 0.62],  # a spike at the first step up, one jump back
        [0.50, 0.42, 0.40, 0.41, 0.39, 0.415, 0.40],  # a noisy plateau at convergence
        [0.50, 0.45, 0.44, 0.47, 0.45, 0.48, 0.49],  # noise around the lowest: rises as small as the fall
    ],
)
def test_fold19_a_short_runs_one_fall_does_not_make_noise_a_rise(val):
    """Healthy 7-epoch twins of the shape above: a fall allowed among the rises does not let a spike
    that is coming back down, or a noisy level, pass for a lasting rise."""
    train = [0.9 * 0.7**e for e in range(7)]  # training loss halves twice: only the validation decides
    rows = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(zip(train, val))]
    assert "train-val-gap" not in ids(run_epochs(rows, RunInfo(max_epochs=7)), Severity.INFO)


# held-out-7's dewey-wang HEVisum fold 2: an 11-epoch regression whose validation loss is lowest
# at its first validation and never comes back, too noisy later for the stretch test
_FOLD2_TRAIN = [105.9, 65.58, 52.54, 48.74, 47.15, 45.83, 45.18, 43.32, 42.13, 41.34, 39.91]
_FOLD2_VAL = [58.4, 73.32, 89.42, 113.3, 70.6, 122.9, 103.0, 114.2, 86.16, 168.2, 122.0]


@pytest.mark.parametrize("max_epochs", [11, None])
def test_fold19_b_a_validation_loss_never_better_than_its_first_while_training_halves(max_epochs):
    rows = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(zip(_FOLD2_TRAIN, _FOLD2_VAL))]
    (f,) = [f for f in run_epochs(rows, RunInfo(max_epochs=max_epochs)) if f.check == "train-val-gap"]
    assert f.severity is Severity.WARNING
    assert (f.evidence["best_epoch"], f.epoch) == (0, 3)  # three rises after the first validation
    assert f.evidence["train_loss"] / f.evidence["train_loss_at_best"] <= 0.5


@pytest.mark.parametrize(
    "shape", ["train-falls-a-third", "improved-before-rising", "spike-that-comes-back", "rise-5pct"]
)
def test_fold19_b_twins_are_not_overfitting_at_their_fourth_epoch(shape):
    """Twins of the shape above that are not it, in a 12-epoch run: the training loss fell by a
    third only; the validation loss improved after its first epoch before its three rises (a small
    validation set does that by chance, tests/integrations/test_small_validation_set.py); a warm-up
    spike of 3x that comes back, where the run logs its rate (a warm-up to 10x) and an accuracy that
    fell below its first epoch's (without the rate the first four epochs are (b)'s shape, and told at
    the fourth, where main said nothing: the raised rate is what tells a spike from memorisation); a
    rise of 5% while the validation accuracy still climbs."""
    train = [1.0 * 0.6**e for e in range(12)]
    val = [0.50, 0.55, 0.60, 0.66, 0.52, 0.48, 0.46, 0.45, 0.44, 0.44, 0.43, 0.43]
    acc = None
    if shape == "train-falls-a-third":
        train = [1.0 - 0.03 * e for e in range(12)]
    elif shape == "improved-before-rising":
        val = [0.60, 0.50, 0.55, 0.60, 0.66, 0.52, 0.48, 0.46, 0.45, 0.44, 0.44, 0.43]
    elif shape == "spike-that-comes-back":
        val = [0.50, 0.80, 1.20, 1.50, 0.90, 0.55, 0.47, 0.45, 0.44, 0.44, 0.43, 0.43]
        acc = [0.80, 0.70, 0.55, 0.45, 0.70, 0.82, 0.85, 0.86, 0.87, 0.87, 0.88, 0.88]
        m = monitor(RunInfo(max_epochs=12))
        for e, v in enumerate(val):
            steps = np.arange(e * _CYCLE_STEPS, (e + 1) * _CYCLE_STEPS)
            lr = [0.01 + 0.03 * min(x, 3.0) * 0.7 ** max(0.0, x - 3.0) for x in (steps / _CYCLE_STEPS).tolist()]
            m.log_steps(steps, loss=np.full(_CYCLE_STEPS, 0.6**e), lr=lr, epoch=e)
            m.log_epoch(e, step=int(steps[-1]), train_loss=0.6**e, val_loss=v, val_metrics={"accuracy": acc[e]})
        m.close()
        assert "train-val-gap" not in ids(m.findings)
        return
    else:
        val = [0.50, 0.51, 0.515, 0.525, 0.52, 0.52, 0.525, 0.52, 0.525, 0.525, 0.52, 0.525]
        acc = [0.80 + 0.01 * e for e in range(12)]
    rows = [
        {"epoch": e, "train_loss": t, "val_loss": v, **({"val_metrics": {"accuracy": acc[e]}} if acc else {})}
        for e, (t, v) in enumerate(zip(train, val))
    ]
    m = monitor(RunInfo(max_epochs=12))
    for row in rows[:4]:  # the first four epochs of the 12, live: the shape test waits for the noise
        m.log_epoch(**row)
    assert [f for f in m.findings if f.check == "train-val-gap"] == []


def test_train_val_gap_short_rule_needs_the_training_loss_to_fall():
    rows = [{"epoch": e, "train_loss": 0.3, "val_loss": v} for e, v in enumerate([0.54, 0.60, 0.64, 0.71, 0.78])]
    assert "train-val-gap" not in ids(run_epochs(rows), Severity.INFO)


def test_train_val_gap_uses_step_losses_when_no_epoch_train_loss():
    per = 20
    m = monitor()
    for row in _overfitting():
        e = row["epoch"]
        for i in range(e * per, (e + 1) * per):
            m.log_step(i, loss=row["train_loss"])
        m.log_epoch(e, step=(e + 1) * per - 1, val_loss=row["val_loss"])
    m.close()
    assert "train-val-gap" in ids(m.findings)


def _clean_turn(accuracy: str | None = "falls", seed: int = 0, val_samples: int | None = None) -> list[dict]:
    """A smooth validation curve that turns up after epoch 6 by 2-8% an epoch (the shape of the
    IMDB and newswire runs of benchmarks/reallogs), with little noise; the validation accuracy,
    when logged, falls by 0.2 points an epoch after the turn or keeps climbing, counted
    over `val_samples` validation samples when given (k / n, as Lightning and Keras log it)."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(20):
        val = 0.28 + 0.2 * math.exp(-e / 1.5) + 0.012 * max(0, e - 6) ** 1.2
        row = {
            "epoch": e,
            "train_loss": 0.05 + 0.5 * math.exp(-e / 4),
            "val_loss": val * (1 + 0.003 * rng.standard_normal()),
        }
        if accuracy is not None:
            drift = -0.002 if accuracy == "falls" else 0.002
            acc = min(0.89, 0.8 + 0.03 * e) + drift * max(0, e - 6) + 0.0005 * rng.standard_normal()
            row["val_metrics"] = {"accuracy": acc if val_samples is None else round(acc * val_samples) / val_samples}
        rows.append(row)
    return rows


def test_train_val_gap_calls_a_clean_turn_within_three_epochs():
    """The early test: two epochs above the best by more than 5% and 3x the scatter around the
    turn. The stretch test alone waited for a fourth or fifth epoch. An accuracy that falls by
    0.2 points an epoch on a large validation set (more than its noise, 20 samples of 10,000)
    confirms the turn: a WARNING as early as without an accuracy (until 2026-12-03 a fall had to
    pass 3x the noise and a whole point, and this was INFO). It is not fooled by an accuracy that
    still climbs, nor by a lucky low epoch on a noisy plateau."""
    for accuracy in ("falls", None):
        found = [f for f in run_epochs(_clean_turn(accuracy, val_samples=10_000)) if f.check == "train-val-gap"]
        assert [(f.severity, f.evidence["best_epoch"], f.epoch) for f in found] == [(Severity.WARNING, 6, 9)]
    # the same rise with an accuracy still climbing: over-confidence, not yet a warning
    found = [f for f in run_epochs(_clean_turn("climbs")) if f.check == "train-val-gap"]
    assert found[0].epoch > 6 + 3 or found[0].severity is Severity.INFO
    # curves_eval's val-flattens shape (seed 2): a plateau with 2-3% noise whose lowest epoch is
    # a lucky one; two epochs 5% above it are noise, not a turn
    val = [1.97, 1.978, 1.963, 1.954, 1.961, 1.954, 1.943, 1.969, 2.043, 1.923, 1.92, 1.939, 1.91, 1.986, 1.951]
    val += [1.922, 1.893, 1.886, 2.035, 1.937, 1.878, 1.896, 1.948, 1.995, 2.014, 1.917, 2.058]
    rows = [{"epoch": e, "train_loss": 2.2 - 0.012 * e, "val_loss": v} for e, v in enumerate(val)]
    assert "train-val-gap" not in ids(run_epochs(rows))


def test_train_val_gap_early_warning_needs_the_accuracy_to_fall_by_more_than_two_samples():
    """On a small validation set a converged accuracy moves by a sample or two from epoch to
    epoch: one sample of 114 (0.9 points) below its value at the best epoch, more than the
    accuracy's noise from second differences, does not confirm the turn (the fault suite's
    clean_early_converging at seed 1: INFO, as before); three samples below does."""
    for lost, expected in ((1, Severity.INFO), (3, Severity.WARNING)):
        rows = _clean_turn(None)
        for row in rows:
            e = row["epoch"]
            correct = min(101, 91 + 4 * e) if e <= 6 else 101 - lost
            row["val_metrics"] = {"accuracy": correct / 114}
        found = [f for f in run_epochs(rows) if f.check == "train-val-gap"]
        assert (found[0].severity, found[0].epoch) == (expected, 9)


def _converged(e: int, rng: np.random.Generator) -> tuple[float, float]:
    """Training and validation loss of a run that converged by epoch 8 (validation noise 2%)."""
    train = 0.05 + 0.6 * math.exp(-e / 3)
    val = (0.25 + 0.5 * math.exp(-e / 2)) * (1 + 0.02 * rng.standard_normal())
    return train, val


@pytest.mark.parametrize("shape", ["noisy-plateau", "rise-5pct-accuracy-climbs", "cosine-restarts"])
def test_train_val_gap_silent_on_healthy_short_curves(shape):
    """Healthy shapes that must not be called overfitting (issue 12), on short runs of 12-18
    epochs where the early test is what judges them: a noisy plateau at convergence whose
    accuracy jitters by a sample or two; a validation loss 5% above its best for the last
    epochs while the validation accuracy keeps climbing (over-confidence, the decisions still
    improve); cosine restarts, where the loss jumps at each restart and comes back down."""
    rng = np.random.default_rng(3)
    rows = []
    for e in range(18 if shape == "cosine-restarts" else 12):
        train, val = _converged(e, rng)
        acc = min(0.9, 0.7 + 0.04 * e)
        if shape == "noisy-plateau":
            acc += rng.integers(-2, 3) / 500  # a sample or two of 500
        elif shape == "rise-5pct-accuracy-climbs":
            val = (0.25 + 0.5 * math.exp(-e / 2)) * (1.0 + 0.05 * min(1.0, max(0, e - 7) / 2))
            acc = 0.8 + 0.01 * e
        else:  # SGDR, restarts every 6 epochs: the loss jumps by 15% and falls back within it
            phase = e % 6
            train *= 1 + 0.15 * (phase == 0 and e > 0)
            val *= 1 + 0.15 * math.cos(math.pi * phase / 6) ** 2 * (e >= 6)
        rows.append({"epoch": e, "train_loss": train, "val_loss": val, "val_metrics": {"accuracy": acc}})
    assert "train-val-gap" not in ids(run_epochs(rows))


def test_train_val_gap_early_on_a_real_run():
    # handson-ml3 ch. 10 (benchmarks/reallogs dev half, cell 110): validation loss lowest at
    # epoch 7 (0-based 6), then 0.86, 2.69: called at 0-based epoch 8, where EarlyStopping(3)
    # and the stretch test waited for epoch 9
    train = [1.349, 0.5101, 0.4618, 0.4252, 0.4106, 0.3944, 0.3837, 0.3731, 0.3672, 0.3652]
    val = [1.5415, 1.3624, 0.5361, 0.5182, 0.4049, 0.4168, 0.3661, 0.8555, 2.6877, 3.6017]
    rows = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(zip(train, val))]
    (f,) = [f for f in run_epochs(rows) if f.check == "train-val-gap"]
    assert f.severity is Severity.WARNING
    assert (f.evidence["best_epoch"], f.epoch) == (6, 8)


def test_train_val_gap_warns_when_the_accuracy_falls_steadily_since_the_best():
    """Chollet's IMDB baseline (benchmarks/reallogs held-out, deep-learning-with-python 4.4, cell 9):
    validation loss lowest at 0-based epoch 2, then three rises (the short-run rule passes at epoch
    5), accuracy 0.8879 there, then 0.8851, 0.8812, 0.8748. The last three average 0.880, within
    one point (`metric_tolerance`) of the best three (0.887): INFO at epoch 5, WARNING at 6 until
    2026-12-03. Four epochs that fall in a line since the best, by more than 3 standard errors,
    confirm the turn one epoch earlier."""
    train = [0.4594, 0.2659, 0.206, 0.1697, 0.1495, 0.1283, 0.1121, 0.0994]
    val = [0.3429, 0.2873, 0.2827, 0.2921, 0.31, 0.3336, 0.3987, 0.3788]
    acc = [0.8812, 0.8905, 0.8879, 0.8851, 0.8812, 0.8748, 0.8593, 0.8702]
    rows = [
        {"epoch": e, "train_loss": t, "val_loss": v, "val_metrics": {"accuracy": a}}
        for e, (t, v, a) in enumerate(zip(train, val, acc))
    ]
    found = [f for f in run_epochs(rows) if f.check == "train-val-gap"]
    assert (found[0].severity, found[0].evidence["best_epoch"], found[0].epoch) == (Severity.WARNING, 2, 5)


@pytest.mark.parametrize("accuracy", ["jitters", "climbs"])
def test_train_val_gap_info_while_the_accuracy_has_no_falling_trend(accuracy):
    """Over-confidence stays INFO: the validation loss rises 2% an epoch, up to 14% above its best (under
    `info_max_rise`) while the accuracy jitters by a sample or two of 500 around its best, or keeps
    climbing; neither falls in a line since the best epoch, so the trend does not confirm the turn."""
    rng = np.random.default_rng(5)
    rows = []
    for e in range(16):
        train, _ = _converged(e, rng)
        val = (0.25 + 0.5 * math.exp(-e / 2)) * (1.0 + 0.02 * max(0, e - 8))
        acc = min(0.9, 0.7 + 0.04 * e)
        if accuracy == "jitters":
            acc += rng.integers(-2, 3) / 500
        else:
            acc = 0.8 + 0.01 * e
        rows.append({"epoch": e, "train_loss": train, "val_loss": val, "val_metrics": {"accuracy": acc}})
    found = [f for f in run_epochs(rows) if f.check == "train-val-gap"]
    assert found and {f.severity for f in found} == {Severity.INFO}


# -- suspicious-val --------------------------------------------------------------------------------


def test_suspicious_val_loss_far_below_train():
    rows = [{"epoch": e, "train_loss": 1.2 + 1.1 * math.exp(-e), "val_loss": 0.05} for e in range(8)]
    (f,) = [f for f in run_epochs(rows) if f.check == "suspicious-val"]
    assert f.severity is Severity.WARNING and f.evidence["ratio"] < 0.1


def test_suspicious_val_near_perfect_accuracy():
    rows = [
        {
            "epoch": e,
            "train_loss": 1.0,
            "val_loss": 0.8,
            "train_metrics": {"acc": 0.62 + 0.01 * e},
            "val_metrics": {"acc": 0.998},
        }
        for e in range(6)
    ]
    found = [f for f in run_epochs(rows) if f.check == "suspicious-val"]
    assert found and "acc" in found[0].message


@pytest.mark.parametrize("patience,skip", [(3, 1), (1, 0), (2, 0)])
def test_suspicious_val_reads_no_curve_before_it_holds_patience_validations(patience, skip, monkeypatch):
    # while fewer validation losses (or scores) than `patience` were logged, no epoch can hold
    # the `patience` validations the judgement needs: nothing is read; the finding comes at
    # the same epoch with the same evidence, a non-finite validation loss not counted
    from mlcheck.series import Series

    check = get_check("suspicious-val")(patience=patience, skip_epochs=skip)
    m = Monitor(checks=[check], warn=False, strict=True)
    reads = []
    buckets = Series.buckets

    def counted(self, include_open=False):
        reads.append(self)
        return buckets(self, include_open)

    monkeypatch.setattr(Series, "buckets", counted)
    rows = [
        {
            "epoch": e,
            "train_loss": 1.2 + 1.1 * math.exp(-e),
            "val_loss": math.nan if e == 1 else 0.05,
            "train_metrics": {"acc": 0.6},
            "val_metrics": {"acc": math.nan if e == 1 else 0.999},
        }
        for e in range(8)
    ]
    for row in rows:
        before = m.run.val_loss.finite_count
        m.log_epoch(**row)
        if before + (row["epoch"] != 1) < patience:
            assert reads == [], row["epoch"]
        reads.clear()
    m.close()
    (f,) = [f for f in m.findings if f.check == "suspicious-val"]
    first = [0, *range(2, 8)][skip + patience - 1]  # epoch 1's validation loss is NaN
    assert f.epoch == first and f.evidence["epochs"] == [0, *range(2, 8)][skip : skip + patience]
    assert f.evidence["val_loss"] == 0.05


def test_suspicious_val_silent_on_easy_data_and_dropout():
    easy = [
        {
            "epoch": e,
            "train_loss": 0.69 * math.exp(-2 * (e + 1)) + 1e-4,
            "val_loss": 0.1 * 0.69 * math.exp(-2 * (e + 1)),
            "train_metrics": {"accuracy": 1.0 - 0.2 * math.exp(-3 * e)},
            "val_metrics": {"accuracy": 1.0},
        }
        for e in range(15)
    ]
    assert "suspicious-val" not in ids(run_epochs(easy))
    dropout = [
        {"epoch": e, "train_loss": 0.5 + math.exp(-e), "val_loss": 0.7 * (0.5 + math.exp(-e))} for e in range(15)
    ]
    assert "suspicious-val" not in ids(run_epochs(dropout))


# -- lr-too-high / lr-too-low ----------------------------------------------------------------------


def test_lr_too_high_from_update_ratio():
    n = 600
    loss = noisy(np.full(n, 2.2), 0.3)
    ratio = np.full(n, np.nan)
    ratio[::10] = 10 ** np.random.default_rng(0).normal(-0.5, 0.2, n)[::10]
    (f,) = [f for f in run_steps(loss, ratio=ratio) if f.check == "lr-too-high"]
    assert f.severity is Severity.WARNING and f.evidence["log10_update_ratio"] > -1


def test_lr_too_high_from_loss_spikes():
    n = 1500
    rng = np.random.default_rng(1)
    loss = noisy(np.full(n, 1.8), 0.05)
    for i in rng.integers(0, n, 40):
        loss[i : i + 2] *= 4
    assert "lr-too-high" in ids(run_steps(loss))


def test_lr_checks_silent_on_healthy_adam_ratio():
    n = 800
    ratio = np.full(n, np.nan)
    ratio[::5] = 10 ** np.linspace(-1.6, -3.0, n)[::5]  # Adam at lr 3e-3: large early, then small
    found = run_steps(noisy(converging(n), 0.1), ratio=ratio)
    assert not ids(found) & {"lr-too-high", "lr-too-low"}


def test_lr_too_low_from_update_ratio():
    n = 500
    ratio = np.full(n, np.nan)
    ratio[::10] = 10**-6.5
    loss = noisy(2.3 - 0.02 * np.arange(n) / n, 0.02)
    assert "lr-too-low" in ids(run_steps(loss, ratio=ratio))


def test_lr_too_low_from_slow_steady_decline():
    n = 2000
    loss = noisy(2.3 * (1 - 0.12 * np.arange(n) / n), 0.03)
    for vectorised in (False, True):
        (f,) = [f for f in run_steps(loss, vectorised=vectorised) if f.check == "lr-too-low"]
        assert f.evidence["fraction_fallen"] < 0.2


def test_lr_too_low_not_blamed_for_memorised_labels():
    """The training loss falls slowly and steadily while the validation loss does not fall:
    the model memorises its labels (shuffled ones here), which no learning rate cures; with the
    validation loss falling alongside, the slow fall is the rate's."""
    n, epochs = 2000, 10
    loss = noisy(2.3 * (1 - 0.12 * np.arange(n) / n), 0.03)
    rng = np.random.default_rng(1)
    flat = 2.32 + 0.004 * np.arange(epochs) + rng.normal(0, 0.005, epochs)  # rises, as memorising does
    falling = 2.3 * (1 - 0.1 * np.arange(epochs) / epochs) + rng.normal(0, 0.005, epochs)
    for val, blamed in ((flat, False), (falling, True)):
        rows = [dict(epoch=e, step=(e + 1) * n // epochs - 1, val_loss=float(val[e])) for e in range(epochs)]
        assert ("lr-too-low" in ids(run_steps(loss, epochs=rows))) is blamed


def test_lr_too_low_silent_when_converged_with_tiny_updates():
    n = 1000
    ratio = np.full(n, np.nan)
    ratio[::10] = 10 ** np.linspace(-3, -6, n)[::10]  # SGD near a minimum: tiny gradients
    assert "lr-too-low" not in ids(run_steps(noisy(converging(n), 0.05), ratio=ratio))


# -- lr-schedule -----------------------------------------------------------------------------------


def test_lr_schedule_decayed_too_early_live():
    n = 2000
    t = np.arange(n)
    lr = np.where(t < 600, 1e-3 * 0.5 * (1 + np.cos(np.pi * t / 600)), 0.0)
    found = run_steps(noisy(converging(n), 0.05), lr=lr, info=RunInfo(total_steps=n, has_scheduler=True))
    (f,) = [f for f in found if f.check == "lr-schedule"]
    assert f.step < 1000 and f.severity is Severity.WARNING


def test_lr_schedule_decayed_too_early_judged_at_end_without_total():
    n = 1000
    lr = 1e-2 * 0.5 ** (np.arange(n) / 30)  # halves every 30 steps: ~0 after 300
    found = run_steps(noisy(converging(n), 0.05), lr=lr, vectorised=True)
    assert [f.check for f in found if f.check == "lr-schedule"] == ["lr-schedule"]


@pytest.mark.parametrize("bad,word", [(0.0, "exactly 0"), (-1e-4, "negative"), (math.nan, "NaN")])
def test_lr_schedule_invalid_values(bad, word):
    n = 300
    lr = np.full(n, 1e-3)
    lr[100:] = bad
    found = [f for f in run_steps(noisy(converging(n), 0.05), lr=lr) if f.check == "lr-schedule"]
    assert found and word in found[0].message


@pytest.mark.parametrize("vectorised", [False, True])
@pytest.mark.parametrize("n,onset", [(300, 100), (300, 0), (4000, 2500)])
def test_lr_schedule_negative_names_the_step_it_began(n, onset, vectorised):
    """The finding sits where the rate went negative, not where it was next judged (up to 32
    values later), and is the only lr-schedule finding: a negative rate did not 'decay'."""
    lr = np.full(n, 1e-3)
    lr[onset:] = -1e-4
    found = [f for f in run_steps(noisy(converging(n), 0.05), lr=lr, vectorised=vectorised) if f.check == "lr-schedule"]
    (f,) = found
    assert "negative" in f.message and f"step {f.step}" in f.message
    assert f.evidence["first_step"] == f.step
    if n < 512:  # the series keeps every value: the exact step
        assert f.step == onset
    else:  # merged buckets: the first one holding a negative value, which ends at or after the onset
        assert 0 <= onset - f.step < n // 128 and f.evidence["by_step"] >= onset


def test_lr_schedule_scheduler_never_stepped():
    n = 400
    found = run_steps(noisy(converging(n), 0.05), lr=np.full(n, 1e-3), info=RunInfo(has_scheduler=True))
    assert any(f.check == "lr-schedule" and "scheduler is configured" in f.message for f in found)
    assert "lr-schedule" not in ids(
        run_steps(noisy(converging(n), 0.05), lr=np.full(n, 1e-3), info=RunInfo(has_scheduler=False))
    )


@pytest.mark.parametrize("vectorised", [False, True])
def test_lr_schedule_judges_live_only_a_rate_that_moved(monkeypatch, vectorised):
    """A rate that never moved (one positive value, no scheduler: the usual run) can be none of
    the live findings (zero, negative, decayed), so its live judgements are skipped; the end of
    the run still judges it once ("constant"), and a rate that moves is judged as before."""
    from mlcheck.checks.learning_rate import LRSchedule

    judged = []
    judge = LRSchedule._judge
    monkeypatch.setattr(LRSchedule, "_judge", lambda self, run, final: judged.append(final) or judge(self, run, final))
    n = 400
    run_steps(noisy(converging(n), 0.05), lr=np.full(n, 1e-3), vectorised=vectorised)
    assert judged == [True]  # on_end alone
    judged.clear()
    moving = np.full(n, 1e-3)
    moving[200:] = 5e-4
    run_steps(noisy(converging(n), 0.05), lr=moving, vectorised=vectorised)
    assert judged.count(False) > 1 and judged[-1] is True


# -- the vectorised path ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["divergence", "plateau", "decayed", "slow", "healthy"])
def test_log_steps_gives_the_same_findings_as_log_step(case):
    n = 3000
    t = np.arange(n)
    lr = np.full(n, 1e-3)
    info = None
    if case == "divergence":
        loss = _diverging(n, onset=1700)
    elif case == "plateau":
        loss = noisy(np.full(n, 0.69), 0.05)
        info = RunInfo(task="classification", num_classes=2)
    elif case == "decayed":
        loss = noisy(converging(n), 0.1)
        lr = np.where(t < 900, 1e-3 * (900 - t) / 900, 0.0)
        info = RunInfo(total_steps=n)
    elif case == "slow":
        loss = noisy(1.0 - 0.1 * t / n, 0.05)
    else:
        loss = noisy(converging(n), 0.3)
    one = run_steps(loss, lr=lr, info=info)
    many = run_steps(loss, lr=lr, info=info, vectorised=True)

    def key(f):
        return (
            f.check,
            f.severity,
            f.step,
            f.epoch,
            f.message,
            {k: v for k, v in f.evidence.items() if not isinstance(v, float)},
        )

    assert [key(f) for f in one] == [key(f) for f in many]
    for a, b in zip(one, many):
        for k, v in a.evidence.items():
            if isinstance(v, float):
                assert b.evidence[k] == pytest.approx(v, rel=1e-3, nan_ok=True)
    assert bool(one) == (case != "healthy")


def test_state_dict_round_trip_keeps_the_initial_loss():
    loss = noisy(converging(600), 0.05)
    m = monitor()
    for i in range(300):
        m.log_step(i, loss=float(loss[i]))
    state = m.state_dict()
    resumed = monitor()
    resumed.load_state_dict(state)
    for a, b in zip(m.checks, resumed.checks):
        assert a.state_dict() == b.state_dict()
    for i in range(300, 600):
        resumed.log_step(i, loss=float(loss[i]))
    resumed.close()
    assert not ids(resumed.findings)


def _blown_up(n=400, level=40.0, seed=0):
    """A 10-class classifier whose loss jumps from ln(10) to ~`level` in its first steps and
    stays there (Adam at 100x its usual rate on digits does this without ever reaching NaN)."""
    loss = np.full(n, level)
    loss[:3] = [math.log(10), 15.0, 30.0]
    return noisy(loss, rel=0.2, seed=seed)


def test_lr_too_high_fires_on_a_loss_far_above_chance():
    info = RunInfo(task="classification", num_classes=10, total_steps=400)
    found = run_steps(loss=_blown_up(), lr=np.full(400, 0.1), info=info)
    assert "lr-too-high" in ids(found)
    assert "lr-too-low" not in ids(found)
    # without knowing the task nothing claims a chance level
    assert "lr-too-high" not in ids(run_steps(loss=_blown_up(), lr=np.full(400, 0.1)))


def test_lr_too_high_by_chance_level_silent_on_healthy_classifier():
    info = RunInfo(task="classification", num_classes=10, total_steps=1500)
    assert "lr-too-high" not in ids(run_steps(loss=noisy(converging()), lr=np.full(1500, 1e-3), info=info))


def test_lr_too_low_not_claimed_after_large_early_updates():
    """Tiny updates after huge ones mean blown-up or saturated weights, not a small rate."""
    n = 600
    loss = noisy(np.full(n, 2.3), rel=0.02)
    ratio = np.full(n, np.nan)
    ratio[::10] = 1e-7
    ratio[0:50:10] = 0.5  # the first measured updates were half the weights
    assert "lr-too-low" not in ids(run_steps(loss=loss, lr=np.full(n, 1.0), ratio=ratio))
    ratio[0:50:10] = 1e-7  # tiny throughout: that is a small rate
    assert "lr-too-low" in ids(run_steps(loss=loss, lr=np.full(n, 1e-7), ratio=ratio))


def test_train_val_gap_is_info_while_validation_accuracy_holds():
    """Validation loss creeping up through over-confidence while accuracy stays at its best is
    worth a look, not a warning; once accuracy drops too, it is a warning."""
    rng = np.random.default_rng(0)
    held = _overfitting()
    for row in held:
        row["val_metrics"] = {"accuracy": min(0.96, 0.5 + 0.05 * row["epoch"]) + 0.002 * rng.standard_normal()}
    found = [f for f in run_epochs(held) if f.check == "train-val-gap"]
    # INFO while the rise is modest; a WARNING once the loss rose by over 15% of its best
    assert [f.severity for f in found] == [Severity.INFO, Severity.WARNING]
    assert "has not dropped" in found[0].message
    # the INFO opens with the rise, not "The model is overfitting" (batch 20's h07 read both)
    assert found[0].message.startswith("Validation loss rose"), found[0].message
    assert found[1].message.startswith("The model is overfitting"), found[1].message
    assert found[1].evidence["val_loss"] > 1.15 * found[1].evidence["best_val_loss"]

    dropping = _overfitting()
    for row in dropping:
        e = row["epoch"]
        row["val_metrics"] = {"accuracy": min(0.96, 0.5 + 0.05 * e) - 0.01 * max(0, e - 12)}
    found = [f for f in run_epochs(dropping) if f.check == "train-val-gap"]
    assert found and found[-1].severity is Severity.WARNING


def test_plateau_silent_on_regression_levelling_off_a_few_percent_below_its_start():
    """A hard regression target (R^2 ~0.2) drops fast in its first steps, then improves slowly
    to a level the data allows: healthy, though only ~5% below the early level."""
    n = 400
    clean = 0.83 + 0.05 * np.exp(-np.arange(n) / 150.0)
    clean[:5] = [1.3, 1.1, 0.95, 0.9, 0.88]
    loss = noisy(clean, rel=0.05)
    info = RunInfo(task="regression", total_steps=n)
    assert "loss-plateau" not in ids(run_steps(loss=loss, lr=np.full(n, 1e-3), info=info))
    flat = noisy(np.full(n, 1.0), rel=0.05)  # a regression that learns nothing still fires
    assert "loss-plateau" in ids(run_steps(loss=flat, lr=np.full(n, 1e-3), info=info))


def test_plateau_after_an_explosion_says_the_rate_is_too_high():
    """A loss that blew up and then sat at the chance level was told to raise the learning
    rate (a new user's Lightning run at lr=1.0); the explosion points the other way."""
    import numpy as np

    from mlcheck import Monitor
    from mlcheck.run import RunInfo

    rng = np.random.default_rng(0)
    for head, expect_high in (([2.3, 40, 150, 60, 10, 3], True), ([2.3, 2.3, 2.3, 2.3, 2.3, 2.3], False)):
        m = Monitor(warn=False, info=RunInfo(task="classification", num_classes=10))
        for step in range(600):
            m.log_step(step, loss=(head[step] if step < 6 else 2.3) + 0.01 * rng.normal(), lr=1.0)
        m.close()
        (f,) = [f for f in m.findings if f.check == "loss-plateau"]
        # after the explosion lr-too-high names the rate first and the plateau points to its fix
        assert ("Fix `lr-too-high` first (Lower the learning rate 10-100x" in f.hint) is expect_high, f.hint
        assert ("raise the learning rate" in f.hint) is not expect_high


# the run's own early stopping (`RunInfo.early_stop`, as the callbacks report it)


def _guarded(keeps_best="EarlyStopping(restore_best_weights=True)", monitor="val_loss", patience=5):
    return RunInfo(early_stop=EarlyStop(monitor=monitor, patience=patience, keeps_best=keeps_best))


def test_train_val_gap_is_info_while_the_runs_early_stopping_keeps_the_best():
    rows = _overfitting(rise=0.02)  # lowest at epoch 12: patience 5 stops the run at epoch 17
    (unguarded,) = [f for f in run_epochs(rows) if f.check == "train-val-gap"]
    found = [f for f in run_epochs(rows[:18], _guarded()) if f.check == "train-val-gap"]
    assert (unguarded.severity, unguarded.epoch) == (Severity.WARNING, 17)  # without it: a WARNING
    assert [(f.severity, f.epoch) for f in found] == [(Severity.INFO, 17)]  # as early, more quietly
    assert found[0].evidence["kept_epoch"] == 12 and "restore_best_weights" in found[0].message


def test_train_val_gap_warns_when_the_run_goes_on_past_its_early_stopping():
    # a run that shows more epochs than the patience allows is not being stopped by it
    found = [f for f in run_epochs(_overfitting(rise=0.02), _guarded()) if f.check == "train-val-gap"]
    assert [(f.severity, f.epoch) for f in found] == [(Severity.INFO, 17), (Severity.WARNING, 18)]


@pytest.mark.parametrize(
    "info",
    [
        _guarded(keeps_best=None),  # stops, but hands over the last epoch's weights
        _guarded(monitor="loss"),  # watches the training loss, which keeps falling
        _guarded(monitor="val_accuracy"),
    ],
    ids=["no-restore", "train-loss", "other-metric"],
)
def test_train_val_gap_warns_when_early_stopping_does_not_protect(info):
    unguarded = [f for f in run_epochs(_overfitting()) if f.check == "train-val-gap"][0]
    (f,) = [f for f in run_epochs(_overfitting(), info) if f.check == "train-val-gap"]
    assert (f.severity, f.epoch) == (Severity.WARNING, unguarded.epoch)
    if info.early_stop.keeps_best is None:
        assert "restore_best_weights=True" in f.hint


def test_train_val_gap_warns_on_a_large_rise_despite_early_stopping():
    rows = _overfitting(rise=0.15)[:20]  # above `info_max_rise` of the best within the patience
    (f,) = [f for f in run_epochs(rows, _guarded(patience=10)) if f.check == "train-val-gap"]
    assert f.severity is Severity.WARNING


def test_early_stop_replays_the_frameworks_rule():
    stop = EarlyStop("val_loss", patience=2, min_delta=0.05)
    assert stop.replay([1.0, 0.9, 0.88, 0.87, 0.8]) == (4, 0)
    assert stop.replay([1.0, 0.9, 0.88, 0.87]) == (1, 2)  # improvements under min_delta do not count
    assert EarlyStop("val_loss", 2, start_from=2).replay([0.1, 0.2, 0.5, 0.6]) == (2, 1)
    assert EarlyStop("val_acc", 2, mode="max").replay([0.5, 0.7, 0.6]) == (1, 1)
    assert stop.replay([1.0, 0.9, 0.95], counts=[1, 1, 3]) == (1, 3)  # merged buckets
    assert all(EarlyStop(m, 3).watches_val_loss for m in ("val_loss", "val/loss", "loss/val", "val_loss_epoch"))
    assert not any(EarlyStop(m, 3).watches_val_loss for m in ("loss", "train_loss", "val_acc", "val_mae"))
    assert not EarlyStop("val_loss", 3, mode="max").watches_val_loss


# A one-cycle run (held-out-5's prithsha version 3: Adam, lr 0.005 -> 0.1 at epoch 11 -> 0.001 over
# 35 epochs): the validation loss spikes while the rate is near its peak and comes back below its
# best as the rate anneals, validation accuracy collapses below its first epoch's and recovers; the
# training loss falls throughout.
_CYCLE_EPOCHS, _CYCLE_STEPS, _CYCLE_PEAK = 35, 20, 11


def _one_cycle_lr(epoch: float) -> float:
    if epoch <= _CYCLE_PEAK:
        return 0.005 + (0.1 - 0.005) * epoch / _CYCLE_PEAK
    return 0.001 + (0.1 - 0.001) * 0.5 * (1 + math.cos(math.pi * (epoch - _CYCLE_PEAK) / (_CYCLE_EPOCHS - _CYCLE_PEAK)))


def _cycle_train(e: int) -> float:
    return 1.9 * math.exp(-e / 12) + 0.3


def _run_with_lr(val, lr_of=None, accuracy=None, train=_cycle_train):
    """Each epoch's steps (training loss and, where `lr_of` is given, the learning rate of each
    step) and then its epoch row (with a validation accuracy where given); the findings after
    close(). Without `lr_of`, a log with no rate."""
    m = monitor()
    for e, v in enumerate(val):
        steps = np.arange(e * _CYCLE_STEPS, (e + 1) * _CYCLE_STEPS)
        lr = None if lr_of is None else [lr_of(s / _CYCLE_STEPS) for s in steps.tolist()]
        m.log_steps(steps, loss=np.full(_CYCLE_STEPS, train(e)), lr=lr, epoch=e)
        metrics = None if accuracy is None else {"accuracy": accuracy[e]}
        m.log_epoch(e, step=int(steps[-1]), train_loss=train(e), val_loss=v, val_metrics=metrics)
    m.close()
    return m.findings


def _spike_at_peak(settle: float = 0.45, epochs: int = _CYCLE_EPOCHS) -> tuple[list[float], list[float]]:
    """(validation loss, accuracy): best at epoch 1, a spike that grows with the rate to its peak,
    then a fall to `settle` x the best epoch's loss as the rate anneals (`settle` above 1: it stays
    up: overfitting). The accuracy falls with the spike below its first epoch's 0.42."""
    rng = np.random.default_rng(3)
    val = []
    for e in range(epochs):
        if e < 2:
            v = (1.9, 1.6)[e]
        elif e <= 16:
            v = 1.6 * (1.15 + 3.0 * math.exp(-(((e - _CYCLE_PEAK) / 3.0) ** 2)))
        else:
            v = 1.6 * (settle + (1.15 - settle) * math.exp(-(e - 16) / 3))
        val.append(v * (1 + 0.03 * rng.standard_normal()))
    return val, [max(0.1, 0.9 - 0.25 * v) for v in val]


def test_train_val_gap_holds_a_spike_while_the_rate_is_raised_and_the_decisions_fell_below_the_first_epochs():
    """held-out-5's prithsha version 3 was warned about as overfitting at epoch 12 of a one-cycle run
    ("rose from its best level 1.894 ... to 5.903"), which ended near its best (0.66 against 1.63): the
    validation loss spiked where the rate peaked, 20x its value at the best epoch, and the validation
    accuracy fell below its first epoch's (0.14 against 0.31). While both hold the verdict waits; once
    the rate falls back, the rise is gone."""
    val, acc = _spike_at_peak()
    assert "train-val-gap" in ids(_run_with_lr(val, accuracy=acc))  # the same curves, no rate logged
    assert "train-val-gap" in ids(_run_with_lr(val, lambda e: 0.01, accuracy=acc))  # a constant rate
    assert "train-val-gap" not in ids(_run_with_lr(val, _one_cycle_lr, accuracy=acc), Severity.INFO)


def test_train_val_gap_under_a_raised_rate_fires_once_the_rate_falls_back_if_the_rise_stays():
    """The fault twin: the same one-cycle run whose validation loss stays 60% above its best after the
    rate anneals is overfitting, told once the rate is back under 1.2x its value at the best epoch."""
    val, acc = _spike_at_peak(settle=1.6)
    (f,) = [f for f in _run_with_lr(val, _one_cycle_lr, accuracy=acc) if f.check == "train-val-gap"]
    assert f.severity is Severity.WARNING
    back = next(e for e in range(_CYCLE_PEAK, _CYCLE_EPOCHS) if _one_cycle_lr(e + 1) <= 1.2 * _one_cycle_lr(2))
    assert back <= f.epoch <= back + 2


def test_train_val_gap_under_a_rate_still_raised_at_the_end_is_info_that_names_it():
    """A run that ends near the rate's peak cannot tell instability from overfitting: INFO that says so."""
    val, acc = _spike_at_peak(epochs=14)
    (f,) = [f for f in _run_with_lr(val, _one_cycle_lr, accuracy=acc) if f.check == "train-val-gap"]
    assert f.severity is Severity.INFO
    assert "learning rate" in f.message and f.evidence["lr"] > 1.2 * f.evidence["lr_at_best"]


@pytest.mark.parametrize("accuracy", [True, False])
def test_train_val_gap_overfitting_during_a_long_warm_up_is_told_as_without_a_rate(accuracy):
    """held-out-5's fabiom91 trainer state: a warm-up over 30 of 300 epochs (lr 1.7e-5 at the best epoch,
    3x that 20 epochs later) during which the model memorised (training loss 0.64 -> 0.04, validation
    loss 0.92 -> 2.5) while its accuracy stayed far above its first epoch's: the raised rate alone does
    not hold the verdict, nor does it without an accuracy to say the decisions fell."""
    rng = np.random.default_rng(5)
    val = [2.0 * math.exp(-e / 3) + 0.9 + 0.08 * max(0, e - 9) for e in range(34)]
    val = [v * (1 + 0.06 * rng.standard_normal()) for v in val]
    acc = [0.003] + [min(0.62, 0.38 + 0.03 * e) for e in range(1, 34)] if accuracy else None

    def train(e):
        return 0.05 + 7.0 * math.exp(-e / 4)

    def warm_up(epoch):
        return 5e-5 * min(1.0, epoch / 30)

    without = [(f.epoch, f.severity) for f in _run_with_lr(val, None, acc, train) if f.check == "train-val-gap"]
    with_rate = [(f.epoch, f.severity) for f in _run_with_lr(val, warm_up, acc, train) if f.check == "train-val-gap"]
    assert without and without[0][1] is Severity.WARNING
    assert with_rate == without


@pytest.mark.parametrize("overfit", [False, True])
def test_yolofa17_train_val_gap_says_when_a_rise_passed_and_tells_a_later_one(overfit):
    """Live, a rise that the run later undoes cannot be known at the time: its WARNING stands, and
    when the validation loss comes back below the best level it named (by the rise's own margin)
    an INFO says the rise passed; the check then judges afresh, so a real rise later in the same
    run is a second WARNING (key `overfit-2`) instead of going unsaid (it was: one finding a run)."""
    rng = np.random.default_rng(1)
    rows = []
    for e in range(120):
        bump = 0.6 * math.sin(math.pi * (e - 19) / 7) if 20 <= e < 26 else 0.0
        val = 2.2 + 2.8 * math.exp(-e / 35) + 0.03 * rng.standard_normal() + bump
        val += 0.02 * (e - 80) if overfit and e >= 80 else 0.0
        train = 2.0 + 4.0 * math.exp(-e / 30) + 0.02 * rng.standard_normal()
        rows.append({"epoch": e, "train_loss": train, "val_loss": val})
    gap = [f for f in run_epochs(rows) if f.check == "train-val-gap"]
    first, passed = gap[0], [f for f in gap if f.key.startswith("overfit-passed")]
    assert first.key == "overfit" and first.severity is Severity.WARNING and first.epoch < 30, gap
    assert passed and passed[0].severity is Severity.INFO and passed[0].evidence["told_at_epoch"] == first.epoch
    later = [f for f in gap if f.key == "overfit-2" and f.severity is Severity.WARNING]
    assert bool(later) == overfit, gap
    if overfit:
        assert later[0].epoch > 80 and later[0].evidence["best_epoch"] > 60
