"""Arguments people get wrong, refused at the constructor with a message naming the argument,
never mid-run: a log_dir that is a file, a lone check id or class, a suppress that is no list."""

import inspect
from pathlib import Path

import numpy as np
import pytest

import mlcheck
from mlcheck import Monitor
from mlcheck.checks.base import get_check
from mlcheck.live import LiveOptions, LiveRun
from tests.lightning_trainer import quiet_trainer


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a directory")
    return path


def test_monitor_refuses_a_log_dir_that_is_a_file(a_file):
    with pytest.raises(ValueError, match=r"log_dir must be a directory, but .*notes.txt' is a file"):
        Monitor(log_dir=a_file)
    with pytest.raises(ValueError, match="it lies under"):
        Monitor(log_dir=a_file / "run1")
    with pytest.raises(TypeError, match="log_dir must be a directory path"):
        Monitor(log_dir=123)


def test_an_empty_log_dir_is_refused_by_monitor_and_both_callbacks(tmp_path, monkeypatch):
    """Was: `Path("")`, the working directory, so findings.jsonl and event files landed there
    unasked (a `log_dir=os.environ.get("LOGS", "")` with the variable unset)."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback

    monkeypatch.chdir(tmp_path)
    for make in (Monitor, KerasCallback, LightningCallback):
        with pytest.raises(ValueError, match=r'log_dir is an empty string: give a directory path \("\." .*False'):
            make(log_dir="")
    assert list(tmp_path.iterdir()) == []


def test_lightning_callback_refuses_bad_log_dir_and_takes_a_lone_check(a_file):
    from mlcheck.integrations.lightning import MLCheckCallback

    with pytest.raises(ValueError, match="log_dir must be a directory"):
        MLCheckCallback(log_dir=str(a_file))
    MLCheckCallback(log_dir=False)  # still: no files
    MLCheckCallback(log_dir=a_file.parent / "new" / "run")  # not there yet: created at fit

    # a lone id, class or instance is one check, as for Monitor and the Keras callback
    # (was: "unknown check ids ['-', 'c', 'd', ...]", the id's characters)
    for lone in ("nonfinite-loss", get_check("nonfinite-loss"), get_check("nonfinite-loss")()):
        cb = MLCheckCallback(checks=lone)
        live = LiveRun(LiveOptions(config=False), cb.checks)
        assert [c.id for c in live.monitor.checks] == ["nonfinite-loss"]
    with pytest.raises(TypeError, match="checks must be a list of checks"):
        MLCheckCallback(checks=5)
    with pytest.raises(TypeError, match="suppress must be a list of check ids, got 5"):
        MLCheckCallback(suppress=5)
    # was: accepted here, ValueError only when the fit started
    with pytest.raises(ValueError, match="full_pass_checks names unknown check ids"):
        MLCheckCallback(full_pass_checks=["train-val-overlap", "no-such-check"])


def test_keras_fit_with_a_log_dir_that_is_a_file_is_refused_before_training(a_file):
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    with pytest.raises(TypeError, match="suppress must be a list of check ids"):
        MLCheckCallback(suppress=5)
    with pytest.raises(TypeError, match="log_dir must be a directory path"):
        MLCheckCallback(log_dir=123)  # was pathlib's "expected str, bytes or os.PathLike"
    # was: constructed, then NotADirectoryError out of model.fit at the first batch_loss event
    with pytest.raises(ValueError, match="log_dir must be a directory"):
        MLCheckCallback(log_dir=a_file, overfit_batch=False)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
    cb = MLCheckCallback(log_dir=a_file.parent / "logs", overfit_batch=False)
    model.fit(x, x[:, :2], epochs=1, verbose=0, callbacks=[cb])
    assert (a_file.parent / "logs" / "train").is_dir()


def test_two_differently_configured_lightning_callbacks_share_a_trainer(tmp_path):
    """Was: Lightning's RuntimeError "Found more than one stateful callback of type
    `MLCheckCallback`" before the first step."""
    import lightning.pytorch as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from mlcheck.integrations.lightning import MLCheckCallback

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(8, 3)

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-2)

    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:200], y[:200]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[:56], y[:56]), batch_size=64)  # copied from training
    everything = MLCheckCallback(overfit_batch=False, suppress=["train-val-overlap"])
    overlap = MLCheckCallback(checks=["train-val-overlap"], stop_on="error", overfit_batch=False)
    assert MLCheckCallback().state_key == "MLCheckCallback"  # checkpoints of the default keep resuming
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[everything, overlap],
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.warns(mlcheck.MLCheckWarning, match="train-val-overlap"):
        trainer.fit(Net(), train, val)
    assert [f.check for f in overlap.findings] == ["train-val-overlap"]
    assert "train-val-overlap" not in {f.check for f in everything.findings}
    assert trainer.global_step < 2 * 7  # the second callback's stop_on stopped the run


