"""MLCheckCallback on real Lightning training (tiny MLPs on sklearn's digits, seconds each).

Covers: each live check firing on a real injected bug, clean runs staying silent, both
`lightning.pytorch` and `pytorch_lightning` trainers, bitwise-identical training with and without
the callback, broken checks, `stop_on`, checkpoint resume, TensorBoard event files and the real
TensorBoard server, and DDP with two gloo processes.
"""

from __future__ import annotations

import copy
import json
import os
import random
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import lightning.pytorch as lpt
import numpy as np
import pytest
import pytorch_lightning as ptl
import torch
from torch import nn

from mlcheck import Check, MLCheckWarning, Severity, register
from mlcheck.checks.base import default_checks
from mlcheck.findings import MLCheckInternalWarning
from mlcheck.integrations.lightning import MLCheckCallback, default_batch_to_arrays

sys.path.insert(0, str(Path(__file__).parent))
from eager_steps import before_judgement_and_layer_cuts, before_layer_assembly_cuts, eager_steps  # noqa: E402

from tests.lightning_trainer import quiet_trainer

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"lightning.pytorch": lpt, "pytorch_lightning": ptl}

# -- data and models ---------------------------------------------------------------------------


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order].astype(np.float32), y[order].astype(np.int64)


_X, _Y = _digits()


def loaders(
    *,
    scale: float = 1 / 16,
    n_train: int = 1200,
    batch_size: int = 32,
    shuffle: bool = True,
    sort_labels: bool = False,
    nan_rows: int = 0,
    val_from_train: bool = False,
    regression: bool = False,
    validation: bool = True,
):
    x, y = _X * scale, _Y
    if regression:  # a smooth target made from the pixels, with noise
        w = np.random.default_rng(1).normal(size=(64, 1)).astype(np.float32) / 8
        y = (_X / 16 @ w + 0.05 * np.random.default_rng(2).normal(size=(len(x), 1))).astype(np.float32)
    xt, yt, xv, yv = x[:n_train].copy(), y[:n_train], x[n_train:], y[n_train:]
    if sort_labels:
        order = np.argsort(yt, kind="stable")
        xt, yt = xt[order], yt[order]
    if nan_rows:
        xt[np.arange(nan_rows) * 7, 3] = np.nan
    if val_from_train:
        xv, yv = xt[:300], yt[:300]
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(xt), torch.tensor(yt)),
        batch_size=batch_size,
        shuffle=shuffle,
    )
    if not validation:
        return train, None
    val = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(xv), torch.tensor(yv)), batch_size=128
    )
    return train, val


def make_model(  # noqa: C901  (one flag per planted bug: flat on purpose)
    pl=lpt,
    *,
    lr: float = 0.05,
    hidden: int = 32,
    batchnorm: bool = False,
    manual: bool = False,
    scheduler: str | None = None,
    regression: bool = False,
    validation: bool = True,
    adam: bool = False,
):
    """A LightningModule class of package `pl` (`lightning.pytorch` or `pytorch_lightning`)."""

    class DigitsNet(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = [nn.Linear(64, hidden)]
            if batchnorm:
                layers.append(nn.BatchNorm1d(hidden))
            layers += [nn.ReLU(), nn.Linear(hidden, 1 if regression else 10)]
            self.net = nn.Sequential(*layers)
            self.automatic_optimization = not manual

        def forward(self, x):
            return self.net(x)

        def loss(self, out, y):
            return nn.functional.mse_loss(out, y) if regression else nn.functional.cross_entropy(out, y)

        def training_step(self, batch, batch_idx):
            x, y = batch
            out = self(x)
            loss = self.loss(out, y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            if not regression:
                self.log("train_acc", (out.argmax(1) == y).float().mean(), on_epoch=True)
            if manual:
                opt = self.optimizers()
                opt.zero_grad()
                self.manual_backward(loss)
                opt.step()
                if self.trainer.is_last_batch and scheduler is not None:
                    self.lr_schedulers().step()
                return None
            return loss

        if validation:

            def validation_step(self, batch, batch_idx):
                x, y = batch
                out = self(x)
                self.log("val_loss", self.loss(out, y))
                if not regression:
                    self.log("val_acc", (out.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            if adam:
                opt = torch.optim.Adam(self.parameters(), lr=lr)
            else:
                opt = torch.optim.SGD(self.parameters(), lr=lr, momentum=0.9)
            if scheduler == "cosine":
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.trainer.estimated_stepping_batches)
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
            if scheduler == "warmup-cosine":
                total = int(self.trainer.estimated_stepping_batches)
                sched = torch.optim.lr_scheduler.SequentialLR(
                    opt,
                    [
                        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=20),
                        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - 20),
                    ],
                    milestones=[20],
                )
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
            if scheduler == "step":
                return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)}
            return opt

    return DigitsNet


def fit(
    tmp_path: Path,
    cb: MLCheckCallback | None = None,
    *,
    pl=lpt,
    model_kw: dict | None = None,
    data_kw: dict | None = None,
    seed: int = 0,
    ckpt_path: str | None = None,
    **trainer_kw,
):
    """Trains a fresh DigitsNet; returns (trainer, model)."""
    model_kw, data_kw = dict(model_kw or {}), dict(data_kw or {})
    validation = model_kw.get("validation", True)
    data_kw.setdefault("validation", validation)
    pl.seed_everything(seed, verbose=False)
    model = make_model(pl, **model_kw)()
    train, val = loaders(**data_kw)
    kw = dict(
        max_epochs=4,
        default_root_dir=str(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=5,
        callbacks=[cb] if cb is not None else [],
        deterministic=True,
    )
    kw.update(trainer_kw)
    trainer = pl.Trainer(**kw)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|LeafSpec|log_every_n_steps).*")
        trainer.fit(model, train, val, ckpt_path=ckpt_path)
    return trainer, model


def serious(findings) -> list:
    return [f for f in findings if f.severity >= Severity.WARNING]


