"""The live core (`mlcheck.live`): one pipeline for every callback.

A check that declares what it consumes works in both callbacks without a line in
`integrations/`; option errors name the argument; epoch metrics split one way; no adapter names
a check id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mlcheck import Check, Monitor
from mlcheck.checks.base import Signal, registry
from mlcheck.live import BatchRoute, LiveOptions, LiveRun, split_epoch_metrics
from tests.lightning_trainer import quiet_trainer

REPO = Path(__file__).resolve().parents[1]
N_ROWS = 300


class RowCounter(Check):
    """Counts every training row of the first pass (a custom check, defined in one place).

    What it does:
        Counts rows.
    Why it matters:
        Proves the routing.
    How to fix:
        Nothing.
    """

    id = "test-row-counter"
    family = "test"
    consumes = frozenset({Signal.EVERY_BATCH})

    def reset(self) -> None:
        self.rows = {"train": 0, "val": 0}

    def on_batch(self, batch, run):
        if batch.epoch == 0 and batch.targets is not None:
            self.rows[batch.split] += len(batch.targets)
        return ()


def _data(n: int = N_ROWS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 8)).astype(np.float32), rng.integers(0, 3, size=n)


def test_a_check_that_needs_every_batch_works_in_lightning_without_adapter_code(tmp_path):
    import lightning.pytorch as lpt

    x, y = _data()

    class Model(lpt.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(8, 3)

        def training_step(self, batch, _):
            return torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])

        def validation_step(self, batch, _):
            self.log("val_loss", torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    from mlcheck.integrations.lightning import MLCheckCallback

    def loader(a, b):
        return torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.tensor(a), torch.tensor(b)), batch_size=16
        )

    counter = RowCounter()
    cb = MLCheckCallback(checks=[counter], log_dir=False, sample_batches=1)
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    trainer.fit(Model(), loader(x[:240], y[:240]), loader(x[240:], y[240:]))
    assert counter.rows == {"train": 240, "val": 60}


def test_a_check_that_needs_every_batch_works_in_keras_without_adapter_code(tmp_path):
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    x, y = _data()
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    counter = RowCounter()
    model.fit(
        x[:240],
        y[:240],
        validation_data=(x[240:], y[240:]),
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[MLCheckCallback(checks=[counter], log_dir=None, sample_batches=1)],
    )
    assert counter.rows == {"train": 240, "val": 60}


def test_routing_follows_the_declarations():
    options = LiveOptions(sample_batches=2, sample_every_n_batches=5, hash_epochs=1)
    live = LiveRun(options, [RowCounter()])
    routes = [live.route_batch("train") for _ in range(7)]
    assert routes == [BatchRoute.SAMPLE, BatchRoute.SAMPLE] + [BatchRoute.FULL_PASS] * 3 + [
        BatchRoute.SAMPLE,
        BatchRoute.FULL_PASS,
    ]
    live.end_pass("train")
    assert live.route_batch("train") is BatchRoute.SKIP  # batch 7, second pass: neither
    assert live.full_pass_checks == ("test-row-counter",)
    defaults = LiveRun(LiveOptions())
    declared = {c.id for c in registry().values() if Signal.EVERY_BATCH in c.signals()}
    assert set(defaults.full_pass_checks) == declared and declared


@pytest.mark.parametrize(
    ("total", "every", "patience", "expected"),
    [
        (None, 25, 5, 25),  # length unknown: every_n_steps
        (1000, 25, 5, 25),  # long enough: unchanged
        (200, 25, 5, 25),  # 5 sampled steps (0-100) in the first half already
        (199, 25, 5, 24),
        (90, 25, 5, 11),  # a 2-epoch digits MLP: 9 sampled steps, a verdict by step 44
        (76, 25, 5, 10),
        (30, 25, 5, 10),  # the floor: TheDeepChecker's interval
        (90, 5, 5, 5),  # an every_n_steps the user set is kept
        (90, 50, 5, 50),
        (90, 10**6, 5, 10**6),
        (90, 25, 3, 22),  # a check's own patience sets the window: 3 sampled steps by step 44
    ],
)
def test_layers20_a_short_planned_run_samples_its_layers_more_often(total, every, patience, expected):
    """`plan_layer_steps`: a planned run too short for a symptom from its start to hold on
    `patience` sampled steps within its first half is sampled every total // (2 x (patience - 1))
    steps, never more often than every 10, where `every_n_steps` is at its default (an interval
    the user set is kept); the other statistics keep `every_n_steps`."""
    from mlcheck.checks.layers import DeadUnits
    from mlcheck.run import RunInfo

    live = LiveRun(LiveOptions(every_n_steps=every), [DeadUnits(patience=patience)], info=RunInfo(total_steps=total))
    assert live.layer_every == expected
    assert [s for s in range(100) if live.layer_step_due(s)] == list(range(0, 100, expected))
    assert live.options.every_n_steps == every
    live.monitor.run.info.total_steps = 1000  # planned later (Lightning's on_train_start)
    assert live.plan_layer_steps() == every
    assert [s for s in range(100) if live.layer_step_due(s)] == list(range(0, 100, every))


class BatchLog(Check):
    """Notes each batch it is handed (a sampled check: the first batches, then one in 100).

    What it does:
        Notes batches.
    Why it matters:
        Proves the routing.
    How to fix:
        Nothing.
    """

    id = "test-batch-log"
    family = "test"

    def reset(self) -> None:
        self.seen: list[tuple[str, int, int]] = []

    def on_batch(self, batch, run):
        self.seen.append((batch.split, batch.epoch, batch.index))
        return ()


def _short_validation_fit(adapter: str, checks: list, tmp_path) -> Monitor:
    """Three epochs with 240 training rows (15 batches) and a validation split of two batches
    (32 + 28 rows, fewer than the 3 first batches sampled): the callback's monitor."""
    x, y = _data()
    xt, yt, xv, yv = x[:240], y[:240], x[240:], y[240:]
    xv[-6:], yv[-6:] = xt[:6], yt[:6]  # exact copies of training rows, all in the last validation batch
    if adapter == "keras":
        import keras

        from mlcheck.integrations.keras import MLCheckCallback

        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        cb = MLCheckCallback(checks=checks, log_dir=None, overfit_batch=False, warn=False)
        model.fit(
            xt,
            yt,
            validation_data=(xv, yv),
            batch_size=16,
            validation_batch_size=32,
            epochs=3,
            verbose=0,
            callbacks=[cb],
        )
        return cb.monitor
    import lightning.pytorch as lpt

    from mlcheck.integrations.lightning import MLCheckCallback

    class Model(lpt.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(8, 3)

        def training_step(self, batch, _):
            return torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])

        def validation_step(self, batch, _):
            self.log("val_loss", torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def loader(a, b, size):
        return torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.tensor(a), torch.tensor(b)), batch_size=size
        )

    cb = MLCheckCallback(checks=checks, log_dir=False, overfit_batch=False, warn=False)
    trainer = quiet_trainer(max_epochs=3, callbacks=[cb], default_root_dir=tmp_path)
    trainer.fit(Model(), loader(xt, yt, 16), loader(xv, yv, 32))
    return cb.monitor