def test_a_near_miss_check_id_names_the_id_meant():
    """The class name, underscores, other case or a typo: the message says which id was meant
    (was: only the full list of 31 ids)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "explain", "LossDivergence"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert "Did you mean 'loss-divergence'?" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "explain", "zzz"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "Did you mean" not in out.stderr and "Available checks are" in out.stderr

    with pytest.raises(ValueError, match=r"\['class_imbalance'\] \(did you mean 'class-imbalance'\?\); available"):
        Monitor(suppress=["class_imbalance"])
    with pytest.raises(
        ValueError, match="'train-val-gap' for 'Train-Val-Gap', 'loss-divergence' for 'loss-divergance'"
    ):
        Monitor(checks=["loss-divergance", "Train-Val-Gap", "zzz"])


def test_a_check_named_twice_is_one_check_the_later_one():
    """`[*default_checks(), LossDivergence(...)]` built two instances of one check: both judged
    the run and their findings were deduplicated by id, so which arguments counted was chance."""
    from mlcheck.checks.base import default_checks
    from mlcheck.checks.optimization import LossDivergence
    from mlcheck.live import configured_checks

    mine = LossDivergence()
    checks = [*default_checks(), "loss-plateau", mine]
    ids = [c.id for c in default_checks()]
    for built in (Monitor(checks=checks).checks, configured_checks(checks, (), False)[0]):  # the callbacks
        assert [c.id for c in built] == ids  # one per id, in the defaults' order
        assert any(c is mine for c in built)
    (kept,) = [c for c in Monitor(checks=[LossDivergence, "loss-divergence", mine]).checks]
    assert kept is mine


def test_a_misspelt_check_table_in_pyproject_names_the_id_meant(tmp_path):
    import subprocess
    import sys

    (tmp_path / "pyproject.toml").write_text("[tool.mlcheck]\n[tool.mlcheck.checks.loss-divergance]\nfactor = 5.0\n")
    (tmp_path / "train.csv").write_text("epoch,loss\n0,1.0\n1,0.5\n")
    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "train.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "unknown check id(s) loss-divergance (did you mean 'loss-divergence'?)" in out.stderr


@pytest.mark.parametrize("name", ["strict", "warn", "overfit_batch", "nonfinite_origin"])
def test_flags_refuse_strings_in_every_callback(name):
    """strict="yes" (or "false", which is truthy) was taken as True without a word."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback

    for callback in (MLCheckCallback, KerasCallback):  # Keras had no nonfinite_origin
        with pytest.raises(TypeError, match=rf"{name} must be True"):
            callback(**{name: "false"})
        callback(**{name: np.bool_(False)})  # numpy's bool is a bool
    if name in ("strict", "warn"):
        with pytest.raises(TypeError, match=rf"{name} must be True or False, got 'yes'"):
            Monitor(**{name: "yes"})