def ids(findings) -> set[str]:
    return {f.check for f in findings}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: more threads only fight over the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def strict_warnings():
    """A healthy run must raise no MLCheckWarning: turn them into errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", MLCheckWarning)
        yield


# -- custom checks used to test the plumbing --------------------------------------------------


@register
class _FireAtStep(Check):
    """Fires once when the run reaches `at_step` (test helper).

    What it does:
        Raises a finding at a fixed step.
    Why it matters:
        Tests need a finding at a known step.
    How to fix:
        Nothing to fix.
    Args:
        at_step: the step. severity: the finding's severity.
    """

    id = "test-lightning-fire"
    family = "test"
    default = False

    def __init__(self, at_step: int = 10, severity: Severity = Severity.WARNING) -> None:
        self.at_step, self.level = at_step, severity
        super().__init__()

    def on_step(self, run):
        if run.step is not None and run.step >= self.at_step:
            yield self.finding(
                f"reached step {self.at_step}",
                step=run.step,
                epoch=run.epoch,
                severity=self.level,
                evidence={"step": run.step},
                key="once",
            )


@register
class _Broken(Check):
    """Always raises (test helper).

    What it does:
        Raises ZeroDivisionError on every step.
    Why it matters:
        A broken check must not break training.
    How to fix:
        Nothing to fix.
    """

    id = "test-lightning-broken"
    family = "test"
    default = False

    def on_step(self, run):
        return [1 / 0]


# -- clean runs stay silent ---------------------------------------------------------------------


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_clean_digits_run_is_silent_with_both_trainers(tmp_path, strict_warnings, package):
    cb = MLCheckCallback()
    trainer, _ = fit(tmp_path, cb, pl=PACKAGES[package])
    assert isinstance(trainer, PACKAGES[package].Trainer)
    assert serious(cb.findings) == []
    run = cb.monitor.run
    # the callback really observed the run: every step's loss, val loss per epoch, metrics
    assert run.train_loss.total == trainer.global_step == 4 * 38
    assert run.val_loss.total == 4 and run.epoch_train_loss.total == 4
    assert set(run.val_metrics) == {"acc"} and "acc" in run.train_metrics
    assert run.update_ratio.total >= 4 * 38 // 25
    assert run.info.task == "classification" and run.info.num_classes == 10
    assert run.info.total_steps == 4 * 38 and run.info.has_scheduler is False
    assert cb.resolved_log_dir == Path(trainer.logger.log_dir)


@pytest.mark.parametrize(
    "case",
    [
        dict(model_kw=dict(batchnorm=True)),
        dict(trainer_kw=dict(accumulate_grad_batches=4)),
        dict(model_kw=dict(manual=True)),
        dict(model_kw=dict(validation=False)),
        dict(model_kw=dict(regression=True), data_kw=dict(regression=True)),
        dict(model_kw=dict(scheduler="cosine")),
        dict(model_kw=dict(scheduler="step")),
        dict(model_kw=dict(scheduler="warmup-cosine")),
        dict(trainer_kw=dict(max_epochs=15)),
    ],
    ids=[
        "batchnorm",
        "grad-accumulation",
        "manual-optimization",
        "no-validation",
        "regression",
        "cosine",
        "step-lr",
        "warmup-cosine",
        "converged",
    ],
)
def test_healthy_variants_stay_silent(tmp_path, strict_warnings, case):
    cb = MLCheckCallback()
    trainer, _ = fit(
        tmp_path, cb, model_kw=case.get("model_kw"), data_kw=case.get("data_kw"), **case.get("trainer_kw", {})
    )
    assert serious(cb.findings) == []
    run = cb.monitor.run
    # losses are recorded once per optimizer step (also with accumulation and manual optimization)
    assert run.train_loss.total == trainer.global_step > 0
    if "regression" in str(case):
        assert run.info.task == "regression"


def test_manual_optimization_says_overfit_batch_was_not_run(tmp_path, strict_warnings):
    cb = MLCheckCallback()
    fit(tmp_path, cb, model_kw=dict(manual=True), max_epochs=1)
    # a finding, not only a log line: INFO, so it raises no warning (strict_warnings) ...
    (finding,) = [f for f in cb.findings if f.check == "overfit-batch"]
    assert finding.severity is Severity.INFO and finding.key == "skipped"
    assert "automatic_optimization=False" in finding.message and "did not run" in finding.message
    assert "mlcheck sanity" in finding.hint and "mlcheck_target()" in finding.hint
    assert serious(cb.findings) == []
    # ... kept with the run's findings, and counted as info in the end-of-fit summary
    stored = [json.loads(line) for line in (cb.resolved_log_dir / "findings.jsonl").read_text().splitlines()]
    assert [(f["check"], f["severity"]) for f in stored if f["check"] == "overfit-batch"] == [("overfit-batch", "info")]
    summary = cb.live.summary()
    assert "info" in summary and "warning" not in summary and "error" not in summary
    assert " 1 epoch, " in summary and "1 epochs" not in summary and "1 findings" not in summary
    # switched off on purpose: nothing to say
    off = MLCheckCallback(overfit_batch=False)
    fit(tmp_path / "off", off, model_kw=dict(manual=True), max_epochs=1)
    assert "overfit-batch" not in ids(off.findings)


def test_gradient_accumulation_logs_the_mean_loss_at_optimizer_steps(tmp_path):
    cb = MLCheckCallback(overfit_batch=False)
    trainer, _ = fit(tmp_path, cb, max_epochs=1, accumulate_grad_batches=4)
    assert trainer.global_step == 10  # 38 batches -> 9 full windows + the final partial one
    assert cb.monitor.run.train_loss.total == 10
    # the loss of a step is the mean over its micro-batches, not the 1/4-scaled value
    assert cb.monitor.run.train_loss.last_value > 0.5


# -- each live check fires on a real bug --------------------------------------------------------


@pytest.mark.parametrize(
    "bug, expected",
    [
        # lr x100 on a regression: the loss overflows, gradients and weights turn NaN
        (dict(model_kw=dict(lr=5.0, regression=True), data_kw=dict(regression=True)), {"nonfinite-loss"}),
        # lr x1000 on the classifier: logits explode and the loss sits far above chance
        (dict(model_kw=dict(lr=50.0)), {"lr-too-high", "loss-divergence", "nonfinite-loss", "loss-plateau"}),
        (dict(data_kw=dict(nan_rows=5)), {"nonfinite-input"}),
        (dict(data_kw=dict(val_from_train=True)), {"train-val-overlap"}),
        (dict(data_kw=dict(scale=255 / 16)), {"unnormalized-input"}),
        (dict(data_kw=dict(sort_labels=True, shuffle=False)), {"unshuffled-data"}),
    ],
    ids=["lr-x100-regression", "lr-x1000", "nan-input", "val-is-train", "raw-pixels", "sorted-unshuffled"],
)
def test_live_check_fires_on_injected_bug(tmp_path, bug, expected):
    cb = MLCheckCallback(overfit_batch=False)
    with pytest.warns(MLCheckWarning):
        fit(tmp_path, cb, max_epochs=4, **bug)
    assert ids(serious(cb.findings)) & expected, [f.format() for f in cb.findings]


def test_adam_at_lr_1_is_named_live_as_a_rate_far_too_high(tmp_path):
    """Adam at lr=1.0 (1000x its usual rate): the loss jumps ~1000x in the first steps, then sits
    at ln(10) with every ReLU dead; lr-too-high names the rate while the run is going, not only
    the plateau and the dead units that follow from it."""
    cb = MLCheckCallback(overfit_batch=False)
    with pytest.warns(MLCheckWarning):
        trainer, _ = fit(tmp_path, cb, max_epochs=3, model_kw=dict(adam=True, lr=1.0))
    (f,) = [f for f in cb.findings if f.check == "lr-too-high"]
    assert f.severity is Severity.WARNING and "learning rate 1 is far too high" in f.message
    assert f.evidence["peak_loss"] > 10 * f.evidence["initial_loss"] and f.evidence["peak_step"] <= 5
    assert f.evidence["loss"] > 0.5 * np.log(10) and "10-100x" in f.hint
    assert f.step < trainer.global_step  # raised during the fit, not at its end


def test_symptoms_of_sorted_data_name_it_as_their_cause(tmp_path):
    """Sorted, unshuffled labels make the loss swing from class block to class block: the loss
    and learning-rate findings that follow said nothing about the order of the data, and pointed
    at the learning rate."""
    cb = MLCheckCallback(overfit_batch=False)
    with pytest.warns(MLCheckWarning):
        fit(
            tmp_path,
            cb,
            max_epochs=10,
            model_kw=dict(adam=True, lr=1e-2),
            data_kw=dict(sort_labels=True, shuffle=False),
        )
    found = serious(cb.findings)
    assert "unshuffled-data" in ids(found), [f.format() for f in cb.findings]
    first = min(f.step for f in found if f.check == "unshuffled-data")
    symptoms = [f for f in found if f.check in {"loss-plateau", "loss-divergence", "lr-too-high", "lr-too-low"}]
    assert symptoms, [f.format() for f in cb.findings]
    for f in symptoms:
        if f.step is not None and f.step > first:
            assert f.evidence.get("likely_cause") == "unshuffled-data", f.format()
            assert "Fix `unshuffled-data` first" in f.hint


def test_overlap_is_found_even_when_sampling_would_miss_it(tmp_path):
    # only the last validation rows repeat training rows: the full first pass must hash them
    cb = MLCheckCallback(overfit_batch=False, every_n_steps=1000, sample_batches=1)
    train, _ = loaders()
    x = torch.cat([torch.tensor(_X[1200:1500] / 16), torch.tensor(_X[1100:1130] / 16)])
    y = torch.cat([torch.tensor(_Y[1200:1500]), torch.tensor(_Y[1100:1130])])
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    lpt.seed_everything(0, verbose=False)
    trainer = lpt.Trainer(
        max_epochs=1,
        default_root_dir=str(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[cb],
    )
    with pytest.warns(MLCheckWarning):
        trainer.fit(make_model()(), train, val)
    assert "train-val-overlap" in ids(cb.findings)


# -- training is unchanged ----------------------------------------------------------------------


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_same_seed_gives_bitwise_identical_weights_with_and_without_callback(tmp_path, package):
    pl = PACKAGES[package]
    _, plain = fit(tmp_path / "a", None, pl=pl, max_epochs=2, enable_checkpointing=False)
    cb = MLCheckCallback(every_n_steps=1)  # every statistic on every step, overfit-a-batch on
    _, watched = fit(tmp_path / "b", cb, pl=pl, max_epochs=2, enable_checkpointing=False)
    a, b = plain.state_dict(), watched.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert watched.training is plain.training
    assert torch.equal(torch.get_rng_state(), torch.get_rng_state())  # sanity: same process


class _EveryHook(MLCheckCallback):
    """The callback with every hook left for Lightning to call (as before hooks were skipped)."""

    def _skip_hook(self, name: str, skip: bool) -> None:
        super()._skip_hook(name, False)


def _run_record(cb: MLCheckCallback) -> tuple:
    """What a fit leaves behind: the findings, findings.jsonl, and mlcheck's TensorBoard events
    (tags, steps and values; wall times and the run's folder apart)."""
    log_dir = cb.resolved_log_dir
    acc = _accumulator(log_dir)
    scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"] if t.startswith("mlcheck")}
    here = str(log_dir).encode()  # the run summary names the run's own folder
    texts = {
        t: [(e.step, e.tensor_proto.string_val[0].replace(here, b"<run>")) for e in acc.Tensors(t)]
        for t in acc.Tags()["tensors"]
    }
    path = log_dir / "findings.jsonl"  # written at the first finding
    # each line's "time" (when it was raised) is a wall time: left out, as the events' wall times
    jsonl = [_untimed(json.loads(line)) for line in path.read_text().splitlines()] if path.exists() else []
    return [f.to_dict() for f in cb.findings], jsonl, scalars, texts


@pytest.mark.parametrize("manual", [False, True], ids=["automatic", "manual"])
def test_skipped_no_op_hooks_leave_every_finding_and_event_unchanged(tmp_path, manual):
    """Lightning is not made to call the hooks the callback leaves as no-ops (a profiler context
    and module look-ups per call, at every step), and nothing the run leaves behind changes: the
    same findings, findings.jsonl and TensorBoard events as with every hook called, on a fixed-seed
    run that raises findings at steps (lr x1000: the rate and the divergence it causes)."""
    record = {}
    for name, make in (("skipped", MLCheckCallback), ("every", _EveryHook)):
        cb = make(overfit_batch=False)
        with pytest.warns(MLCheckWarning):
            fit(tmp_path / name, cb, max_epochs=3, model_kw=dict(lr=50.0, manual=manual))
        record[name] = _run_record(cb)
        hooks = {
            h: callable(getattr(cb, h)) for h in ("on_after_backward", "on_before_zero_grad", "on_before_backward")
        }
        if name == "skipped":
            # manual optimization hands Lightning no loss: the loss is read before backward; on
            # the CPU it is also read there while the NaN origin is watched (review38)
            before = manual or cb._loss_before_step
            assert hooks == {"on_after_backward": False, "on_before_zero_grad": False, "on_before_backward": before}
            # it arms the per-sample capture and the validation row losses (`train-val-gap`'s
            # standard-error guard, on by default): skipped only where neither runs
            assert callable(cb.on_validation_batch_start) == (cb._val_losses is not None)
        else:
            assert all(hooks.values())
        assert cb.monitor.run.train_loss.total == 3 * 38
    findings = record["skipped"][0]
    assert {"lr-too-high", "loss-divergence"} <= {f["check"] for f in findings}
    assert record["skipped"] == record["every"]


class _EveryStepRouted(_EveryHook):
    """The callback as it was before unsampled steps were cut short: every hook called at every
    step, every training batch routed through `LiveRun.route_batch`, the parameter scan asked at
    every step whether it has something to read back."""

    def on_fit_start(self, trainer, pl_module):
        super().on_fit_start(trainer, pl_module)
        self._quiet_path = False
        self._start_every_step = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._scanned = True
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


class _QuietProbe(lpt.Callback):
    """After the callback's on_train_batch_end: whether Lightning will call its
    on_train_batch_start next, and whether the next batch is only counted."""

    def __init__(self, cb: MLCheckCallback) -> None:
        self.cb = cb
        self.start_called: list[bool] = []
        self.counted_only: list[bool] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        live = self.cb.live
        self.start_called.append(callable(self.cb.on_train_batch_start))
        self.counted_only.append(live.count["train"] < live.skip_below["train"])


@pytest.mark.parametrize(
    "kind, model_kw, trainer_kw",
    [
        ("automatic", dict(lr=50.0), {}),
        ("manual", dict(lr=50.0, manual=True), {}),
        ("accumulating", dict(lr=50.0), dict(accumulate_grad_batches=2)),
        ("healthy", {}, {}),
    ],
)
def test_unsampled_steps_cut_short_leave_every_finding_and_event_unchanged(tmp_path, kind, model_kw, trainer_kw):
    """An unsampled step is an integer compare and the held loss: on_train_batch_start is left
    uncalled between layer steps, a batch no check wants is counted, not routed, and the scan is
    read back only where it ran. The findings, findings.jsonl and mlcheck's TensorBoard events of
    fixed-seed fits (lr x1000: findings at steps, with the non-finite origin watch; a healthy run)
    are those of the callback that calls and routes everything at every step."""
    record, probes = {}, {}
    for name, make in (("quiet", MLCheckCallback), ("every", _EveryStepRouted)):
        cb = make(overfit_batch=False)
        probes[name] = probe = _QuietProbe(cb)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLCheckWarning)
            fit(tmp_path / name, cb, max_epochs=3, model_kw=model_kw, callbacks=[cb, probe], **trainer_kw)
        record[name] = _run_record(cb)
        assert cb.live.count["train"] == 3 * 38
    quiet, every = probes["quiet"], probes["every"]
    # the cut is taken: most steps skip on_train_batch_start and route nothing
    assert sum(quiet.start_called) < len(quiet.start_called) / 4
    assert sum(quiet.counted_only) > len(quiet.counted_only) / 2
    assert all(every.start_called)
    findings = record["quiet"][0]
    if kind == "healthy":
        assert not any(f["severity"] in ("warning", "error") for f in findings)
    else:
        assert "lr-too-high" in {f["check"] for f in findings}
    assert record["quiet"][2]  # mlcheck's scalars were written
    assert record["quiet"] == record["every"]


