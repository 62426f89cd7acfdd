"""Held steps whose losses are floats already (`LiveRun(host_losses=True)`, the Keras adapter):
the steps reach the checks in blocks, yet every finding is the one a flush every step gives, at
the same step and at the same moment of the run (after the same call)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from mlcheck.live import BatchRoute, LiveOptions, LiveRun
from mlcheck.run import RunInfo


def _stream(seed: int, steps: int) -> list[tuple]:
    """A Keras-like run: steps (a falling, climbing, spiking or flat loss; NaN/inf and missing
    losses in some runs; the rate at every step or now and then; an update ratio now and then;
    parameters named non-finite once), a training batch now and then, and epoch ends."""
    rng = random.Random(seed)
    shape = rng.choice(["fall", "climb", "spike", "flat", "nan", "none", "inf_lr", "names"])
    per_epoch = rng.choice([7, 16, 45, 50])
    bad_from = rng.randrange(steps // 4, steps) if shape in ("nan", "none", "inf_lr", "names") else steps
    level, calls = 2.3, []
    for step in range(steps):
        if shape == "fall":
            level *= 0.99
        elif shape == "climb" and step > steps // 3:
            level *= 1.05
        elif shape == "spike" and step % 37 == 36:
            level *= 8.0
        loss: float | None = level * (1 + 0.05 * rng.gauss(0, 1))
        lr: float | None = 0.1 if step % rng.choice([1, 1, 25]) == 0 else None
        names = None
        if step >= bad_from:
            if shape == "nan":
                loss = rng.choice([math.nan, math.inf, 1.0])
            elif shape == "none" and rng.random() < 0.5:
                loss = None
            elif shape == "inf_lr" and step == bad_from:
                lr = math.inf
            elif shape == "names" and step == bad_from:
                names = {"nonfinite_weights": ["dense/kernel"]}
        ratio = 1e-3 * (1 + rng.random()) if step % 25 == 0 else None
        if step % per_epoch == 0 and step % 3 == 0:
            calls.append(("batch", step))
        calls.append(("step", step, loss, lr, ratio, step // per_epoch, names))
        if step % per_epoch == per_epoch - 1:
            calls.append(("epoch", step // per_epoch, step))
    return calls


def _play(calls: list[tuple], held: bool) -> tuple[list[dict], list[int]]:
    """The findings (without their wall-clock time) and, for each, the call after which it came."""
    live = (
        LiveRun(LiveOptions(train_start_checks=False), info=RunInfo(task="classification"), host_losses=True)
        if held
        else LiveRun(LiveOptions(train_start_checks=False), info=RunInfo(task="classification"), flush_every=1)
    )
    rng = np.random.default_rng(0)
    moments = []
    for n, call in enumerate(calls):
        if call[0] == "step":
            _, step, loss, lr, ratio, epoch, names = call
            losses = [] if loss is None else [loss]
            if live.hold_step(step, losses, lr=lr, update_ratio=ratio, epoch=epoch, nonfinite=names):
                live.flush_steps(list)
        elif call[0] == "batch":
            route = live.route_batch("train")
            x, y = rng.normal(size=(16, 4)).astype(np.float32), rng.integers(0, 3, 16)
            if route is not BatchRoute.SKIP:
                live.observe_batch(route, x, y, split="train", step=call[1], epoch=None, index=0)
        else:
            live.end_pass("train")
            live.end_epoch(call[1], step=call[2], metrics=live_metrics(), train_loss_from_steps=False)
            live.start_epoch()
        moments += [n] * (len(live.monitor.findings) - len(moments))
    live.close()
    moments += [len(calls)] * (len(live.monitor.findings) - len(moments))
    found = [{k: v for k, v in f.to_dict().items()} for f in live.monitor.findings]
    return found, moments


def live_metrics():
    from mlcheck.live import split_epoch_metrics

    return split_epoch_metrics({"loss": 1.0})


@pytest.mark.parametrize("seed", range(24))
def test_cost35_held_host_losses_give_the_findings_of_a_flush_every_step_at_the_same_moment(seed):
    calls = _stream(seed, steps=random.Random(seed).choice([40, 135, 300, 700]))
    assert _play(calls, held=True) == _play(calls, held=False)


def test_cost35_host_losses_hold_plain_steps_and_flush_a_nonfinite_one_at_once():
    live = LiveRun(LiveOptions(train_start_checks=False), host_losses=True)
    flushes = 0
    for step in range(135):
        if live.hold_step(step, [1.0 / (step + 1)], lr=0.1, epoch=step // 45):
            live.flush_steps(list)
            flushes += 1
    assert flushes == 135 // LiveRun.FLUSH_EVERY  # every 16th step of the run, not every step
    assert live.hold_step(135, [math.nan], lr=0.1, epoch=3)  # judged at once: flushed at once
    live.flush_steps(list)
    assert [f.check for f in live.monitor.findings] == ["nonfinite-loss"] and live.monitor.findings[0].step == 135