def test_suppress_none_means_none_suppressed_in_every_callback():
    """Monitor(suppress=None) always meant no check suppressed; the callbacks refused it."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback

    for callback in (MLCheckCallback, KerasCallback):
        assert callback(suppress=None).suppress == ()
        with pytest.raises(TypeError, match="suppress must be a list of check ids, got 3"):
            callback(suppress=3)
    Monitor(suppress=None).close()


def test_num_classes_of_one_is_refused():
    from mlcheck.integrations.lightning import MLCheckCallback

    with pytest.raises(ValueError, match=r"num_classes must be >= 2, got 1 \(a classifier"):
        MLCheckCallback(log_dir=False, num_classes=1)
    assert LiveOptions(num_classes=2).num_classes == 2


def test_observations_after_close_are_ignored_once_said(tmp_path, caplog):
    """After close() the sinks are shut: a late observation used to reach the checks and write
    to closed files; now it is ignored, and one warning says so."""
    monitor = Monitor(log_dir=tmp_path)
    monitor.log_step(0, loss=1.0)
    monitor.close()
    with pytest.warns(mlcheck.MLCheckInternalWarning, match=r"Monitor.log_step\(\) after close\(\) is ignored"):
        assert monitor.log_step(1, loss=float("nan")) == []
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once only
        assert monitor.log_epoch(0, val_loss=float("nan")) == []
        assert monitor.log_batch(np.full((4, 3), np.nan), np.zeros(4)) == []
        assert monitor.log_steps(np.arange(3), loss=np.full(3, np.nan)) == []
    assert monitor.findings == []
    assert not (tmp_path / "findings.jsonl").exists() or (tmp_path / "findings.jsonl").read_text() == ""


def _fit_tiny_lightning_model(middle, cb) -> None:
    """Two steps of `nn.Sequential(Linear(4, 8), middle, Linear(8, 2))` (the modules "net.0",
    "net.1", "net.2") on 16 random rows, with the callback `cb`."""
    import lightning.pytorch as pl
    import torch
    from torch import nn

    class Model(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), middle, nn.Linear(8, 2))

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    trainer = quiet_trainer(max_steps=2, callbacks=[cb])  # fmt: skip
    trainer.fit(Model(), torch.utils.data.DataLoader(data, batch_size=8))


def test_a_log_dir_starting_with_a_tilde_is_refused_not_made_literally(tmp_path, monkeypatch):
    """Round 11: `Monitor(log_dir="~/runs")` made a folder named `~` in the working directory
    (Python does not expand it), where a later `rm -rf ~` would be a disaster."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback

    monkeypatch.chdir(tmp_path)
    for make in (Monitor, KerasCallback, LightningCallback):
        with pytest.raises(ValueError, match=r"log_dir '~/runs' starts with '~', which Python does not expand"):
            make(log_dir="~/runs")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_checks_list_runs_none_and_says_so_once(tmp_path, caplog):
    """Round 11: `checks=[]` ran no check without a word (a run that reads as clean). It means
    "none" (a Monitor kept for its files alone is no contradiction): said once, at INFO, by
    `Monitor` and by the callback's run; the default (`checks=None`) says nothing of it."""
    import logging

    from mlcheck.integrations.lightning import MLCheckCallback

    said = "checks=[] names no check, so this run is watched by none"
    with caplog.at_level(logging.INFO, logger="mlcheck"):
        Monitor(checks=[]).close()
        assert [r.levelno for r in caplog.records if said in r.getMessage()] == [logging.INFO]
        caplog.clear()
        Monitor().close()
        cb = MLCheckCallback(checks=[], log_dir=False)
        assert not [r for r in caplog.records if said in r.getMessage()]
        _fit_tiny_lightning_model(__import__("torch").nn.ReLU(), cb)
    assert [r.levelno for r in caplog.records if said in r.getMessage()] == [logging.INFO]
    assert cb.findings == []
    # the fit's last line said "checked 2 steps, 1 epoch, 0 checks: no problems found."
    assert "mlcheck: 2 steps, 1 epoch, 0 checks: no check ran (checks=[]), so nothing was judged." in caplog.text