@pytest.mark.parametrize("lr", [50.0, None], ids=["lr_x1000", "healthy"])
def test_staged_series_and_inline_step_checks_leave_every_finding_and_event_unchanged(tmp_path, monkeypatch, lr):
    """Closed buckets staged until read, and `log_step`'s argument checks tested inline: the
    findings, findings.jsonl and TensorBoard events of a fixed-seed fit are those of the eager
    storage and the checks called one by one."""
    record = {}
    for name in ("staged", "eager"):
        if name == "eager":
            eager_steps(monkeypatch)
        cb = MLCheckCallback(overfit_batch=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLCheckWarning)
            fit(tmp_path / name, cb, max_epochs=3, model_kw=dict(lr=lr) if lr else {})
        record[name] = _run_record(cb)
    findings = record["staged"][0]
    if lr:
        assert {"lr-too-high", "loss-divergence"} <= {f["check"] for f in findings}
    else:
        assert not any(f["severity"] in ("warning", "error") for f in findings)
    assert record["staged"][2]  # mlcheck's scalars were written
    assert record["staged"] == record["eager"]


@pytest.mark.parametrize(
    "model_kw", [dict(lr=50.0), {}, dict(scheduler="cosine")], ids=["lr_x1000", "healthy", "cosine"]
)
def test_layer_statistics_flush_and_judgement_cuts_leave_every_finding_and_event_unchanged(
    tmp_path, monkeypatch, model_kw
):
    """The layer outputs reduced by the ufuncs directly, the sink's charted statistics read in
    one call, the held losses read without a reshape, and `lr-schedule` not judging a rate that
    never moved: the findings, findings.jsonl and TensorBoard events of fixed-seed fits (scalars,
    texts and the layers' histograms) are those of the paths before the cuts."""
    record = {}
    for name in ("cut", "before"):
        if name == "before":
            before_judgement_and_layer_cuts(monkeypatch)
        cb = MLCheckCallback(overfit_batch=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLCheckWarning)
            fit(tmp_path / name, cb, max_epochs=3, model_kw=model_kw)
        acc = _accumulator(cb.resolved_log_dir)
        histograms = {
            t: [
                (e.step, list(e.histogram_value.bucket), e.histogram_value.min, e.histogram_value.max)
                for e in acc.Histograms(t)
            ]
            for t in acc.Tags()["histograms"]
        }
        record[name] = (*_run_record(cb), histograms)
    findings = record["cut"][0]
    if model_kw.get("lr"):
        assert "lr-too-high" in {f["check"] for f in findings}
    else:
        assert not any(f["severity"] in ("warning", "error") for f in findings)
    assert any(t.startswith("mlcheck/layers/") for t in record["cut"][2])  # the layers were charted
    assert record["cut"][4]  # and their histograms written
    assert record["cut"] == record["before"]


