"""A learning rate logged once an epoch (issue #12, lrsched22): `lr-schedule` on its last value.

A rate logged at an epoch's end is the rate that epoch used (Keras' `LearningRateScheduler`) or
the one set for the next (`scheduler.step()` then `wandb.log({"lr": scheduler.get_last_lr()[0]})`,
as in nicetea17/CIFAR10-Classifier-AlexNet-and-Resnet18's nine 5-epoch wandb runs; a Keras
schedule read after the epoch's steps), and the log does not say which. A cosine to 0 over 5
epochs logged after the step ends on 0, the rate of an epoch that never ran: it was read as
"decayed to 0 with 20% of the run still to go" (a WARNING on a healthy run). A schedule that
reaches 0 at half the run is still told.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from test_wandb_runs import _framed, _history

import mlcheck

PEAK = 0.1


def _after_step(epoch: int, epochs: int) -> float:
    """A cosine to 0 over `epochs` epochs, as logged after `scheduler.step()`: the next epoch's."""
    return PEAK * 0.5 * (1 + math.cos(math.pi * (epoch + 1) / epochs))


def _zero_at_half(epoch: int, epochs: int) -> float:
    """A linear decay that reaches 0 at half the run (its length given as half the epochs)."""
    return PEAK * max(0.0, 1 - (epoch + 1) / (epochs // 2))


def _losses(epoch: int) -> tuple[float, float]:
    return 2.0 * math.exp(-epoch / 3) + 0.3, 2.0 * math.exp(-epoch / 3) + 0.4


def _keras_csv(path: Path, epochs: int, rate) -> Path:
    rows = ["epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"]
    for e in range(epochs):
        train, val = _losses(e)
        rows.append(f"{e},{0.5 + 0.04 * e:.4f},{rate(e, epochs):.6g},{train:.5f},{0.5 + 0.035 * e:.4f},{val:.5f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _hand_csv(path: Path, epochs: int, rate) -> Path:
    rows = ["epoch,train_loss,val_loss,lr"]
    rows += [f"{e},{_losses(e)[0]:.5f},{_losses(e)[1]:.5f},{rate(e, epochs):.6g}" for e in range(epochs)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _wandb_run(path: Path, epochs: int, rate) -> Path:
    """One `wandb.log` an epoch, the rate after `scheduler.step()`, as the nine runs log it."""
    records = [_history(e, {"epoch": e, "train_loss": _losses(e)[0], "val_loss": _losses(e)[1], "lr": rate(e, epochs)})
               for e in range(epochs)]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_framed(records))
    return path


LAYOUTS = {
    "keras-csv": lambda tmp, epochs, rate: _keras_csv(tmp / "log.csv", epochs, rate),
    "hand-csv": lambda tmp, epochs, rate: _hand_csv(tmp / "history.csv", epochs, rate),
    "wandb": lambda tmp, epochs, rate: _wandb_run(tmp / "run-abc123" / "run-abc123.wandb", epochs, rate),
}


def _schedule_findings(path: Path) -> list:
    (run,) = mlcheck.analyze(path).runs
    return [f for f in run.findings if f.check == "lr-schedule"]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("epochs", [5, 8])
def test_a_schedule_ending_at_0_with_the_run_is_silent_when_logged_once_an_epoch(tmp_path, layout, epochs):
    # was: WARNING "decayed to 0, under 0.001x its peak of 0.0905, at step 4 with 20% of the run
    # still to go" (5 epochs; 12% at 8)
    path = LAYOUTS[layout](tmp_path, epochs, _after_step)
    assert _schedule_findings(path) == []


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_rate_at_0_from_half_the_run_is_still_told_when_logged_once_an_epoch(tmp_path, layout):
    path = LAYOUTS[layout](tmp_path, 10, _zero_at_half)
    (finding,) = _schedule_findings(path)
    assert finding.severity.value == "warning" and finding.key in ("decayed", "zero")
    if finding.key == "decayed":  # counted from the epoch after the first logged 0: 5 of 10 left
        assert finding.evidence["share_of_run_left"] == pytest.approx(0.5)
        assert finding.evidence["lr_logged_every"] == 1


def test_the_command_is_silent_on_a_keras_csv_ending_at_0(tmp_path):
    path = _keras_csv(tmp_path / "log.csv", 5, _after_step)
    result = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert [f["check"] for f in json.loads(result.stdout)["findings"]] == []


def _monitor_metrics_csv(path: Path, epochs: int, t_max: int, steps: int = 16) -> Path:
    """A Lightning metrics.csv as `LearningRateMonitor(logging_interval="epoch")` writes it (laid
    out as a real fit here wrote it): the rate of each epoch at its first step, read before the
    epoch ran, beside the training loss every 4 steps and the validation loss at each epoch's end."""
    rows = ["epoch,lr-SGD,step,train_loss_epoch,train_loss_step,val_loss"]
    for e in range(epochs):
        rows.append(f",{PEAK * 0.5 * (1 + math.cos(math.pi * min(e, t_max) / t_max)):.6g},{e * steps},,,")
        for step in range(e * steps + 3, (e + 1) * steps, 4):
            rows.append(f"{e},,{step},,{_losses(step / steps)[0]:.5f},")
        train, val = _losses(e)
        rows.append(f"{e},,{(e + 1) * steps - 1},,,{val:.5f}")
        rows.append(f"{e},,{(e + 1) * steps - 1},{train:.5f},,")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_lightnings_rate_monitor_logs_the_rate_used_so_a_last_epoch_at_0_is_still_told(tmp_path):
    # LearningRateMonitor logs at the epoch's start: a CosineAnnealingLR(T_max=epochs - 1)
    # trains the last epoch at 0 (the live callback tells it too); T_max=epochs never reaches 0
    assert _schedule_findings(_monitor_metrics_csv(tmp_path / "metrics.csv", 5, t_max=5)) == []
    (finding,) = _schedule_findings(_monitor_metrics_csv(tmp_path / "metrics.csv", 5, t_max=4))
    assert finding.severity.value == "warning" and "lr_logged_every" not in finding.evidence


def test_a_keras_fit_with_a_cosine_to_0_read_back_from_mlchecks_own_events_is_silent(tmp_path):
    # mlcheck's Keras callback writes `epoch_learning_rate` at each epoch's end, read from the
    # schedule after the epoch's steps: the last is the rate at the run's last step, 0. The fit
    # is silent live; read back it was a WARNING "decayed to 0 ... at step 48 with 20% of the run
    # still to go"
    import keras

    from analyze_runs import digits
    from mlcheck.integrations.keras import MLCheckCallback

    keras.utils.set_random_seed(0)
    x, y = digits()
    epochs, batch = 4, 32
    steps = 384 // batch
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    schedule = keras.optimizers.schedules.CosineDecay(0.05, decay_steps=epochs * steps)  # 0 at the run's end
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callback = MLCheckCallback(log_dir=tmp_path / "logs", every_n_steps=1)
    model.fit(
        x[:384], y[:384], validation_data=(x[384:], y[384:]), epochs=epochs, batch_size=batch, verbose=0,
        callbacks=[callback],
    )  # fmt: skip
    assert [f for f in callback.findings if f.check == "lr-schedule"] == []
    (tmp_path / "logs" / "findings.jsonl").unlink(missing_ok=True)  # judge the curves alone
    (run,) = mlcheck.analyze(tmp_path / "logs").runs
    assert run.series["lr"] == "train/epoch_learning_rate"
    assert [f for f in run.findings if f.check == "lr-schedule"] == []