def test_lightning_nonfinite_allow_takes_a_lone_name(tmp_path):
    """`nonfinite_allow="net.1"` allows that module (was: its characters, "n", "e", ..., "1",
    so the module was named as the NaN origin all the same), and a non-string is refused."""
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    class Mask(nn.Module):  # builds -inf on purpose, as an attention mask does
        def forward(self, x):
            return x.masked_fill(x < 0, float("-inf"))

    findings = {}
    for allow in ((), "net.1"):
        cb = MLCheckCallback(
            checks=["nonfinite-origin"], nonfinite_allow=allow, log_dir=False, overfit_batch=False, warn=False
        )
        _fit_tiny_lightning_model(Mask(), cb)
        findings[allow] = [f.evidence.get("layer") for f in cb.findings if f.check == "nonfinite-origin"]
    assert findings[()] == ["net.1"]  # not allowed: named
    assert "net.1" not in findings["net.1"]
    with pytest.raises(TypeError, match="nonfinite_allow must be a list of module paths or class names"):
        MLCheckCallback(nonfinite_allow=[nn.Linear])
    # the Keras callback reads the argument the same way (it took a class and never matched it)
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

    assert KerasCallback(nonfinite_allow="encoder/mask").nonfinite_allow == ("encoder/mask",)
    with pytest.raises(TypeError, match="nonfinite_allow must be a list of module paths or class names"):
        KerasCallback(nonfinite_allow=[nn.Linear])


def test_small16_an_empty_nonfinite_allow_name_is_refused_by_both_callbacks():
    """`nonfinite_allow=""` (an unset environment variable, a trailing comma split) was accepted and
    matched the root module, so every module was allowed to make NaN/Inf and nonfinite-origin named
    none; a blank name anywhere in the list is now refused at the constructor, naming the argument."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback

    for make in (KerasCallback, LightningCallback):
        for allow in ("", "  ", ["net.1", ""], ("encoder/mask", " ")):
            with pytest.raises(ValueError, match=r"nonfinite_allow holds an empty module name .*whole model"):
                make(nonfinite_allow=allow, log_dir=False)
        assert make(nonfinite_allow=["net.1"], log_dir=False).nonfinite_allow == ("net.1",)


def test_a_nonfinite_allow_mapping_is_refused_not_read_as_its_keys():
    # a dict passed where a list of names is asked for was silently taken as its keys
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback

    for make in (KerasCallback, LightningCallback):
        with pytest.raises(TypeError, match=r"nonfinite_allow must be a list .* got a mapping"):
            make(nonfinite_allow={"net.1": 1}, log_dir=False)


def test_a_nonfinite_allow_name_matching_no_module_is_warned_at_fit_start(tmp_path):
    """`nonfinite_allow=["net.l"]` (meant: "net.1") was accepted silently and allowed nothing:
    the mask module was named as the NaN origin all the same. At the start of the fit each
    callback now warns once, naming the argument and the nearest valid names; names that
    match a path, a parent's path or a class name stay silent."""
    import warnings

    import keras
    from torch import nn

    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback

    def lightning_fit(allow):
        cb = MLCheckCallback(nonfinite_allow=allow, log_dir=False, overfit_batch=False, warn=False)
        _fit_tiny_lightning_model(nn.ReLU(), cb)

    x, y = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32), np.arange(16) % 2
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="mask")], name="encoder")

    def keras_fit(allow):
        model = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2, name="out")])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        cb = KerasCallback(nonfinite_allow=allow, log_dir=None, overfit_batch=False, warn=False)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[cb])

    for fit, typo, meant, good in (
        (lightning_fit, "net.l", "'net.1'", ["net.1", "net", "ReLU"]),
        (keras_fit, "encoder/mask_", "'encoder/mask'", ["encoder/mask", "encoder", "Dense"]),
    ):
        with pytest.warns(mlcheck.MLCheckInternalWarning) as caught:
            fit([*good, typo])
        (text,) = [str(w.message) for w in caught if "nonfinite_allow" in str(w.message)]
        assert f"nonfinite_allow names [{typo!r}], which match no module path or class name" in text
        assert meant in text.split("did you mean ")[1].split("?")[0]  # among the nearest names
        with warnings.catch_warnings():
            warnings.simplefilter("error", mlcheck.MLCheckInternalWarning)
            fit(good)