@pytest.mark.parametrize(
    "model_kw", [dict(lr=50.0), {}, dict(hidden=48, scheduler="cosine")], ids=["lr_x1000", "healthy", "cosine"]
)
def test_layer_assembly_cuts_leave_every_finding_and_event_unchanged(tmp_path, monkeypatch, model_kw):
    """`LayerStats` built from one dict without the frozen `__init__`, the host test by
    `is_cpu`, and the fused norms brought to the host without a one-tensor `cat`: every sampled step's
    `LayerStats` (all fields, in order) and the findings, findings.jsonl and TensorBoard events of
    fixed-seed fits (scalars, texts, the layers' histograms) are those of the paths before."""
    from mlcheck.integrations.torch_layers import LayerRecorder

    record = {}
    for name in ("cut", "before"):
        if name == "before":
            before_layer_assembly_cuts(monkeypatch)
        observed = []
        finish = LayerRecorder.finish

        def spy(self, *args, _finish=finish, _observed=observed, **kwargs):
            observation = _finish(self, *args, **kwargs)
            _observed.append([list(vars(s).items()) for s in observation.layers])
            return observation

        monkeypatch.setattr(LayerRecorder, "finish", spy)
        cb = MLCheckCallback(overfit_batch=False, every_n_steps=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLCheckWarning)
            fit(tmp_path / name, cb, max_epochs=3, model_kw=model_kw)
        monkeypatch.setattr(LayerRecorder, "finish", finish)
        acc = _accumulator(cb.resolved_log_dir)
        histograms = {
            t: [
                (e.step, list(e.histogram_value.bucket), e.histogram_value.min, e.histogram_value.max)
                for e in acc.Histograms(t)
            ]
            for t in acc.Tags()["histograms"]
        }
        record[name] = (*_run_record(cb), histograms, observed)
    findings = record["cut"][0]
    if model_kw.get("lr"):
        assert "lr-too-high" in {f["check"] for f in findings}
    else:
        assert not any(f["severity"] in ("warning", "error") for f in findings)
    assert len(record["cut"][5]) >= 20  # sampled steps, every field of every layer compared
    assert record["cut"][4]  # histograms written
    assert repr(record["cut"]) == repr(record["before"])  # NaN fields compare too