@pytest.mark.parametrize("adapter", ["lightning", "keras"])
def test_a_short_validation_split_is_sampled_in_its_first_pass_only(adapter, tmp_path):
    # its two batches come again unchanged each epoch: the third first batch would be a repeat
    log = BatchLog()
    _short_validation_fit(adapter, [log, "train-val-overlap"], tmp_path)
    assert [s for s in log.seen if s[0] == "val"] == [("val", 0, 0), ("val", 0, 1)]
    assert [s for s in log.seen if s[0] == "train"] == [("train", 0, 0), ("train", 0, 1), ("train", 0, 2)]


@pytest.mark.parametrize("adapter", ["lightning", "keras"])
def test_copies_in_the_last_validation_batch_are_still_caught(adapter, tmp_path):
    monitor = _short_validation_fit(adapter, ["train-val-overlap"], tmp_path)
    (found,) = [f for f in monitor.findings if f.check == "train-val-overlap"]
    assert found.evidence["val_in_train"] == 6 and found.evidence["val_samples"] == 60
    assert found.epoch == 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"stop_on": "errors"}, "stop_on"),
        ({"every_n_steps": 0}, "every_n_steps"),
        ({"every_n_steps": 2.5}, "every_n_steps"),
        ({"sample_batches": -1}, "sample_batches"),
        ({"sample_every_n_batches": 0}, "sample_every_n_batches"),
        ({"hash_epochs": True}, "hash_epochs"),
        ({"train_start_steps": 0}, "overfit_steps"),
        ({"train_start_seconds": float("nan")}, "overfit_seconds"),
        ({"task": "segmentation"}, "task"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_options_name_the_argument(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        LiveOptions(**kwargs)


def test_both_callbacks_validate_alike():
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback

    for bad in ({"sample_every_n_batches": 0}, {"suppress": ["no-such-check"]}, {"full_pass_checks": ["nope"]}):
        errors = []
        for cls in (LightningCallback, KerasCallback):
            with pytest.raises(ValueError) as info:
                cb = cls(**bad)
                LiveRun(cb.options, cb.checks, cb.suppress)  # full_pass_checks is judged with the checks
            errors.append(str(info.value))
        assert errors[0] == errors[1]


def test_suppress_as_a_string_is_one_id():
    monitor = Monitor(suppress="loss-plateau", default_sinks=False)
    assert monitor.suppress == {"loss-plateau"}


def test_epoch_metrics_split_one_way():
    lightning = split_epoch_metrics(
        {
            "train_loss_epoch": 0.5,
            "train_loss_step": 0.4,
            "acc": 0.9,
            "loss": 0.7,
            "lr-Adam": 1e-3,
            "val_loss": 0.6,
            "val_acc": 0.8,
            "test_loss": 1.0,
        },
        val_names={"acc"},
    )
    assert lightning.val_loss == 0.6 and lightning.val == {"acc": 0.8}
    assert lightning.train == {"lr-Adam": 1e-3}
    keras_logs = split_epoch_metrics(
        {"loss": 0.7, "accuracy": 0.9, "val_loss": 0.6, "val_accuracy": 0.8, "learning_rate": 0.01}
    )
    assert keras_logs.train_loss == 0.7 and keras_logs.train == {"accuracy": 0.9}
    assert keras_logs.val_loss == 0.6 and keras_logs.val == {"accuracy": 0.8}


def test_no_check_id_is_named_in_integrations():
    ids = set(registry())
    named = []
    for path in (REPO / "integrations").rglob("*.py"):
        for match in re.finditer(r"[\"']([a-z][a-z0-9]*(?:-[a-z0-9]+)+)[\"']", path.read_text(encoding="utf-8")):
            if match.group(1) in ids:
                named.append(f"{path.relative_to(REPO)}: {match.group(1)}")
    assert not named, named


def _lightning_fit(tmp_path, module, x, y, **cb_kwargs):
    from mlcheck.integrations.lightning import MLCheckCallback

    cb = MLCheckCallback(**{"log_dir": False, "warn": False, **cb_kwargs})
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32)
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path)
    trainer.fit(module, data)
    return cb.findings


