"""Lightning logs read as Lightning 2.6 writes them (issue #12, readers20): the rates of several
parameter groups (`LearningRateMonitor`) and several validations an epoch (`val_check_interval`).

The files are synthetic but laid out as a real `Trainer(val_check_interval=0.25,
log_every_n_steps=2, callbacks=[LearningRateMonitor()])` with an optimizer of two parameter
groups writes them (recorded from a real fit here): the monitor's rows carry the step and one
column per group (`lr-Adam/pg1`, `lr-Adam/pg2`, or `lr-Adam/<name>` for a named group) and no
epoch; the training rows and each validation's row carry the epoch.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import mlcheck
from analyze_logs import interleave, write_framed

STEPS_PER_EPOCH = 20
EPOCHS = 12
VAL_EVERY = 5  # val_check_interval=0.25 of 20 batches


def _rate(step: int) -> float:
    """A cosine schedule from 1e-2 over the run."""
    return 0.01 * 0.5 * (1 + math.cos(math.pi * step / (STEPS_PER_EPOCH * EPOCHS)))


def _metrics_csv(path: Path, groups: tuple[str, str], backbone_rate: float = 0.0) -> Path:
    """A healthy run whose first group (a frozen backbone) is held at `backbone_rate` while the
    head follows the schedule; four validations an epoch."""
    rnd = random.Random(0)
    rows = [f"epoch,lr-Adam/{groups[0]},lr-Adam/{groups[1]},step,train_loss,val_loss"]
    for epoch in range(EPOCHS):
        for step in range(epoch * STEPS_PER_EPOCH, (epoch + 1) * STEPS_PER_EPOCH):
            rows.append(f",{backbone_rate},{_rate(step):.6g},{step},,")
            if step % 2 == 1:
                rows.append(f"{epoch},,,{step},{math.exp(-step / 80) + 0.3 + 0.02 * rnd.random():.5f},")
            if (step + 1) % VAL_EVERY == 0:
                rows.append(f"{epoch},,,{step},,{0.9 * math.exp(-step / 90) + 0.35 + 0.01 * rnd.random():.5f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


def _alarms(run) -> list[str]:
    return [f"{f.check}: {f.message}" for f in run.findings if f.severity.value != "info"]


def test_the_group_with_the_highest_rate_is_the_learning_rate_in_a_metrics_csv(tmp_path):
    # was `lr-Adam/pg1`, the first group by name: a frozen backbone's rate of 0 read as the run's,
    # a WARNING lr-schedule "The learning rate has been exactly 0 for the last 32 steps"
    for groups in (("pg1", "pg2"), ("backbone", "head")):
        path = _metrics_csv(tmp_path / "_".join(groups) / "metrics.csv", groups)
        (run,) = mlcheck.analyze(path).runs
        assert run.series["lr"] == f"lr-Adam/{groups[1]}"
        assert _alarms(run) == []


def test_the_group_with_the_highest_rate_is_the_learning_rate_in_event_files(tmp_path):
    steps = list(range(STEPS_PER_EPOCH * EPOCHS))
    curves = {
        "lr-Adam/pg1": (steps, [0.0] * len(steps)),
        "lr-Adam/pg2": (steps, [_rate(s) for s in steps]),
        "train_loss": (steps[1::2], [math.exp(-s / 80) + 0.3 for s in steps[1::2]]),
        "val_loss": (steps[VAL_EVERY - 1 :: VAL_EVERY], [0.9 * math.exp(-s / 90) + 0.35 for s in steps[4::5]]),
        "epoch": (steps, [s // STEPS_PER_EPOCH for s in steps]),
    }
    write_framed(tmp_path / "version_0" / "events.out.tfevents.1.h", interleave(curves))
    (run,) = mlcheck.analyze(tmp_path).runs
    assert run.series["lr"] == "lr-Adam/pg2"
    assert _alarms(run) == []


def test_a_constant_group_beside_a_scheduled_one_is_passed_over_by_its_lower_rate(tmp_path):
    # a head at 1e-3 constant beside a backbone warmed up to 1e-4: the head (was the backbone, the
    # first by name)
    steps = list(range(100))
    curves = {
        "lr-SGD/head": (steps, [1e-3] * 100),
        "lr-SGD/backbone": (steps, [min(1e-4, 1e-4 * s / 10) for s in steps]),
        "train_loss": (steps, [math.exp(-s / 30) + 0.2 for s in steps]),
    }
    write_framed(tmp_path / "run" / "events.out.tfevents.1.h", interleave(curves))
    (run,) = mlcheck.analyze(tmp_path).runs
    assert run.series["lr"] == "lr-SGD/head"


def test_several_validations_an_epoch_are_told_and_judged_as_live(tmp_path):
    # MLCheckCallback judges the validation metrics at each epoch's end (the last of its four
    # validations); analyze reads the same curve, and now says so (it did silently)
    path = _metrics_csv(tmp_path / "metrics.csv", ("pg1", "pg2"), backbone_rate=1e-3)
    (run,) = mlcheck.analyze(path).runs
    assert run.epochs == EPOCHS
    told = [line for line in run.info if "validation losses in" in line]
    assert told == [
        f"{path} holds {EPOCHS * STEPS_PER_EPOCH // VAL_EVERY} validation losses in {EPOCHS} epochs (Lightning's "
        "`val_check_interval` below 1, or an int): each epoch's last is judged, as MLCheckCallback does live"
    ]


def test_one_validation_an_epoch_says_nothing_of_it(tmp_path):
    rows = ["epoch,step,train_loss,val_loss"]
    for epoch in range(8):
        rows.append(f"{epoch},{epoch * 10 + 9},{1 / (epoch + 1):.4f},")
        rows.append(f"{epoch},{epoch * 10 + 9},,{1.1 / (epoch + 1):.4f}")
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(rows) + "\n")
    (run,) = mlcheck.analyze(path).runs
    assert not [line for line in run.info if "validation losses in" in line]
