"""A try the time budget shortened is judged over the same window a full try ends with.

`overfit-batch`'s retry is fitted to the time left (`Budget.fitted_steps`): on a loaded or slow
machine it runs, say, 61 of its 100 planned steps. "Still falling" (the last quarter improved the
best loss by 10%: inconclusive, an INFO) was judged over the last quarter of the steps taken, a
window of 15 steps instead of 25, so the same healthy model could get "cannot fit" (an ERROR) on a
slow machine and "still falling" on a fast one (batch 20's denoising autoencoder h04: an ERROR
after 61 steps at load 30, an INFO after 100 steps at load 3).
"""

from __future__ import annotations

from mlcheck.checks.preflight.harness import FitRun

# h04's retry at load 30: 0.7204 -> 0.2768 in 61 steps, evaluated every 10 steps
FALLING = [(0, 0.7204), (10, 0.61), (20, 0.49), (30, 0.39), (40, 0.29), (50, 0.282), (60, 0.2768)]


def test_a_shortened_try_is_judged_over_the_last_quarter_of_its_planned_steps():
    shortened = FitRun(steps=61, losses=list(FALLING), planned=100)
    assert shortened.still_falling()  # steps 40-60 beat the best up to 30 by more than 10%
    # the same losses judged over a quarter of the steps taken (before: 50-60 against 0-40)
    assert not FitRun(steps=61, losses=list(FALLING)).still_falling()


def test_a_shortened_try_that_stalled_is_not_still_falling():
    stalled = [(0, 0.72), (10, 0.5), (20, 0.45), (30, 0.449), (40, 0.448), (50, 0.448), (60, 0.447)]
    assert not FitRun(steps=61, losses=stalled, planned=100).still_falling()


def test_a_try_shortened_below_a_quarter_of_its_plan_compares_with_its_start():
    losses = [(0, 1.0), (10, 0.95), (20, 0.85), (30, 0.8), (40, 0.75)]
    assert FitRun(steps=40, losses=losses, planned=400).still_falling()
    assert not FitRun(steps=40, losses=[(0, 1.0), (10, 0.97), (20, 0.96), (40, 0.95)], planned=400).still_falling()


def test_a_full_try_is_judged_as_before():
    losses = [(s, 1.0 / (1 + s)) for s in range(0, 101, 10)]
    assert (
        FitRun(steps=100, losses=losses, planned=100).still_falling()
        == FitRun(steps=100, losses=losses).still_falling()
    )