def _classifier(softmax_output: bool):
    import lightning.pytorch as lpt

    class Net(lpt.LightningModule):
        def __init__(self):
            super().__init__()
            layers = [torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)]
            self.net = torch.nn.Sequential(*layers, *([torch.nn.Softmax(dim=1)] if softmax_output else []))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    return Net()


def test_softmax_into_a_from_logits_loss_is_named_live(tmp_path):
    x, y = _data()
    findings = _lightning_fit(tmp_path, _classifier(softmax_output=True), x, y)
    ids = [f.check for f in findings]
    assert "output-loss-mismatch" in ids, ids
    later = [
        f for f in findings[ids.index("output-loss-mismatch") + 1 :] if f.check in ("overfit-batch", "loss-plateau")
    ]
    for finding in later:  # symptoms name the cause and drop their own advice
        assert finding.evidence["likely_cause"] == "output-loss-mismatch"
        assert "output-loss-mismatch" in finding.hint and "learning rate" not in finding.hint


def test_nan_inputs_come_before_the_symptoms_they_cause(tmp_path):
    x, y = _data()
    x[::3, 2] = np.nan
    findings = _lightning_fit(tmp_path, _classifier(softmax_output=False), x, y)
    serious = [f for f in findings if f.severity.value != "info"]
    assert serious and serious[0].check == "nonfinite-input", [f.check for f in serious]
    for finding in serious[1:]:
        if finding.check in ("overfit-batch", "nonfinite-loss"):
            assert finding.evidence["likely_cause"] == "nonfinite-input"


def test_one_nan_input_mid_epoch_is_named_before_the_nan_loss_it_causes():
    """Keras, one NaN value in one row: the first pass holds batches back to judge them in blocks,
    so `nonfinite-loss` came first and did not name its cause; a non-finite step now has the held
    batches judged first."""
    import keras
    from sklearn.datasets import load_digits

    from mlcheck.integrations.keras import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype("float32")
    x[700, 3] = np.nan  # mid-epoch whatever the shuffle
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(log_dir=None, warn=False, overfit_batch=False)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    ids = [f.check for f in cb.findings if f.severity.value == "error"]
    assert ids and ids[0] == "nonfinite-input", ids
    losses = [f for f in cb.findings if f.check == "nonfinite-loss"]
    assert losses and all(f.evidence.get("likely_cause") == "nonfinite-input" for f in losses), [
        f.message for f in losses
    ]
    # the training loss's step finding carries its epoch too, as the weight and gradient ones do
    assert [f.epoch for f in losses if f.key == "train_loss"] == [0]


