"""`mlcheck.analyze`: a real Lightning TensorBoard log and a Keras-style log replayed through the
checks in the right order, the tag mapping, and logs with injected faults found by the checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import mlcheck
from analyze_logs import interleave, scalar_event, write_framed, write_with_writer
from mlcheck.analyze import register_tag, tags
from mlcheck.checks.base import Check
from mlcheck.errors import BadInput


class Probe(Check):
    """Records what the monitor saw at each epoch and at the end (not registered: test only)."""

    id = "analyze-probe"
    family = "test"

    def reset(self):
        self.epochs = []
        self.end = None

    def on_epoch(self, run):
        self.epochs.append(
            {
                "epoch": run.epoch,
                "step": run.step,
                "steps_seen": run.train_loss.total,
                "lr_seen": run.lr.total,
                "val_loss": run.val_loss.last_value,
                "train_loss": run.epoch_train_loss.last_value,
                "val_metrics": {k: s.last_value for k, s in run.val_metrics.items()},
            }
        )
        return ()

    def on_end(self, run):
        self.end = {
            "info": run.info,
            "steps_seen": run.train_loss.total,
            "lr_last": run.lr.last_value,
            "loss_last": run.train_loss.last_value,
        }
        yield self.finding("probe ran", evidence={"epochs": len(self.epochs)})


def _scalars(log_dir, tag):
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars(tag)
    return np.array([e.step for e in events]), np.array([e.value for e in events])


@pytest.mark.xdist_group("analyze-real-runs")
def test_real_lightning_tensorboard_log(lightning_tb):
    probe = Probe()
    result = mlcheck.analyze(lightning_tb.parent.parent, checks=[probe])
    (run,) = result.runs
    assert run.name == "lightning_logs/version_0" and run.format == "tensorboard"
    assert run.series == {
        "train_loss": "train_loss_step",
        "epoch_train_loss": "train_loss_epoch",
        "val_loss": "val_loss",
        "train_metric:acc": "train_acc",
        "val_metric:acc": "val_acc",
        "lr": "lr-SGD",
    }
    assert [(r, f.check) for r, f in result.findings] == [("lightning_logs/version_0", "analyze-probe")]

    steps, losses = _scalars(lightning_tb, "train_loss_step")
    val_steps, val_losses = _scalars(lightning_tb, "val_loss")
    assert run.steps == int(steps[-1]) and run.epochs == 4
    # one log_epoch per epoch, after exactly the steps logged up to that epoch's end
    assert [e["epoch"] for e in probe.epochs] == [0, 1, 2, 3]
    for row, vstep, vloss in zip(probe.epochs, val_steps, val_losses):
        assert row["step"] == vstep
        assert row["steps_seen"] == int((steps <= vstep).sum())
        assert row["lr_seen"] == row["steps_seen"]  # lr aligned with every loss step
        assert row["val_loss"] == pytest.approx(vloss)
        assert set(row["val_metrics"]) == {"acc"}
    # StepLR halves the rate every 2 epochs: the replayed lr ends at 0.05 / 2
    assert probe.end["lr_last"] == pytest.approx(0.025)
    assert probe.end["loss_last"] == pytest.approx(losses[-1])
    info = probe.end["info"]
    assert info.max_epochs == 4 and info.total_steps == int(steps[-1]) and info.task == "classification"
    assert info.has_scheduler is True


def test_keras_train_and_validation_subruns(tmp_path):
    steps_per_epoch, epochs = 10, 3
    train = [scalar_event(s, "batch_loss", 2.0 - 0.03 * s) for s in range(steps_per_epoch * epochs)]
    for e in range(epochs):
        train += [
            scalar_event(e, "epoch_loss", 1.9 - 0.3 * e),
            scalar_event(e, "epoch_accuracy", 0.5 + 0.1 * e),
            scalar_event(e, "epoch_learning_rate", 0.01 / (e + 1)),
        ]
    val = []
    for e in range(epochs):
        val += [
            scalar_event(e, "epoch_loss", 2.0 - 0.25 * e),
            scalar_event(e, "epoch_accuracy", 0.45 + 0.1 * e),
            scalar_event(e, "evaluation_loss_vs_iterations", 2.0 - 0.25 * e),
        ]
    write_with_writer(tmp_path / "logs" / "train", train)
    write_with_writer(tmp_path / "logs" / "validation", val)
    probe = Probe()
    (run,) = mlcheck.analyze(tmp_path, checks=[probe]).runs
    assert run.name == "logs"
    assert run.series == {
        "train_loss": "train/batch_loss",
        "epoch_train_loss": "train/epoch_loss",
        "val_loss": "validation/epoch_loss",
        "train_metric:accuracy": "train/epoch_accuracy",
        "val_metric:accuracy": "validation/epoch_accuracy",
        "lr": "train/epoch_learning_rate",
    }
    assert [row["val_loss"] for row in probe.epochs] == pytest.approx([2.0, 1.75, 1.5])
    assert [row["train_loss"] for row in probe.epochs] == pytest.approx([1.9, 1.6, 1.3])
    # epoch rows fall at the end of each epoch's batches; the lr of epoch e applies to its steps
    assert [row["steps_seen"] for row in probe.epochs] == [10, 20, 30]
    assert probe.end["lr_last"] == pytest.approx(0.01 / 3)


def test_hand_written_loop_with_per_epoch_x(tmp_path):
    # a loop that logs train/loss per step and val/loss against the epoch number
    events = [scalar_event(s, "train/loss", 1.0 / (1 + s)) for s in range(100)]
    events += [scalar_event(e, "val/loss", 0.5 / (1 + e)) for e in range(5)]
    write_with_writer(tmp_path, events)
    probe = Probe()
    (run,) = mlcheck.analyze(tmp_path, checks=[probe]).runs
    assert run.series == {"train_loss": "train/loss", "val_loss": "val/loss"}
    assert [row["epoch"] for row in probe.epochs] == [0, 1, 2, 3, 4]
    assert [row["steps_seen"] for row in probe.epochs] == [20, 40, 60, 80, 100]


def test_tag_mapping_from_python(tmp_path):
    write_with_writer(tmp_path, [scalar_event(s, "objective", 1.0 / (1 + s)) for s in range(50)])
    with pytest.raises(BadInput, match="no loss curve found .scalar tags: objective."):
        mlcheck.analyze(tmp_path)
    (run,) = mlcheck.analyze(tmp_path, mapping={"obj*": "train_loss"}, checks=[Probe()]).runs
    assert run.series == {"train_loss": "objective"}
    with pytest.raises(ValueError, match="unknown role 'loss_please'"):
        mlcheck.analyze(tmp_path, mapping={"objective": "loss_please"})
    register_tag("objective", "train_loss")
    try:
        assert mlcheck.analyze(tmp_path, checks=[Probe()]).runs[0].series == {"train_loss": "objective"}
    finally:
        tags._registered.pop("objective")


def test_corrupt_run_is_skipped_when_others_are_readable(tmp_path):
    write_framed(tmp_path / "good" / "events.out.tfevents.1.h", [scalar_event(s, "loss", 1.0) for s in range(30)])
    bad = write_framed(tmp_path / "bad" / "events.out.tfevents.1.h", [scalar_event(s, "loss", 1.0) for s in range(30)])
    data = bytearray(bad.read_bytes())
    data[200:208] = b"\x00\x01" * 4
    bad.write_bytes(bytes(data))
    result = mlcheck.analyze(tmp_path, checks=[Probe()])
    assert [r.name for r in result.runs] == ["good"]
    ((where, reason),) = result.unreadable
    assert where.endswith("bad") and "corrupt record at byte" in reason


# -- injected faults, found by the real curve checks -----------------------------------------


def _curve(kind: str, n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = np.arange(n)
    healthy = 2.3 * np.exp(-s / 400) + 0.2
    noise = 1 + 0.05 * rng.standard_normal(n)
    if kind == "healthy":
        loss = healthy * noise
    elif kind == "divergent":  # learns, then blows up to ~10x its best and stays there
        loss = np.where(s < 1500, healthy, healthy[1500] * np.minimum(10.0, 1 + (s - 1500) / 100)) * noise
    elif kind == "plateau":  # never leaves chance level for 10 classes
        loss = np.log(10) * noise
    elif kind == "nan":
        loss = healthy * noise
        loss[2000:] = np.nan
    lr = np.full(n, 0.01)
    return {"train_loss": (s, loss), "lr": (s, lr)}


@pytest.mark.parametrize(
    "kind,check", [("divergent", "loss-divergence"), ("plateau", "loss-plateau"), ("nan", "nonfinite-loss")]
)
def test_injected_fault_is_found(tmp_path, kind, check):
    write_framed(tmp_path / kind / "events.out.tfevents.1.h", interleave(_curve(kind)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # analyze raises no Python warnings
        result = mlcheck.analyze(tmp_path)
    found = {f.check for _, f in result.findings}
    assert check in found, result.findings
    # and writes nothing next to the user's logs
    assert sorted(p.name for p in (tmp_path / kind).iterdir()) == ["events.out.tfevents.1.h"]


def test_healthy_log_has_no_warnings(tmp_path):
    write_framed(tmp_path / "events.out.tfevents.1.h", interleave(_curve("healthy")))
    result = mlcheck.analyze(tmp_path)
    assert [f for _, f in result.findings if f.severity >= mlcheck.Severity.WARNING] == []


def test_loss_without_a_level_is_per_epoch_when_logged_once_per_epoch(tmp_path):
    # Lightning with self.log("train_loss", on_step=False, on_epoch=True): one point per epoch,
    # logged at the epoch's last step, next to the `epoch` scalar
    events = []
    for e in range(5):
        last = 20 * e + 19
        events += [scalar_event(s, "epoch", float(e)) for s in range(20 * e, last + 1, 5)]
        events += [scalar_event(last, "train_loss", 2.0 - 0.2 * e), scalar_event(last, "val_loss", 2.1 - 0.2 * e)]
    write_with_writer(tmp_path, events)
    probe = Probe()
    (run,) = mlcheck.analyze(tmp_path, checks=[probe]).runs
    assert run.series == {"epoch_train_loss": "train_loss", "val_loss": "val_loss"}
    assert [(r["epoch"], r["step"]) for r in probe.epochs] == [(e, 20 * e + 19) for e in range(5)]
    assert [r["train_loss"] for r in probe.epochs] == pytest.approx([2.0, 1.8, 1.6, 1.4, 1.2])


def test_validation_against_the_step_without_an_epoch_scalar(tmp_path):
    # a loop logging val/loss at the global step every 30 steps: each validation is an "epoch"
    events = [scalar_event(s, "loss", 1.0 / (1 + s)) for s in range(90)]
    events += [scalar_event(s, "val/loss", 0.5) for s in (29, 59, 89)]
    write_with_writer(tmp_path, events)
    probe = Probe()
    mlcheck.analyze(tmp_path, checks=[probe])
    assert [(r["epoch"], r["step"], r["steps_seen"]) for r in probe.epochs] == [(0, 29, 30), (1, 59, 60), (2, 89, 90)]


def test_loss_logged_rarely_per_step_stays_per_step(tmp_path):
    # Lightning self.log("train_loss") with log_every_n_steps=50 and 100 steps per epoch: two
    # points per epoch, which a count alone could take for per-epoch values
    events = []
    for e in range(4):
        for s in (100 * e + 49, 100 * e + 99):
            events += [scalar_event(s, "epoch", float(e)), scalar_event(s, "train_loss", 2.0 - 0.01 * s)]
        events.append(scalar_event(100 * e + 99, "val_loss", 2.0 - 0.2 * e))
    write_with_writer(tmp_path, events)
    (run,) = mlcheck.analyze(tmp_path, checks=[Probe()]).runs
    assert run.series == {"train_loss": "train_loss", "val_loss": "val_loss"}


def test_event_file_and_metrics_csv_in_one_folder_are_two_runs(tmp_path):
    run = tmp_path / "lightning_logs" / "version_0"
    write_framed(run / "events.out.tfevents.1.h", [scalar_event(s, "train_loss", 1.0) for s in range(20)])
    (run / "metrics.csv").write_text("epoch,step,train_loss\n0,0,1.0\n0,1,0.9\n")
    result = mlcheck.analyze(tmp_path, checks=[Probe()])
    assert [(r.name, r.format) for r in result.runs] == [
        ("lightning_logs/version_0", "tensorboard"),
        ("lightning_logs/version_0 (metrics.csv)", "lightning-csv"),
    ]


@pytest.mark.parametrize(
    ("loss", "accuracy", "classes"),
    [
        (2.33, 0.098, 10),  # digits at chance (a real Keras run's last epochs)
        (0.693, 0.51, 2),
        (1.10, 0.34, 3),
        (2.33, 0.35, None),  # the loss of ten classes, an accuracy of three: no agreement
        # ten classes after a blow-up: accuracy 1/10, the loss above ln 10 (2.30); the accuracy's
        # window was 0.03 wide for every C >= 9, so 0.10 "agreed" with 1/14 and a finding named ln(14)
        (2.64, 0.10, None),
        (0.69, 0.80, None),  # an imbalanced binary set's majority guess: not chance
        (0.30, 0.91, None),  # learning
        (2.30, 10.0, 10),  # accuracy in percent (`100 * correct / total`, nicetea17's wandb runs): read as a share
        (2.30, 35.0, None),  # in percent, an accuracy of three classes: no agreement
    ],
)
def test_chance_classes_needs_the_loss_and_the_accuracy_to_agree(loss, accuracy, classes):
    from mlcheck.analyze.replay import EpochRow, chance_classes

    rows = [EpochRow(epoch=e, train_loss=loss, train_metrics={"acc": accuracy}) for e in range(6)]
    assert chance_classes(rows) == classes
    # a hundred classes: ln C moves 1% a class there, so the loss names C only roughly
    rows = [EpochRow(epoch=e, val_loss=4.61, val_metrics={"val_acc": 0.01}) for e in range(6)]
    assert 95 <= chance_classes(rows) <= 105