def test_layer_recorder_names_its_wrong_arguments():
    """Was: AttributeError from deep inside ('str' has no named_modules; 'list' has no
    on_layers, raised after the user's step had run)."""
    import torch

    from mlcheck.integrations.torch_layers import LayerRecorder

    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        LayerRecorder("model")
    recorder = LayerRecorder(torch.nn.Linear(2, 2))
    ran = []
    with pytest.raises(TypeError, match=r"breakpoints must be a mlcheck.integrations.torch_breakpoints"):
        with recorder.step(Monitor(), 0, breakpoints=["dead-units"]):
            ran.append(True)
    assert ran == [] and not recorder.recording


def test_log_dir_false_means_no_files_everywhere(tmp_path, monkeypatch):
    """The Lightning callback took log_dir=False for "no files"; Monitor and the Keras callback
    refused it with a TypeError."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

    monkeypatch.chdir(tmp_path)
    with Monitor(log_dir=False) as monitor:
        monitor.log_step(0, loss=float("nan"))
    assert monitor.log_dir is None and [f.check for f in monitor.findings] == ["nonfinite-loss"]
    assert KerasCallback(log_dir=False).log_dir is None
    assert list(tmp_path.iterdir()) == []


def test_config_read_twice_is_parsed_once_and_never_stale(tmp_path):
    """The callbacks read [tool.mlcheck] at construction and again at fit start; the parse is
    kept per content, so an edited file is read afresh and a returned Config is the caller's."""
    from mlcheck.config import load_config

    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.mlcheck]\nsuppress = ["lr-too-low"]\n')
    first = load_config(path)
    first.suppress.append("loss-plateau")  # the caller's copy
    assert load_config(path).suppress == ["lr-too-low"]
    path.write_text('[tool.mlcheck]\nsuppress = ["lr-too-hi"]\n')  # same size, same second
    with pytest.raises(ValueError, match="lr-too-hi"):
        load_config(path)


