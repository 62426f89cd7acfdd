"""The live core's held steps handed to the monitor a block at a time (issue 13, the per-step
target; branch steady26): `LiveRun.flush_steps` gives each run of plain steps to
`Monitor.log_finite_steps` in one call, and the series, judgements, findings and the epoch's
training loss must be those of one `Monitor.log_step` per step, which the old `flush_steps` made
(kept below as the reference)."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from mlcheck.live import LiveOptions, LiveRun
from mlcheck.monitor import Monitor
from mlcheck.series import Series

pytestmark = pytest.mark.filterwarnings("ignore::mlcheck.MLCheckWarning")


def _old_flush_steps(live: LiveRun, to_floats, rescan=None):
    """`LiveRun.flush_steps` before steady26: one keyword `log_step` call per held step."""
    pending, live._pending = live._pending, []
    if not pending:
        return []
    values = to_floats([loss for entry in pending for loss in entry[2]])
    last_nonfinite = pending[-1][6]
    if rescan is not None and not all(map(math.isfinite, values)) and not any(e[6] for e in pending):
        last_nonfinite = dict(rescan())
    out = []
    i, last = 0, len(pending) - 1
    for n, (step, lr, losses, scale, ratio, epoch, nonfinite, grads, rows) in enumerate(pending):
        k = len(losses)
        value = sum(values[i : i + k]) * scale if k else None
        i += k
        if rows:
            live._rows = rows
        if value is not None and math.isfinite(value):
            live._epoch_loss_sum += value * live._rows
            live._epoch_loss_n += live._rows
        if n == last:
            nonfinite = last_nonfinite
        out += live.monitor.log_step(
            step,
            loss=value,
            lr=lr,
            update_ratio=ratio,
            epoch=epoch,
            nonfinite_grads=nonfinite.get("nonfinite_grads") or None,
            nonfinite_weights=nonfinite.get("nonfinite_weights") or None,
            grad_norm=grads[0],
            grad_cosine=grads[1],
            leftover_grad_norm=grads[2],
            fresh_grad_norm=grads[3],
        )
    return out


def _stream(seed: int) -> list[dict]:
    """One run's held steps as an adapter hands them over: a loss curve of a random shape (falling,
    flat, climbing, spiking: the step checks judge and warn), a rate held, decayed or left out,
    scans every `every` steps, accumulated micro-batch losses, short last batches, NaN and inf
    losses now and then, epochs of a random length."""
    rng = random.Random(seed)
    n = rng.choice([20, 70, 200, 300, 700])
    shape = rng.choice(["fall", "flat", "climb", "spike", "noisy"])
    every = rng.choice([5, 25, 1000])
    per_epoch = rng.choice([7, 16, 45, 100])
    lr_kind = rng.choice(["const", "decay", "none", "sometimes"])
    accum = rng.choice([1, 1, 2])
    calls = []
    for step in range(n):
        t = step / n
        base = {
            "fall": 2.3 * math.exp(-3 * t) + 0.05,
            "flat": 2.3,
            "climb": 0.5 * math.exp(6 * t),
            "spike": 1.0 + (50.0 if rng.random() < 0.03 else 0.0),
            "noisy": 1.0 + rng.gauss(0, 0.3),
        }[shape]
        losses = [base * (1 + rng.gauss(0, 0.05)) for _ in range(accum)]
        if rng.random() < 0.01:
            losses[0] = rng.choice([math.nan, math.inf])
        if rng.random() < 0.02:
            losses = []
        lr = {"const": 0.1, "decay": 0.1 * 0.99**step, "none": None, "sometimes": 0.1 if step % 10 == 0 else None}[
            lr_kind
        ]
        kwargs = {"scale": 1.0 / accum if accum > 1 else 1.0, "lr": lr, "epoch": step // per_epoch}
        if step % every == 0:
            kwargs["update_ratio"] = 10 ** rng.uniform(-5, -1)
            kwargs["grad_norm"], kwargs["grad_cosine"] = rng.uniform(0.1, 3), rng.uniform(-1, 1)
        if rng.random() < 0.01:
            kwargs["nonfinite"] = {"nonfinite_grads": ["net.0.weight"]}
        if rng.random() < 0.02:
            kwargs["leftover_grads"] = (rng.choice([0.0] * 9 + [0.5]), 1.0)
        if step % per_epoch == per_epoch - 1 or rng.random() < 0.1:
            kwargs["rows"] = rng.choice([32, 7])
        calls.append({"step": step, "losses": losses, **kwargs})
    return calls


def _play(calls: list[dict], flush) -> tuple[LiveRun, list]:
    live = LiveRun(LiveOptions(train_start_checks=False, config=False))
    findings = []
    epoch = 0
    for call in calls:
        if call["epoch"] != epoch:
            findings += flush(live, list)
            findings.append(("epoch", epoch, live.epoch_train_loss()))
            live.start_epoch()
            epoch = call["epoch"]
        if live.hold_step(**call):
            findings += flush(live, list)
    findings += flush(live, list)
    findings.append(("end", epoch, live.epoch_train_loss()))
    return live, findings


def _state(live: LiveRun, findings: list) -> str:
    run = live.monitor.run
    series = {
        name: getattr(run, name).state_dict()
        for name in ("train_loss", "lr", "update_ratio", "grad_norm", "grad_cosine", "leftover_grad_norm")
    }
    shown = [f if isinstance(f, tuple) else (f.check, f.severity.value, f.step, f.epoch, f.message) for f in findings]
    return json.dumps(
        {"series": series, "findings": shown, "step": run.step, "epoch": run.epoch, "extras": repr(run.extras)},
        default=lambda o: o.tolist() if hasattr(o, "tolist") else repr(o),
        sort_keys=True,
    )


@pytest.mark.parametrize("seed", range(60))
def test_steady26_held_steps_in_blocks_give_the_per_step_series_and_findings(seed):
    calls = _stream(seed)
    new, found_new = _play(calls, LiveRun.flush_steps)
    old, found_old = _play(calls, _old_flush_steps)
    assert _state(new, found_new) == _state(old, found_old)


def test_steady26_the_streams_judge_and_warn():
    """The streams above are no empty comparison: the step checks find something in some."""
    warned = 0
    for seed in range(60):
        _, found = _play(_stream(seed), LiveRun.flush_steps)
        warned += any(not isinstance(f, tuple) for f in found)
    assert warned >= 5


def test_steady26_a_flush_of_plain_steps_makes_no_call_per_step(monkeypatch):
    """16 held steps of finite losses reach the monitor in one call, not 16 `log_step` calls
    (before steady26: 16)."""
    calls = []
    monkeypatch.setattr(Monitor, "log_step", lambda self, *a, **k: calls.append(a) or [])
    live = LiveRun(LiveOptions(train_start_checks=False, config=False))
    for step in range(16):
        live.hold_step(step, [2.0 - step / 100], lr=0.1, epoch=0, rows=32)
    live.flush_steps(list)
    assert calls == []
    assert live.monitor.run.train_loss.total == 16
    assert live.epoch_train_loss() == pytest.approx(np.mean([2.0 - s / 100 for s in range(16)]))


def test_steady26_add_finite_is_add_to_the_last_bit():
    rng = random.Random(0)
    for trial in range(200):
        capacity = rng.choice([4, 6, 16, 256])
        one, block = Series(capacity), Series(capacity)
        step = 0
        for _ in range(rng.randint(1, 40)):
            k = rng.randint(0, 40)
            xs = list(range(step, step + k))
            step += k
            values = [rng.choice([1.0, 2.0, -0.0]) if rng.random() < 0.2 else rng.gauss(0, 10) for _ in range(k)]
            for x, v in zip(xs, values):
                one.add(x, v)
            block.add_finite(xs, values)
            if rng.random() < 0.1:
                one.add(step, math.nan)
                block.add(step, math.nan)
                step += 1
            assert json.dumps(one.state_dict(), default=repr) == json.dumps(block.state_dict(), default=repr), trial
            for a, b in zip(one.buckets(include_open=True).values(), block.buckets(include_open=True).values()):
                assert a.tobytes() == b.tobytes()