def test_a_subclass_override_of_a_skipped_hook_is_still_called(tmp_path):
    calls = []

    class Counting(MLCheckCallback):
        def on_after_backward(self, trainer, pl_module):
            calls.append(trainer.global_step)

    fit(tmp_path, Counting(overfit_batch=False), max_epochs=1)
    assert len(calls) == 38


def test_rng_state_after_fit_matches_a_run_without_callback(tmp_path):
    fit(tmp_path / "a", None, max_epochs=1)
    plain = (torch.get_rng_state(), np.random.get_state()[1].copy())
    fit(tmp_path / "b", MLCheckCallback(every_n_steps=1), max_epochs=1)
    watched = (torch.get_rng_state(), np.random.get_state()[1].copy())
    assert torch.equal(plain[0], watched[0])
    assert np.array_equal(plain[1], watched[1])


# -- overfit-a-batch -----------------------------------------------------------------------------


class _Probe(lpt.Callback):
    """Records everything the user owns at the first training batch."""

    def __init__(self, prime: bool = False) -> None:
        self.prime = prime
        self.state = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.state is not None:
            return
        opt = trainer.optimizers[0]
        if self.prime:  # give the optimizer some state (momentum buffers) to protect
            for p in pl_module.parameters():
                p.grad = torch.full_like(p, 1e-3)
            opt.step()
            opt.zero_grad(set_to_none=True)
        self.state = {
            "params": {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
            "grads": [p.grad for p in pl_module.parameters()],
            "optimizer": copy.deepcopy(opt.state_dict()),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "modes": [m.training for m in pl_module.modules()],
        }


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_overfit_batch_leaves_model_optimizer_and_rng_bitwise_unchanged(tmp_path):
    before, after = _Probe(prime=True), _Probe()
    cb = MLCheckCallback(timing=True)
    fit(tmp_path, cb, max_epochs=1, limit_train_batches=2, limit_val_batches=1, callbacks=[before, cb, after])
    assert cb.timings["overfit_batch"] > 0  # it really ran, between the two probes
    assert before.state["optimizer"]["state"]  # there was optimizer state to protect
    for key in before.state:
        assert _same(before.state[key], after.state[key]), key


class _ZeroedInputs(make_model()):
    def forward(self, x):
        return self.net(x * 0)  # a wiring bug: the inputs never reach the output


def test_overfit_batch_fires_on_a_model_that_ignores_its_inputs(tmp_path):
    cb = MLCheckCallback(overfit_seconds=120)  # the step count decides, not a loaded machine's clock
    lpt.seed_everything(0, verbose=False)
    train, val = loaders()
    trainer = lpt.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=1,
        default_root_dir=str(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[cb],
    )
    with pytest.warns(MLCheckWarning, match="overfit-batch"):
        trainer.fit(_ZeroedInputs(), train, val)
    found = [f for f in cb.findings if f.check == "overfit-batch"]
    assert found and found[0].severity is Severity.ERROR and found[0].step == 0
    # switched off: not run at all
    cb = MLCheckCallback(overfit_batch=False)
    trainer = lpt.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=1,
        default_root_dir=str(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[cb],
    )
    trainer.fit(_ZeroedInputs(), train, val)
    assert "overfit-batch" not in ids(cb.findings)


class _ZeroedInputsKeyed(_ZeroedInputs):
    """Batches of (inputs, group key, labels): the key is per row, like a mask or a slice key."""

    def training_step(self, batch, batch_idx):
        x, key, y = batch
        assert len(key) == len(x)  # the key must keep the rows of the inputs it comes with
        loss = self.loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, key, y = batch
        self.log("val_loss", self.loss(self(x), y))


def test_overfit_batch_runs_on_batches_of_three_tensors(tmp_path):
    # (x, key, y): the train-start checks take a batch's first 16 rows; the key must be cut with
    # them and the labels read from the last element, as the callback's batch_to_arrays does.
    # Before, the key kept 32 rows and took the labels' place, so `overfit-batch` and
    # `unused-parameters` crashed on the batch and were switched off with an internal warning.
    x, y = _X[:256] / 16, _Y[:256]
    key = np.arange(len(x)) % 4
    data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(key), torch.tensor(y))
    train = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    val = torch.utils.data.DataLoader(data, batch_size=128)
    cb = MLCheckCallback(overfit_seconds=120)
    lpt.seed_everything(0, verbose=False)
    trainer = lpt.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=1,
        default_root_dir=str(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[cb],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_ZeroedInputsKeyed(), train, val)
    internal = [str(w.message) for w in caught if issubclass(w.category, MLCheckInternalWarning)]
    assert not internal, internal
    assert not cb.monitor.disabled
    found = [f for f in cb.findings if f.check == "overfit-batch"]
    assert found and found[0].severity is Severity.ERROR and found[0].step == 0


