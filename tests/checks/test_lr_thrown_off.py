"""`lr-too-high` on a rate far too high (Adam at lr=1.0, SGD at 100): the loss explodes by orders
of magnitude within the first steps, the weights are thrown away, and the loss sits at the chance
level ln(C) since; and the healthy shapes that must stay silent (warm-up bumps of 2-3x, an
explosion the run recovers from, a plateau at chance without an explosion)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcheck import Monitor, RunInfo, Severity
from mlcheck.checks.base import get_check

CLASSES = RunInfo(task="classification", num_classes=10)


def _run(loss, info=CLASSES, lr=None, ratio=None, vectorised=False, checks=("lr-too-high",)):
    m = Monitor(checks=[get_check(c)() for c in checks], warn=False, info=info, strict=True)
    if vectorised:
        m.log_steps(np.arange(len(loss)), loss=np.asarray(loss, float))
    else:
        for i, v in enumerate(loss):
            r = None if ratio is None else ratio.get(i)
            m.log_step(i, loss=float(v), lr=lr, update_ratio=r)
    m.close()
    return [f for f in m.findings if f.severity >= Severity.WARNING]


def _noisy(clean, rel=0.03, seed=0):
    rng = np.random.default_rng(seed)
    return clean * np.exp(rel * rng.standard_normal(len(clean)))


def _thrown(n=450, start=2.3, peak=3800.0, settle=2.35, seed=0):
    """The Lightning digits MLP at Adam lr=1.0 (seed 0): 2.31, 3822, 1595, 818, 47, ... then
    2.3-2.5 to the end; a decay of the explosion over ~30 steps."""
    t = np.arange(n, dtype=float)
    loss = settle + (peak - settle) * np.exp(-(t - 1) / 4.0)
    loss = _noisy(loss, seed=seed)
    loss[0] = start
    return loss


@pytest.mark.parametrize("vectorised", [False, True])
def test_fires_on_explosion_then_chance_and_names_the_rate(vectorised):
    lr = None if vectorised else 1.0
    (f,) = _run(_thrown(), lr=lr, ratio={0: 11.7, 25: 1e-2}, vectorised=vectorised)
    assert f.check == "lr-too-high" and f.key == "lr" and f.severity is Severity.WARNING
    assert f.evidence["initial_loss"] == 2.3 and f.evidence["peak_step"] == 1
    assert f.evidence["peak_loss"] > 1000 and f.evidence["chance_loss"] == pytest.approx(math.log(10), rel=1e-3)
    assert "ln(10)" in f.message and "10-100x" in f.hint and "mlcheck sanity" in f.hint
    if vectorised:
        assert f.evidence["lr"] is None and "likely far too high" in f.message
    else:
        assert "learning rate 1 is far too high" in f.message and "0.01-0.1" in f.hint
        assert f.evidence["peak_log10_update_ratio"] > 1 and "updates measured reached 12x the weights" in f.message
    assert f.step < 200  # live, long before the run ends at 450


def test_fires_on_sgd_sized_explosion_that_sits_far_above_chance():
    # SGD at lr=100 (Lightning digits MLP): 2.3 -> 1.5e8 by step 5, then 100-230 to the end
    (f,) = _run(_thrown(peak=1.5e8, settle=180.0), lr=100.0)
    assert "learning rate 100 is far too high" in f.message and f.evidence["loss"] > 50


def test_silent_without_a_known_number_of_classes():
    # no chance level to sit at, and one batch's loss at initialisation is too noisy a yardstick
    # (a heavy-tailed synthetic run of curves_eval starts at 5% of its level, then "explodes")
    assert _run(_thrown(), info=RunInfo(), lr=1.0) == []


@pytest.mark.parametrize(
    "shape",
    ["warmup-bump", "recovers", "plateau-without-explosion", "still-falling"],
)
def test_silent(shape):
    n, t = 450, np.arange(450, dtype=float)
    if shape == "warmup-bump":  # a 3x bump over the first steps, then learning as usual
        loss = _noisy(0.1 + 2.2 * np.exp(-t / 80) * (1 + 2 * np.exp(-(((t - 5) / 3) ** 2))))
    elif shape == "recovers":  # a 500x explosion, then the model learns below chance again
        loss = _thrown(settle=2.35)
        loss[40:] = _noisy(0.2 + 2.1 * np.exp(-(t[40:] - 40) / 60))
    elif shape == "plateau-without-explosion":  # loss-plateau's business, not the rate's
        loss = _noisy(np.full(n, 2.31))
    else:  # exploded, and still coming down from it at the end
        loss = _thrown()
        loss[1:] = 2.35 + 800 * np.exp(-(t[1:] - 1) / 120)
    found = _run(loss, lr=1e-3)
    assert not [f for f in found if f.check == "lr-too-high"], [f.format() for f in found]


def test_healthy_digits_curve_with_every_curve_check():
    # a healthy start (2.3 -> 0.1) stays silent with the other curve checks on as well
    t = np.arange(450, dtype=float)
    checks = ("loss-divergence", "loss-plateau", "lr-too-high", "lr-too-low")
    assert _run(_noisy(0.05 + 2.25 * np.exp(-t / 60)), lr=1e-3, checks=checks) == []