def test_callbacks_read_the_projects_mlcheck_table(tmp_path, monkeypatch, caplog):
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    (tmp_path / "pyproject.toml").write_text(
        '[tool.mlcheck]\nsuppress = ["unnormalized-input"]\n\n[tool.mlcheck.checks.loss-divergence]\nfactor = 7.5\n'
    )
    monkeypatch.chdir(tmp_path)
    x, y = _data()
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(log_dir=None)
    with caplog.at_level("INFO", logger="mlcheck"):
        model.fit(x * 1000, y, epochs=1, verbose=0, callbacks=[cb])  # unscaled inputs, suppressed
    ids = {c.id for c in cb.monitor.checks}
    assert "unnormalized-input" not in ids and "unnormalized-input" not in {f.check for f in cb.findings}
    assert next(c for c in cb.monitor.checks if c.id == "loss-divergence").factor == 7.5
    assert any(str(tmp_path / "pyproject.toml") in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="pyproject.toml"):  # a bad table is named at construction
        (tmp_path / "pyproject.toml").write_text('[tool.mlcheck]\nsuppress = ["no-such-check"]\n')
        MLCheckCallback(log_dir=None)
    assert MLCheckCallback(log_dir=None, config=False).options.config is False


def test_a_fit_ends_with_a_summary_in_the_log_and_tensorboard(tmp_path, caplog):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = _data()
    with caplog.at_level("INFO", logger="mlcheck"):
        findings = _lightning_fit(tmp_path, _classifier(softmax_output=False), x, y, log_dir=tmp_path / "tb")
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mlcheck: checked")]
    assert len(summary) == 1
    assert ("no problems found" in summary[0]) == (not findings)
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    events.Reload()
    texts = [t.tensor_proto.string_val[0].decode() for t in events.Tensors("mlcheck/summary")]
    assert texts == summary


def test_lightning_csv_logger_runs_keep_their_findings_apart(tmp_path):
    import lightning.pytorch as lpt

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = _data()
    x[::5, 0] = np.nan  # a finding in each run
    for _ in range(2):
        cb = MLCheckCallback(warn=False, overfit_batch=False)
        data = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32
        )
        trainer = quiet_trainer(max_epochs=1, callbacks=[cb], logger=lpt.loggers.CSVLogger(tmp_path))
        trainer.fit(_classifier(softmax_output=False), data)
    for version in ("version_0", "version_1"):
        lines = (tmp_path / "lightning_logs" / version / "findings.jsonl").read_text().splitlines()
        assert lines and all(json.loads(line)["run"] == version for line in lines)


def test_callbacks_take_check_ids():
    from mlcheck.integrations.lightning import MLCheckCallback

    live = LiveRun(LiveOptions(config=False), ["loss-divergence", "train-val-gap"])
    assert [c.id for c in live.monitor.checks] == ["loss-divergence", "train-val-gap"]
    with pytest.raises(ValueError, match="checks names unknown check ids"):
        MLCheckCallback(checks=["loss-divergance"])


def test_sync_answers_follow_checks_switched_off_between_epochs():
    """`sync` runs at every epoch end and skips its work while no check was switched off since
    the last one; a check switched off (here, or on rank zero) still changes its answers."""
    live = LiveRun(LiveOptions(config=False), ["class-imbalance", "loss-divergence"])
    assert live.data_active
    live.sync()  # nothing changed: the same answers
    assert live.data_active
    live.monitor.disable("class-imbalance", "broken")  # switched off after an internal error
    live.sync()
    assert not live.data_active
    other = LiveRun(LiveOptions(config=False), ["class-imbalance", "loss-divergence"])
    other.sync(["class-imbalance"])  # switched off on rank zero, broadcast
    assert not other.data_active


_HEALTHY_FIT = """
import logging, sys
import lightning.pytorch as lpt
import torch
from sklearn.datasets import load_digits
from mlcheck.integrations.lightning import MLCheckCallback

if sys.argv[1] == "configured":
    logging.basicConfig(level=logging.WARNING)
x, y = load_digits(return_X_y=True)
data = torch.utils.data.TensorDataset(torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y))

class Net(lpt.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def training_step(self, batch, _):
        return torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)

torch.manual_seed(0)
trainer = lpt.Trainer(max_epochs=2, callbacks=[MLCheckCallback(log_dir=False)], logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
trainer.fit(Net(), torch.utils.data.DataLoader(data, batch_size=64, shuffle=True))
"""


@pytest.mark.parametrize("logging_setup", ["none", "configured"])
def test_a_clean_run_says_it_was_checked_when_nothing_configured_logging(tmp_path, logging_setup):
    """Python drops INFO records when logging is not configured: the clean run's summary goes to
    stderr itself; a user's own logging configuration (WARNING here) is respected."""
    import subprocess
    import sys

    script = tmp_path / "fit.py"
    script.write_text(_HEALTHY_FIT)
    done = subprocess.run(
        [sys.executable, str(script), logging_setup], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = [line for line in done.stderr.splitlines() if line.startswith("mlcheck: checked")]
    if logging_setup == "none":
        assert len(said) == 1 and "no problems found" in said[0], done.stderr[-2000:]
    else:
        assert said == []
