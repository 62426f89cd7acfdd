"""`benchmarks/bench_held_steps.py`: the four ways of holding steps it counts replay the same
stream into the checks, so their counts compare the same work; the Keras arms flush as named."""

from __future__ import annotations

import sys
from pathlib import Path

from mlcheck.live import LiveRun

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_held_steps import ARMS, EPOCHS, PER_EPOCH, replay  # noqa: E402


def _record(live):
    run = live.monitor.run
    return (
        [f.to_dict() for f in live.monitor.findings],
        run.train_loss.total,
        run.train_loss.state_dict(),
        run.update_ratio.state_dict(),
    )


def test_held_steps_arms_hand_the_checks_the_same_steps(monkeypatch):
    flushes = {}
    original = LiveRun.flush_steps

    def counted(self, *args, **kwargs):
        flushes[arm] = flushes.get(arm, 0) + bool(self.holding)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LiveRun, "flush_steps", counted)
    records = {}
    for arm in ARMS:
        records[arm] = _record(replay(arm))
    assert records["keras_every"][1] == EPOCHS * PER_EPOCH
    for arm in ARMS[1:]:
        assert records[arm] == records["keras_every"], arm
    assert flushes["keras_every"] == EPOCHS * PER_EPOCH
    # held: the first epoch (the full pass) per step, then every 16th step and each epoch's end
    assert flushes["keras_held"] == PER_EPOCH + (EPOCHS - 1) * 4


def test_held_steps_lightning_arm_flushes_every_16th_step_and_at_epoch_ends(monkeypatch):
    flushes = []
    original = LiveRun.flush_steps

    def counted(self, *args, **kwargs):
        if self.holding:
            flushes.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LiveRun, "flush_steps", counted)
    replay("lightning_tuple")
    assert len(flushes) == 11  # 135 // 16 = 8, and 3 epoch ends that are not at a 16th step