def test_cost16_a_settled_config_is_checked_once_per_edit(tmp_path, monkeypatch):
    """Every run reads the nearest pyproject.toml (construction, fit start): a file last changed
    SETTLED_SECONDS ago or more is read and checked once per (path, inode, size, times), the
    misplaced-table search over its [tool] keys included; an edit is read afresh, a file
    changed just now every time (its time could stay the same through a second edit)."""
    import os
    import time

    from mlcheck import config
    from mlcheck.live import configured_checks

    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.mlcheck]\nsuppress = ["lr-too-low"]\n[tool.ruff]\nline-length = 99\n')
    monkeypatch.chdir(tmp_path)
    parsed = []
    real = config._parsed
    monkeypatch.setattr(config, "_parsed", lambda p: parsed.append(p) or real(p))
    # written now: not settled, read at every run as before
    for _ in range(2):
        assert configured_checks(None, (), None) == (None, ("lr-too-low",), path)
    assert len(parsed) == 2
    monkeypatch.setattr(config, "SETTLED_SECONDS", 0.0, raising=False)  # as if written long ago
    first = config.load_config()
    first.suppress.append("loss-plateau")  # the caller's own copy
    for _ in range(3):
        assert configured_checks(None, ["class-imbalance"], None) == (None, ("class-imbalance", "lr-too-low"), path)
    assert len(parsed) == 3 and config.load_config(Path("pyproject.toml")).source == Path("pyproject.toml")
    # an edit of the same size, its time moved on: read afresh
    path.write_text('[tool.mlcheck]\nsuppress = ["lr-too-hi"]\n[tool.ruff]\nline-length = 999\n')
    later = time.time_ns() + 5_000_000_000
    os.utime(path, ns=(later, later))
    with pytest.raises(ValueError, match="lr-too-hi"):
        configured_checks(None, (), None)
    assert len(parsed) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"info": {"task": "classification", "num_classes": 10}}, "info must be a RunInfo or None"),
        ({"sinks": [object()]}, "sinks must hold sinks"),
        ({"sinks": 5}, "sinks must be a list of sinks"),
        ({"default_sinks": "no"}, "default_sinks must be True or False, got 'no'"),
        ({"curves": "no"}, "curves must be True, False or None, got 'no'"),
        ({"run_name": 5}, "run_name must be a string or None"),
    ],
)
def test_monitor_refuses_arguments_that_would_fail_mid_run(kwargs, message):
    """Each was taken: a dict for `info` switched five checks off at the first step (their
    findings lost), `default_sinks="no"` was true, `curves="no"` asked for a log_dir."""
    with pytest.raises(TypeError, match=message):
        Monitor(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "clasification"}, "task must be None, 'classification' or 'regression'"),
        ({"num_classes": "10"}, "RunInfo.num_classes must be an integer"),
        ({"total_steps": 1.5}, "RunInfo.total_steps must be an integer"),
        ({"max_epochs": -1}, "RunInfo.max_epochs must be >= 0"),
        ({"has_scheduler": "yes"}, "RunInfo.has_scheduler must be True, False or None"),
        ({"higher_is_better": ["accuracy"]}, "RunInfo.higher_is_better must map metric names to True or False"),
        ({"loss": 3}, "RunInfo.loss must be a string or None"),
        ({"class_weights": {"cat": 2.0}}, "RunInfo.class_weights must map class labels"),
    ],
)
def test_run_info_refuses_wrong_values(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        mlcheck.RunInfo(**kwargs)
    info = mlcheck.RunInfo(num_classes=np.int64(10), total_steps=np.int32(300))  # numpy integers: int
    assert type(info.num_classes) is int and type(info.total_steps) is int


def test_lightning_callback_refuses_a_batch_to_arrays_that_is_no_function_and_a_string_timing():
    """Both were taken: `batch_to_arrays=5` failed at the first batch, `timing="no"` was true."""
    from mlcheck.integrations.lightning import MLCheckCallback

    with pytest.raises(TypeError, match=r"batch_to_arrays must be a function of the batch .*, got 5"):
        MLCheckCallback(batch_to_arrays=5)
    with pytest.raises(TypeError, match="timing must be True or False, got 'no'"):
        MLCheckCallback(timing="no")
    MLCheckCallback(batch_to_arrays=lambda batch: batch, timing=True)


def test_a_suppress_that_removes_every_check_is_refused_in_python_as_in_the_config(tmp_path, monkeypatch):
    """`[tool.mlcheck]` with every selected check suppressed was refused, while the same in
    Python ran a monitor with no check at all, whose silence read as a clean run."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback

    monkeypatch.chdir(tmp_path)  # no pyproject.toml of this repository
    message = r"every check selected \(loss-divergence, loss-plateau\) is also suppressed, so none would run"
    both = ["loss-divergence", "loss-plateau"]
    for make in (Monitor, KerasCallback, LightningCallback):
        with pytest.raises(ValueError, match=message):
            make(checks=both, suppress=both)
        with pytest.raises(ValueError, match="is also suppressed"):
            make(suppress=list(mlcheck.checks.registry()))  # the defaults, all of them
        make(checks=both, suppress=["loss-plateau"])  # one left: runs
    assert Monitor(checks=[]).checks == []  # no check asked for is no contradiction


@pytest.mark.parametrize(
    ("check_id", "name", "value", "error", "message"),
    [
        ("loss-divergence", "factor", -3, ValueError, r"factor must be >= 0, as its default 2.0 is, got -3"),
        ("loss-plateau", "z", float("nan"), ValueError, r"z must be a number, not NaN"),
        ("train-val-gap", "patience", "3", TypeError, r"patience must be a number \(default 3\), got '3'"),
        ("class-imbalance", "ratio", True, TypeError, r"ratio must be a number \(default 10.0\), got True"),
    ],
)
def test_a_check_built_in_python_refuses_what_its_config_table_refuses(tmp_path, check_id, name, value, error, message):
    """`LossDivergence(factor=-3)` was taken as given (the check then never fired), while the
    config path refused it. One rule (`checks.base.check_arguments`) for both, naming the
    argument, by keyword or by position."""
    from mlcheck.config import ConfigError, build_checks, load_config

    cls = get_check(check_id)
    with pytest.raises(error, match=message):
        cls(**{name: value})
    if list(inspect.signature(cls.__init__).parameters)[1] == name:
        with pytest.raises(error, match=message):
            cls(value)
    toml = {True: "true", "3": '"3"'}.get(value, repr(value)) if not isinstance(value, float) else "nan"
    (tmp_path / "pyproject.toml").write_text(f"[tool.mlcheck.checks.{check_id}]\n{name} = {toml}\n")
    with pytest.raises(ConfigError, match=message):
        build_checks(config=load_config(tmp_path / "pyproject.toml"))
    default = inspect.signature(cls.__init__).parameters[name].default
    assert getattr(cls(**{name: default}), name) == default  # its own default is fine


def test_none_is_taken_where_a_check_argument_admits_it():
    """`TrainValOverlap(probe_values=None)` (hash every value: `int | None`) is a choice, not a
    value of another kind."""
    assert get_check("train-val-overlap")(probe_values=None).probe_values is None
    with pytest.raises(TypeError, match="factor must be a number"):
        get_check("loss-divergence")(factor=None)


def test_a_config_table_is_checked_once_per_check(tmp_path, monkeypatch):
    """`build_checks` checked a `[tool.mlcheck.checks.ID]` table, then the check's own
    constructor checked it again: once is enough for mlcheck's checks (their constructors do
    it); a user's registered check, whose constructor does not, is still checked by the config."""
    from mlcheck.checks import base
    from mlcheck.config import ConfigError, build_checks, load_config

    calls = []
    real = base.check_arguments

    def counting(cls, kwargs):
        calls.append(cls.id)
        return real(cls, kwargs)

    monkeypatch.setattr(base, "check_arguments", counting)
    monkeypatch.setattr("mlcheck.config.check_arguments", counting)
    (tmp_path / "pyproject.toml").write_text("[tool.mlcheck.checks.loss-divergence]\nfactor = 5.0\n")
    checks = build_checks(config=load_config(tmp_path / "pyproject.toml"))
    assert next(c for c in checks if c.id == "loss-divergence").factor == 5.0
    assert calls.count("loss-divergence") == 1, calls

    class Mine(base.Check):
        id = "my-config-checked"

        def __init__(self, level: float = 1.0) -> None:
            self.level = level
            super().__init__()

    monkeypatch.setitem(base._REGISTRY, Mine.id, Mine)
    (tmp_path / "pyproject.toml").write_text(
        "[tool.mlcheck]\nselect = ['my-config-checked']\n[tool.mlcheck.checks.my-config-checked]\nlevel = -2.0\n"
    )
    with pytest.raises(ConfigError, match="level must be >= 0"):
        build_checks(config=load_config(tmp_path / "pyproject.toml"))