# -- robustness, control ------------------------------------------------------------------------


def test_broken_check_is_reported_once_and_training_continues(tmp_path):
    cb = MLCheckCallback(checks=[*default_checks(), _Broken()], overfit_batch=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer, _ = fit(tmp_path, cb, max_epochs=2)
    internal = [w for w in caught if issubclass(w.category, MLCheckInternalWarning)]
    assert len(internal) == 1 and "test-lightning-broken" in str(internal[0].message)
    assert trainer.current_epoch == 2 and trainer.global_step == 2 * 38
    assert "test-lightning-broken" in cb.monitor.disabled


def test_strict_reraises_check_errors(tmp_path):
    cb = MLCheckCallback(checks=[_Broken()], strict=True, overfit_batch=False)
    with pytest.raises(ZeroDivisionError):
        fit(tmp_path, cb, max_epochs=1)


def test_stop_on_error_stops_training(tmp_path):
    # step checks are judged every 32 steps on short runs: step 31 is the 32nd loss value
    cb = MLCheckCallback(checks=[_FireAtStep(31, Severity.ERROR)], stop_on="error", overfit_batch=False)
    with pytest.warns(MLCheckWarning, match="reached step 31"):
        trainer, _ = fit(tmp_path, cb, max_epochs=5)
    assert trainer.global_step == 32  # stopped right after the step that raised it


def test_stop_on_error_stops_a_diverging_run(tmp_path):
    cb = MLCheckCallback(stop_on="error", overfit_batch=False)
    with pytest.warns(MLCheckWarning):
        trainer, _ = fit(
            tmp_path, cb, model_kw=dict(lr=5.0, regression=True), data_kw=dict(regression=True), max_epochs=5
        )
    assert trainer.global_step < 38  # the loss overflows within the first epoch
    assert cb.monitor.stop_reason is not None and cb.monitor.stop_reason.severity is Severity.ERROR


def test_warning_does_not_stop_when_stop_on_is_error(tmp_path):
    cb = MLCheckCallback(checks=[_FireAtStep(3)], stop_on="error", overfit_batch=False)
    with pytest.warns(MLCheckWarning):
        trainer, _ = fit(tmp_path, cb, max_epochs=1)
    assert trainer.global_step == 38


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="stop_on"):
        MLCheckCallback(stop_on="sometimes")
    with pytest.raises(ValueError, match="available"):
        MLCheckCallback(suppress=["no-such-check"])
    with pytest.raises(ValueError, match="overfit_batch=False"):
        MLCheckCallback(overfit_steps=0)


def test_default_batch_to_arrays_layouts():
    x, y = torch.ones(4, 3), torch.arange(4)
    assert default_batch_to_arrays((x, y))[1] is y
    assert default_batch_to_arrays({"image": x, "mask": x, "label": y})[0] is x
    assert default_batch_to_arrays(x) == (x, None)
    assert default_batch_to_arrays([[x, x], y])[1] is y


# -- checkpoints --------------------------------------------------------------------------------


