"""`mlcheck analyze` over folders the live side wrote (issue 10, item 7): the findings a callback or
`Monitor` recorded (`findings.jsonl`) are shown, marked live and not repeated; a `Monitor` folder
holds the curves it was given, so analyze finds the loss curve and the same fault; a loss logged
too rarely for the curve checks is said so, by the Lightning callback at train start and by
analyze per run. Real Lightning training, the real command as a subprocess."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from analyze_runs import digits

TIMEOUT_S = 120


def mlcheck_analyze(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=path if path.is_dir() else path.parent,
    )


def lightning_fit(
    folder: Path, *, logger: str = "tensorboard", nan_rows: int = 0, epochs: int = 2, on_epoch=True, **trainer_kw
):
    """A tiny MLP on 1,440 digits (45 batches of 32 per epoch) with `MLCheckCallback()`; `nan_rows`
    plants NaN in the inputs; `on_epoch=False` logs the training loss per step only. Returns
    (logger's log_dir, callback)."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from torch.utils.data import DataLoader, TensorDataset

    from mlcheck.integrations.lightning import MLCheckCallback

    pl.seed_everything(0, verbose=False)
    x, y = digits(1797)
    x = x.copy()
    x[np.arange(nan_rows) * 7, 3] = np.nan
    train = TensorDataset(torch.from_numpy(x[:1440]), torch.from_numpy(y[:1440]))
    val = TensorDataset(torch.from_numpy(x[1440:]), torch.from_numpy(y[1440:]))

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

        def training_step(self, batch, _):
            loss = torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=True, on_epoch=on_epoch)
            return loss

        def validation_step(self, batch, _):
            self.log("val_loss", torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    log = (TensorBoardLogger if logger == "tensorboard" else CSVLogger)(str(folder), name="lightning_logs")
    cb = MLCheckCallback(overfit_batch=False)
    kw = dict(
        max_epochs=epochs,
        logger=log,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        callbacks=[cb],
    )
    trainer = pl.Trainer(**{**kw, **trainer_kw})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the findings' own warnings, Lightning's about workers
        trainer.fit(Net(), DataLoader(train, batch_size=32, shuffle=True), DataLoader(val, batch_size=128))
    return Path(log.log_dir), cb


def _recorded_checks(log_dir: Path) -> list[str]:
    return [json.loads(line)["check"] for line in (log_dir / "findings.jsonl").read_text().splitlines()]


def test_analyze_shows_the_findings_a_lightning_run_recorded(tmp_path):
    log_dir, cb = lightning_fit(tmp_path, nan_rows=5, log_every_n_steps=5)
    recorded = _recorded_checks(log_dir)
    assert "nonfinite-input" in recorded  # a data check: no curve can show it

    result = mlcheck_analyze(tmp_path, "--json")
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    payload = json.loads(result.stdout)
    (run,) = payload["runs"]
    assert run["findings_file"] == str(log_dir / "findings.jsonl") and run["live_findings"] == len(recorded)
    live = [f for f in payload["findings"] if f["source"] == "live"]
    assert [f["check"] for f in live] == recorded
    assert [f["message"] for f in live] == [f.message for f in cb.findings]
    derived = {f["check"] for f in payload["findings"] if f["source"] == "analyze"}
    assert not derived & set(recorded), "a check recorded live is not repeated from the curves"
    # the callback left the curves to Lightning's logger: no copy of them in mlcheck's own file
    from mlcheck.analyze.events import read_event_files

    (own,) = log_dir.glob("*.mlcheck")
    assert not [t for t in read_event_files([own]) if t.startswith("mlcheck/curves/")]

    table = mlcheck_analyze(tmp_path)
    assert table.returncode == 1 and "Traceback" not in table.stderr
    assert "(live)" in table.stdout and "recorded during training (findings.jsonl)" in table.stdout
    assert f"{len(recorded)} finding(s) recorded live" in table.stdout.replace("\n", "")


def test_a_csvlogger_folder_shows_its_recorded_findings_without_skipping_mlchecks_own_file(tmp_path):
    """The folder holds metrics.csv, findings.jsonl and mlcheck's marker events (no curves):
    one run, with the recorded findings, and nothing said about the markers' file."""
    log_dir, _ = lightning_fit(tmp_path, logger="csv", nan_rows=5, log_every_n_steps=5)
    assert list(log_dir.glob("*.mlcheck"))
    result = mlcheck_analyze(tmp_path, "--json")
    assert result.returncode == 1 and result.stderr == "", result.stderr
    payload = json.loads(result.stdout)
    (run,) = payload["runs"]
    assert run["format"] == "lightning-csv" and run["live_findings"] == len(_recorded_checks(log_dir))
    assert {"nonfinite-input"} <= {f["check"] for f in payload["findings"] if f["source"] == "live"}
    assert not payload["unreadable"]


def _diverging_loop(log_dir: Path, steps_per_epoch: int = 100, epochs: int = 10) -> list:
    """A plain training loop watched by `Monitor(log_dir=...)` whose loss falls, then climbs
    tenfold from step 500 (a learning rate raised mid-run); returns the live findings."""
    from mlcheck import Monitor

    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Monitor(log_dir=log_dir) as monitor:
            for epoch in range(epochs):
                for i in range(steps_per_epoch):
                    s = epoch * steps_per_epoch + i
                    base = 2.3 * np.exp(-min(s, 500) / 200) + 0.2
                    loss = base * min(10.0, 1 + max(0, s - 500) / 50) * (1 + 0.02 * rng.standard_normal())
                    monitor.log_step(s, loss=float(loss), lr=0.01, epoch=epoch)
                monitor.log_epoch(epoch, train_loss=float(loss), val_loss=float(loss) * 1.1)
    return list(monitor.findings)


def test_keras_markers_below_its_subruns_are_not_read_as_metrics(tmp_path, monkeypatch):
    # The Keras callback writes each finding's marker scalar into its `train/` or `validation/`
    # sub-run, so it is read back as `train/mlcheck/<check-id>`; with the split peeled off, ids
    # such as `train-val-overlap` looked like a metric and became a training metric curve.
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(log_dir=tmp_path / "logs", overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the overlap is planted: validation rows copied from training
        model.fit(
            x[:384], y[:384], validation_data=(x[:96], y[:96]), epochs=2, batch_size=32, verbose=0, callbacks=[cb]
        )
    assert "train-val-overlap" in {f.check for f in cb.findings}
    done = mlcheck_analyze(tmp_path / "logs", "--json")
    assert done.returncode == 1, done.stderr  # the live error
    (run,) = json.loads(done.stdout)["runs"]
    assert run["series"]["val_loss"] == "validation/epoch_loss"
    assert not [role for role, tag in run["series"].items() if "mlcheck/" in role or "/mlcheck/" in tag], run["series"]


def test_a_monitor_folder_is_analysed_from_the_curves_monitor_wrote(tmp_path):
    log_dir = tmp_path / "runs" / "exp1"
    live = _diverging_loop(log_dir)
    assert [f.check for f in live] == ["loss-divergence"]

    # the curves are in TensorBoard too, every step of them
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("mlcheck/curves/train_loss_step")] == list(range(1000))
    assert len(acc.Scalars("mlcheck/curves/val_loss")) == 10

    result = mlcheck_analyze(tmp_path, "--json")
    assert result.returncode == 1 and result.stderr == "", result.stderr
    payload = json.loads(result.stdout)
    (run,) = payload["runs"]
    assert run["series"]["train_loss"] == "mlcheck/curves/train_loss_step"
    assert run["series"]["val_loss"] == "mlcheck/curves/val_loss" and run["series"]["lr"] == "mlcheck/curves/lr"
    assert run["info"] == []  # 1,000 points: enough for every curve check
    assert [(f["check"], f["source"]) for f in payload["findings"]] == [("loss-divergence", "live")]

    # without what was recorded live, the curves alone give the same finding at the same step
    (log_dir / "findings.jsonl").unlink()
    result = mlcheck_analyze(tmp_path, "--json")
    assert result.returncode == 1 and result.stderr == "", result.stderr
    (found,) = json.loads(result.stdout)["findings"]
    assert (found["check"], found["source"], found["step"]) == ("loss-divergence", "analyze", live[0].step)


def test_a_folder_with_recorded_findings_alone(tmp_path):
    _diverging_loop(tmp_path / "exp1")
    for events in (tmp_path / "exp1").glob("*tfevents*"):
        events.unlink()
    result = mlcheck_analyze(tmp_path, "--json")
    assert result.returncode == 1 and result.stderr == "", result.stderr
    payload = json.loads(result.stdout)
    (run,) = payload["runs"]
    assert run["format"] == "findings" and "only the findings recorded live" in run["info"][0]
    assert [(f["check"], f["source"]) for f in payload["findings"]] == [("loss-divergence", "live")]
    # the findings file itself as PATH: the same run, named after its folder
    alone = mlcheck_analyze(tmp_path / "exp1" / "findings.jsonl", "--json")
    assert alone.returncode == 1 and alone.stderr == "", alone.stderr
    assert [(f["run"], f["check"]) for f in json.loads(alone.stdout)["findings"]] == [("exp1", "loss-divergence")]
    # select and suppress apply to them too
    quiet = mlcheck_analyze(tmp_path, "--json", "--suppress", "loss-divergence")
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["findings"] == []


def test_too_few_logged_loss_points_are_said_live_and_by_analyze(tmp_path, caplog):
    """Lightning's default `log_every_n_steps=50` over 45-step epochs logs 9 loss points in 10
    epochs: the callback says so once at train start, analyze says so for the run."""
    with caplog.at_level(logging.INFO, logger="mlcheck"):
        log_dir, _ = lightning_fit(tmp_path / "sparse", epochs=10)
    said = [r.getMessage() for r in caplog.records if "log_every_n_steps" in r.getMessage()]
    assert len(said) == 1, said
    assert "Trainer(log_every_n_steps=50) keeps about 9 training-loss points of this run's 450 steps" in said[0]
    assert "not affected" in said[0] and "set Trainer(log_every_n_steps=4)" in said[0]

    result = mlcheck_analyze(tmp_path / "sparse", "--json")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    (run,) = json.loads(result.stdout)["runs"]
    (note,) = run["info"]
    assert "'train_loss_step') has 9 logged point(s)" in note
    assert "loss-divergence (needs 22)" in note and "loss-plateau (needs 100)" in note
    table = mlcheck_analyze(tmp_path / "sparse")
    assert "note:" in table.stdout and "9 logged point(s)" in table.stdout.replace("\n", "")

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mlcheck"):
        lightning_fit(tmp_path / "dense", epochs=1, log_every_n_steps=1)
    assert not [r for r in caplog.records if "log_every_n_steps" in r.getMessage()]


@pytest.mark.parametrize("unit", ["step", "epoch"])
def test_the_minimums_named_are_those_of_the_checks(unit):
    """`loss-divergence` judges a loss that climbs far above its best at the length it names, not
    one point shorter: what the note says is what the check does. In an epoch log the climb stays under the first
    point's loss: one above it in an epoch log of 3 to 7 epochs is the short-run rule's (real38:
    the run ended having undone all of its training), which the note does not speak for."""
    from mlcheck import Monitor
    from mlcheck.checks.optimization import LossDivergence

    need = LossDivergence().min_points(unit)

    def found(n: int) -> bool:
        loss = np.concatenate([np.linspace(2.0, 0.5, n // 2), np.full(n - n // 2, 20.0 if unit == "step" else 1.9)])
        monitor = Monitor(checks=[LossDivergence()], warn=False, default_sinks=False)
        for i, value in enumerate(loss):
            if unit == "step":
                monitor.log_step(i, loss=float(value))
            else:
                monitor.log_epoch(i, train_loss=float(value))
        monitor.close()
        return bool(monitor.findings)

    assert found(need) and not found(need - 1)


@pytest.mark.parametrize(
    "every,per_epoch,total,says",
    [
        (50, 45, 450, "about 9 training-loss points of this run's 450 steps (45 steps per epoch)"),
        (50, 45, None, "one training-loss point every 50 steps (45 steps per epoch) in your logger's curves"),
        (50, 45, 100_000, "fewer than one per epoch. mlcheck's live checks"),
        (50, 1000, 100_000, None),  # 2,000 points, 20 per epoch: nothing to say
        (1, 45, 45, None),  # every step is logged
    ],
)
def test_what_the_live_core_says_about_the_logging_interval(every, per_epoch, total, says):
    from mlcheck.live import LiveOptions, LiveRun

    live = LiveRun(LiveOptions(config=False))
    live.monitor.run.info.total_steps = total
    text = live.note_logging_interval(every, per_epoch, "Trainer(log_every_n_steps={})")
    assert (text is None) if says is None else (says in text and "not affected" in text), text


def test_user18_a_finding_appended_to_a_line_cut_short_by_a_crash_is_read(tmp_path):
    # A run killed mid-write leaves half a line in findings.jsonl; the next fit into the same
    # folder appends its findings right after it, so its first finding shares that line. The
    # line is no JSON, and the whole-line reader dropped the appended finding with the broken one.
    log_dir, _ = lightning_fit(tmp_path, nan_rows=5, log_every_n_steps=5)
    path = log_dir / "findings.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) >= 3, lines
    broken = lines[0][: len(lines[0]) // 2]  # no newline: the write the crash cut short
    path.write_text(broken + "".join(lines[1:]))
    result = mlcheck_analyze(tmp_path, "--json")
    assert result.returncode == 1, result.stderr
    payload = json.loads(result.stdout)
    live = [f["message"] for f in payload["findings"] if f["source"] == "live"]
    assert live == [json.loads(line)["message"] for line in lines[1:]]
    (run,) = payload["runs"]
    (note,) = run["notes"]
    assert note.startswith(f"{path}: 1 line(s) that are not findings were skipped (first: line 1: not JSON ("), note
    assert note.endswith("; the finding a later write appended to it was read)"), note


def test_user18_a_run_whose_training_loss_was_never_logged_says_so(tmp_path):
    # Trainer(accumulate_grad_batches=4): 45 batches an epoch are 12 optimizer steps, so two
    # epochs never reach Lightning's log_every_n_steps=50 and the step-logged training loss is
    # never written. `mlcheck analyze` said "No problems found." and nothing more: the loss-curve
    # checks had judged nothing.
    log_dir, _ = lightning_fit(tmp_path, on_epoch=False, accumulate_grad_batches=4)
    result = mlcheck_analyze(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    (run,) = json.loads(result.stdout)["runs"]
    assert "train_loss" not in run["series"] and run["series"]["val_loss"] == "val_loss", run
    assert run["info"] == [
        f"{log_dir}: no training loss was logged (only the validation loss, 'val_loss'): "
        "loss-divergence, loss-plateau had no training curve to judge, and no check compared the two. Log it "
        "more often: every step (Lightning `Trainer(log_every_n_steps=1)`, `SummaryWriter.add_scalar` at each step)."
    ], run["info"]