def test_a_misspelt_keyword_names_the_argument_meant_in_every_callback():
    """`MLCheckCallback(supress=[...])` was Python's bare `MLCheckCallback.__init__() got an
    unexpected keyword argument 'supress'`: no hint, no list of what the callback takes."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback

    makers = [MLCheckCallback, KerasCallback, Monitor]
    try:
        from mlcheck.integrations.transformers import MLCheckCallback as TransformersCallback
    except ImportError:  # transformers is an optional extra
        pass
    else:
        makers.append(TransformersCallback)
    for make in makers:
        name = make.__name__
        with pytest.raises(
            TypeError,
            match=rf"^{name}\(\) got an unexpected keyword argument 'supress' "
            r"\(did you mean 'suppress'\?\); it takes checks, suppress, log_dir",
        ):
            make(supress=["lr-too-high"])
        with pytest.raises(TypeError, match=r"'logdir' \(did you mean 'log_dir'\?\)"):
            make(logdir="runs")
        with pytest.raises(TypeError, match=r"'every_n_step' \(did you mean 'every_n_steps'\?\)"):
            make(every_n_step=5)
        with pytest.raises(TypeError, match=r"unexpected keyword argument 'colour'; it takes checks"):
            make(colour="red")  # no near miss: no guess
        assert "checks" in inspect.signature(make).parameters  # the signature users read is kept


def test_cli13_full_pass_checks_and_keras_batch_size_are_named_when_wrong():
    """`full_pass_checks=5` was Python's bare `'int' object is not iterable`; the Keras callback's
    `batch_size=0` or `"32"` was taken."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback

    for callback in (MLCheckCallback, KerasCallback):
        with pytest.raises(TypeError, match="full_pass_checks must be a list of check ids, got 5"):
            callback(full_pass_checks=5)
        assert callback(full_pass_checks="train-val-overlap").options.full_pass_checks == ("train-val-overlap",)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        KerasCallback(batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an integer, got '32'"):
        KerasCallback(batch_size="32")
    assert KerasCallback(batch_size=np.int64(16)).batch_size == 16


def test_cli13_a_misspelt_keyword_of_monitor_log_epoch_and_log_batch_names_the_one_meant():
    """`monitor.log_epoch(0, val_los=...)` was Python's bare `unexpected keyword argument`."""
    with Monitor(log_dir=False, warn=False) as monitor:
        with pytest.raises(TypeError, match=r"^Monitor.log_epoch\(\) got .* 'val_los' \(did you mean 'val_loss'\?\)"):
            monitor.log_epoch(0, val_los=1.0)
        with pytest.raises(TypeError, match=r"^Monitor.log_batch\(\) got .* 'input' \(did you mean 'inputs'\?\)"):
            monitor.log_batch(np.zeros((4, 2)), input=np.zeros((4, 2)))
        monitor.log_epoch(0, train_loss=1.0, val_loss=1.1)  # the right keywords pass through


def test_small14_task_and_stop_on_are_taken_in_any_case():
    """`task="Classification"` and `stop_on="Error"` were refused ("task must be None,
    'classification' or 'regression'"); they are lower-cased, as `Severity.parse` reads severities."""
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback
    from mlcheck.run import RunInfo

    for callback in (MLCheckCallback, KerasCallback):
        options = callback(task="Classification", stop_on="Error", log_dir=False).options
        assert (options.task, options.stop_on) == ("classification", "error")
        options = callback(task="REGRESSION", stop_on="WARNING", log_dir=False).options
        assert (options.task, options.stop_on) == ("regression", "warning")
        with pytest.raises(ValueError, match=r"^task must be None, .* \(any case\), got 'classifier'$"):
            callback(task="classifier")
        with pytest.raises(ValueError, match=r"^stop_on must be None, 'error' or 'warning' \(any case\), got 'Info'$"):
            callback(stop_on="Info")
    assert RunInfo(task="Regression").task == "regression"
    with Monitor(log_dir=False, warn=False, stop_on="Error") as monitor:
        monitor.log_step(0, loss=float("nan"))
        assert monitor.should_stop  # the lower-cased value is the one acted on


def test_small14_a_config_file_that_cannot_be_read_names_the_config_argument(tmp_path):
    """`config="nope.toml"` was "cannot read nope.toml: [Errno 2] No such file or directory",
    which names the file but not the argument to change."""
    import re

    from mlcheck.config import ConfigError
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
    from mlcheck.integrations.lightning import MLCheckCallback

    broken = tmp_path / "broken.toml"
    broken.write_text("[tool.mlcheck\n", encoding="utf-8")
    for callback in (MLCheckCallback, KerasCallback):
        with pytest.raises(ConfigError, match=r"^config='nope.toml': nope.toml does not exist; .*False reads none\)$"):
            callback(config="nope.toml")
        with pytest.raises(ConfigError, match=rf"^config={re.escape(repr(str(tmp_path)))}: .* is a directory; "):
            callback(config=tmp_path)
        with pytest.raises(ConfigError, match=rf"^config={re.escape(repr(str(broken)))}: cannot read "):
            callback(config=broken)