def test_resume_from_checkpoint_repeats_no_warning(tmp_path):
    ckpt_cb = lpt.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    cb = MLCheckCallback(checks=[*default_checks(), _FireAtStep(5)], overfit_batch=False)
    data = dict(val_from_train=True)  # a real data finding too
    with pytest.warns(MLCheckWarning):
        fit(tmp_path, cb, data_kw=data, max_epochs=2, enable_checkpointing=True, callbacks=[cb, ckpt_cb])
    first_ids = ids(cb.findings)
    assert {"test-lightning-fire", "train-val-overlap"} <= first_ids
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    assert any("monitor" in v for v in state.values())

    resumed = MLCheckCallback(checks=[*default_checks(), _FireAtStep(5)], overfit_batch=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer, _ = fit(
            tmp_path,
            resumed,
            data_kw=data,
            max_epochs=4,
            enable_checkpointing=True,
            callbacks=[resumed],
            ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"),
        )
    assert trainer.current_epoch == 4
    repeated = [w for w in caught if issubclass(w.category, MLCheckWarning)]
    assert repeated == [], [str(w.message) for w in repeated]
    # the windows survived: the loss curve holds the steps of both parts
    assert resumed.monitor.run.train_loss.total == 4 * 38
    assert ids(resumed.findings) >= first_ids
    assert resumed.monitor.run.info.pretrained is None  # its curves start from step 0: not a fine-tune


def test_a_run_resumed_without_mlcheck_state_starts_from_trained_weights(tmp_path):
    # the checkpoint of a run mlcheck did not watch: the curves start at a trained model's loss,
    # so the slow-fall rules stand down (RunInfo.pretrained)
    ckpt_cb = lpt.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit(tmp_path, None, max_epochs=1, enable_checkpointing=True, callbacks=[ckpt_cb])
    resumed = MLCheckCallback(overfit_batch=False)
    fit(
        tmp_path,
        resumed,
        max_epochs=2,
        enable_checkpointing=True,
        callbacks=[resumed],
        ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"),
    )
    assert resumed.monitor.run.info.pretrained is True
    assert resumed.monitor.run.train_loss.x.tolist()[0] == 38


def test_a_checkpoint_mid_epoch_holds_every_step_seen(tmp_path):
    # losses reach the monitor in blocks of 16 steps: a checkpoint taken in between (step 20)
    # must still hold all 20, or the resumed run's curve would miss the held ones
    ckpt_cb = lpt.callbacks.ModelCheckpoint(
        dirpath=tmp_path / "ckpt", every_n_train_steps=20, save_top_k=-1, filename="step{step}"
    )
    cb = MLCheckCallback(overfit_batch=False)
    fit(tmp_path, cb, max_epochs=1, enable_checkpointing=True, callbacks=[cb, ckpt_cb])
    (path,) = (tmp_path / "ckpt").glob("*step=20*")
    resumed = MLCheckCallback(overfit_batch=False)
    trainer, _ = fit(
        tmp_path, resumed, max_epochs=1, enable_checkpointing=True, callbacks=[resumed], ckpt_path=str(path)
    )
    assert trainer.global_step == 38
    assert resumed.monitor.run.train_loss.total == 38  # 20 from the checkpoint, 18 after it
    assert resumed.monitor.run.train_loss.x.tolist() == list(range(38))


# -- TensorBoard --------------------------------------------------------------------------------


def _accumulator(log_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_findings_land_in_the_loggers_tensorboard_run(tmp_path):
    cb = MLCheckCallback(checks=[_FireAtStep(31)], overfit_batch=False)
    with pytest.warns(MLCheckWarning):
        trainer, _ = fit(tmp_path, cb, max_epochs=1, log_every_n_steps=1)
    log_dir = Path(trainer.logger.log_dir)
    assert cb.resolved_log_dir == log_dir
    acc = _accumulator(log_dir)
    tags = acc.Tags()
    # the user's own curves and mlcheck's in the same run directory
    assert "train_loss_step" in tags["scalars"]
    assert "mlcheck/test-lightning-fire" in tags["scalars"] and "mlcheck/findings" in tags["scalars"]
    assert "mlcheck/test-lightning-fire/text" in tags["tensors"]
    text = acc.Tensors("mlcheck/test-lightning-fire/text")
    assert [e.step for e in text] == [31]
    assert b"reached step 31" in text[0].tensor_proto.string_val[0]
    markers = acc.Scalars("mlcheck/test-lightning-fire")
    assert markers[0].step == 31 and markers[0].value == 1.0
    # steps line up with the user's curve: the loss Lightning logged at step 10 is the loss
    # mlcheck recorded for step 10 (the first 256 steps are kept exactly)
    logged = {e.step: e.value for e in acc.Scalars("train_loss_step")}
    seen = dict(zip(cb.monitor.run.train_loss.x.tolist(), cb.monitor.run.train_loss.means.tolist()))
    assert logged.keys() == seen.keys() == set(range(38))
    assert logged[10] == pytest.approx(seen[10], rel=1e-6)
    assert all(logged[k] == pytest.approx(seen[k], rel=1e-6) for k in logged)
    lines = (log_dir / "findings.jsonl").read_text().splitlines()
    assert [json.loads(line)["check"] for line in lines] == ["test-lightning-fire"]


def test_without_tensorboard_logger_uses_log_dir_or_default(tmp_path):
    cb = MLCheckCallback(checks=[_FireAtStep(3)], overfit_batch=False, log_dir=tmp_path / "mine")
    with pytest.warns(MLCheckWarning):
        fit(tmp_path / "a", cb, max_epochs=1, logger=False)
    assert (tmp_path / "mine" / "findings.jsonl").exists()
    cb = MLCheckCallback(checks=[_FireAtStep(3)], overfit_batch=False)
    with pytest.warns(MLCheckWarning):  # a CSVLogger's run directory, beside its metrics.csv
        fit(tmp_path / "b", cb, max_epochs=1, logger=lpt.loggers.CSVLogger(tmp_path / "b"))
    assert (tmp_path / "b" / "lightning_logs" / "version_0" / "findings.jsonl").exists()
    cb = MLCheckCallback(checks=[_FireAtStep(3)], overfit_batch=False)
    with pytest.warns(MLCheckWarning):  # no logger at all: a folder of mlcheck's own
        fit(tmp_path / "c", cb, max_epochs=1, logger=False)
    assert (tmp_path / "c" / "lightning_logs" / "mlcheck" / "findings.jsonl").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read().decode())


@pytest.mark.slow
def test_tensorboard_server_shows_the_finding(tmp_path):
    cb = MLCheckCallback(checks=[_FireAtStep(31)], overfit_batch=False)
    with pytest.warns(MLCheckWarning):
        fit(tmp_path, cb, max_epochs=1)
    log_root = tmp_path / "lightning_logs"
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(log_root),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tag = "mlcheck/test-lightning-fire/text"
    try:
        deadline = time.monotonic() + 90
        tags: dict = {}
        while time.monotonic() < deadline:
            assert server.poll() is None, "tensorboard exited"
            try:
                tags = _get_json(f"http://127.0.0.1:{port}/data/plugin/text/tags")
                if any(tag in t for t in tags.values()):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        run = next(r for r, t in tags.items() if tag in t)
        assert run == "version_0"
        query = urllib.parse.urlencode({"run": run, "tag": tag})
        entries = _get_json(f"http://127.0.0.1:{port}/data/plugin/text/text?{query}")
        assert entries[0]["step"] == 31
        assert "reached step 31" in entries[0]["text"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- distributed --------------------------------------------------------------------------------

DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, warnings
    import numpy as np, torch
    from torch import nn
    import lightning.pytorch as L
    from mlcheck import Check, MLCheckWarning
    from mlcheck.checks.base import default_checks
    from mlcheck.integrations.lightning import MLCheckCallback

    class Broken(Check):  # fails on every batch it is given (only rank zero runs checks)
        id = "ddp-broken"
        family = "test"
        def on_batch(self, batch, run):
            raise RuntimeError("boom")

    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        def forward(self, x):
            return self.net(x)
        def training_step(self, batch, i):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)
        def validation_step(self, batch, i):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self(x), y), sync_dist=True)
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    if __name__ == "__main__":
        out = sys.argv[1]
        from sklearn.datasets import load_digits
        x, y = load_digits(return_X_y=True)
        x = torch.tensor(x / 16, dtype=torch.float32); y = torch.tensor(y)
        train = torch.utils.data.TensorDataset(x[:1200], y[:1200])
        # validation rows 1200.. with 16 training rows at odd positions at the end: the
        # DistributedSampler puts them all in rank 1's validation shard
        val_idx = list(range(1200, 1452))
        for fresh, dup in zip(range(1452, 1476), range(1, 49, 2)):
            val_idx += [fresh, dup]
        val = torch.utils.data.TensorDataset(x[val_idx], y[val_idx])
        L.seed_everything(0, verbose=False)
        cb = MLCheckCallback(checks=[*default_checks(), Broken()], overfit_batch=False, every_n_steps=5,
                             log_dir=os.path.join(out, "logs"))
        trainer = L.Trainer(strategy="ddp", accelerator="cpu", devices=2, max_epochs=2,
                            enable_progress_bar=False, enable_model_summary=False, logger=False,
                            enable_checkpointing=False, default_root_dir=out, callbacks=[cb])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(Net(), torch.utils.data.DataLoader(train, batch_size=32, shuffle=True),
                        torch.utils.data.DataLoader(val, batch_size=32))
        rank = trainer.global_rank
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump({
                "findings": [x.check for x in cb.findings],
                "warnings": sum(issubclass(w.category, MLCheckWarning) for w in caught),
                "steps": trainer.global_step,
                "disabled": sorted(cb.monitor.disabled),
            }, f)
    """
)


@pytest.mark.slow
def test_ddp_two_gloo_processes_only_rank_zero_writes_and_warns(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), PYTHONWARNINGS="ignore")
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["steps"] == r1["steps"] > 0
    # the duplicated rows live in rank 1's shard of the validation data and in both ranks'
    # training shards: only gathering every rank's batches lets rank zero see the overlap
    assert "train-val-overlap" in r0["findings"]
    assert r0["warnings"] >= 1
    assert r1["findings"] == [] and r1["warnings"] == 0
    # the check that failed on rank zero is switched off on every rank
    assert r0["disabled"] == r1["disabled"] == ["ddp-broken"]
    lines = (tmp_path / "logs" / "findings.jsonl").read_text().splitlines()
    checks = [json.loads(line)["check"] for line in lines]
    assert checks == r0["findings"]  # written once, by rank zero


def test_nonfinite_loss_names_the_parameters_and_its_first_step(tmp_path):
    # lr x100 on the regression: the loss overflows within the first epoch; losses reach the
    # monitor in blocks of FLUSH_EVERY steps, yet the first non-finite step is exact and the
    # parameters that went non-finite are named
    cb = MLCheckCallback(overfit_batch=False)
    with pytest.warns(MLCheckWarning):
        fit(tmp_path, cb, model_kw=dict(lr=5.0, regression=True), data_kw=dict(regression=True), max_epochs=2)
    run = cb.monitor.run
    found = {f.key: f for f in cb.findings if f.check == "nonfinite-loss"}
    assert found["train_loss"].step == run.train_loss.first_nonfinite_x
    named = [f for key, f in found.items() if key in ("nonfinite_weights", "nonfinite_grads")]
    assert named and all(any(p.startswith("net.") for p in f.evidence["parameters"]) for f in named)
    assert run.train_loss.total == 2 * 38  # every step reached the monitor, the last block too


class _RowLoss(lpt.LightningModule):
    """Its loss is the mean of the batch's targets (plus a parameter's zero): a known value per
    batch, so the epoch's training loss can be checked to the digit."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return (self.w * x[:, 0]).mean() + y.mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize("accumulate", [1, 2])
def test_the_epoch_training_loss_weighs_each_step_by_its_rows(tmp_path, accumulate):
    # 128 rows at 0 in 8 batches of 16, then a last batch of 5 rows at 10: the per-sample mean
    # is 50/133 (what Lightning's own on_epoch logging gives); a mean over batches would say
    # 10/9, and a short last batch in train mode (BatchNorm on 5 rows) then read as a
    # validation loss implausibly below the training loss (`suspicious-val` on a healthy run)
    y = torch.cat([torch.zeros(128), torch.full((5,), 10.0)])
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(133, 3), y), batch_size=16)
    cb = MLCheckCallback(checks=[])
    trainer = quiet_trainer(
        max_epochs=1, default_root_dir=str(tmp_path), accumulate_grad_batches=accumulate, callbacks=[cb]
    )
    trainer.fit(_RowLoss(), data)
    assert cb.live.monitor.run.epoch_train_loss.last_value == pytest.approx(50 / 133, rel=1e-6)


def test_a_batch_to_arrays_that_raises_switches_batches_off_not_the_run(tmp_path):
    calls = []

    def broken(batch):
        calls.append(1)
        raise KeyError("image")  # a dict key the user's batches do not have

    cb = MLCheckCallback(batch_to_arrays=broken)
    with pytest.warns(MLCheckInternalWarning, match=r"observing batches failed \(KeyError"):
        trainer, _ = fit(tmp_path, cb, max_epochs=2)
    assert trainer.current_epoch == 2 and trainer.global_step > 0  # trained to the end
    assert len(calls) == 1  # switched off after the first failure
    assert "batches" in cb.live.broken


def test_user17_max_epochs_0_does_not_say_no_problems_found(tmp_path, caplog):
    # Trainer(max_epochs=0) ended with "checked 0 steps, 0 epochs, 29 checks: no problems found."
    with caplog.at_level("INFO", logger="mlcheck"):
        fit(tmp_path, MLCheckCallback(log_dir=tmp_path / "mlcheck"), max_epochs=0)
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mlcheck: checked")]
    assert summary == [
        "mlcheck: checked 0 steps, 0 epochs, 29 checks: no training step was seen, so nothing was judged."
    ], summary


def test_fast_dev_run_says_which_checks_it_left_unjudged(tmp_path, caplog):
    # Trainer(fast_dev_run=True) ended "checked 1 step, 1 epoch, 29 checks: no problems found.",
    # which reads as a clean bill for a run most checks could not judge
    with caplog.at_level("INFO", logger="mlcheck"):
        fit(tmp_path, MLCheckCallback(log_dir=tmp_path / "mlcheck"), fast_dev_run=True)
    (summary,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mlcheck: checked")]
    assert summary.startswith("mlcheck: checked 1 step, 1 epoch, 29 checks: no problems found, but this run ")
    assert "(fast_dev_run=True) was too short for " in summary and "train longer for their verdict" in summary
    for needs in ("loss-plateau, lr-schedule 100 steps", "lr-too-high 400 steps", "train-val-gap", "dead-units"):
        assert needs in summary, summary


def _untimed(line: dict) -> dict:
    return {k: v for k, v in line.items() if k != "time"}
