"""`MLCheckCallback` for Keras 3: turns `model.fit` events into mlcheck observations."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import warnings
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Iterable, Sequence

import keras
import numpy as np

from mlcheck.checks.base import Check, registry
from mlcheck.findings import Finding, MLCheckInternalWarning
from mlcheck.integrations.keras import backend
from mlcheck.integrations.keras.trainable import (
    KerasTrainable,
    batches_of,
    current_lr,
    first_layer_kind,
    run_info_facts,
    to_numpy,
    unpack,
)
from mlcheck.metrics import strip_split
from mlcheck.monitor import Monitor
from mlcheck.run import RunInfo
from mlcheck.sanity.context import Budget, PreflightContext
from mlcheck.sinks import JsonlSink, Sink, TensorBoardSink

logger = logging.getLogger(__name__)

#: Findings about the validation side go to `validation/`, everything else to `train/`.
VAL_SIDE_CHECKS = frozenset({"suspicious-val"})
#: Log keys that are not metrics of the model.
_NOT_METRICS = frozenset({"loss", "learning_rate", "lr"})


class MLCheckCallback(keras.callbacks.Callback):
    """Watches a Keras `model.fit` and reports what looks wrong while there is time to fix it.

    Each problem becomes a `Finding` in `findings`, a `mlcheck.MLCheckWarning` (warnings and
    errors), a log record, a line in `<log_dir>/findings.jsonl` and TensorBoard events in
    `<log_dir>/train/` and `<log_dir>/validation/` beside mlcheck's own copy of the curves
    (`epoch_loss`, `epoch_<metric>`, `epoch_learning_rate`, `batch_loss`), laid out like
    Keras' `TensorBoard` callback, which needs TensorFlow; this one does not.

    What it observes: the loss of every batch; the epoch logs split into train and validation;
    every `every_n_steps` steps the learning rate (a schedule evaluated at the optimizer's
    iteration), the update/weight ratio and non-finite weights and gradients; and
    batches of inputs and targets (the first `sample_batches` of each split and one in
    `sample_every_n_batches` after them for every data check; all of them in the first `hash_epochs`
    epochs for `full_pass_checks`, so `train-val-overlap` hashes every sample). Batches are seen by
    wrapping `model.train_step`/`test_step` for the duration of `fit` (torch backend without
    `jit_compile`; TensorFlow and JAX with `run_eagerly=True`); with a compiled step they are
    taken from `train_data`/`validation_data` passed here instead. Before the first step,
    the `overfit-batch` pre-flight check trains a copy of the model on the first batch; the
    model, its optimizer and the random state are left exactly as they were.

    Args:
        checks: check instances to run. Default None: every check that is on by default.
        suppress: check ids to silence, e.g. `("class-imbalance",)`. Default: none.
        log_dir: where TensorBoard events and `findings.jsonl` go. Default "logs", like Keras'
            `TensorBoard` callback. None writes neither.
        stop_on: None (default), "error" or "warning": stop training (`model.stop_training`)
            once a finding of that severity or worse is raised.
        every_n_steps: how often the costly statistics (update ratio, weight and gradient
            scans, sampled batches, `batch_loss` events) are taken. Default 25, as `Monitor`.
        strict: re-raise exceptions from checks instead of switching the check off.
            Default False.
        overfit_batch: run the `overfit-batch` check on a copy of the model at train start.
            Default True.
        overfit_steps: optimizer steps the copy may take. Default None: the check's own
            budget (`OverfitBatch(steps=200)`, enough for Adam at 1e-3 to memorise 16 samples).
        overfit_seconds: wall-clock safety net for it (an INFO "inconclusive" when hit).
            Default 10 s.
        validation_data / train_data: arrays `(x, y)`, lists of batches or datasets, used
            where the step cannot be observed (a compiled step) for the data checks and
            overfit-a-batch. Default None.
        batch_size: batch size for slicing `train_data`/`validation_data` arrays. Default 32,
            Keras' default.
        sample_batches: first batches of each split in a fit that every data check sees.
            Default 8: 256 rows at batch size 32, over the 200 that `feature-leakage` needs.
        sample_every_n_batches: after those, one batch in this many (counted over the fit)
            goes to every data check. Default 100.
        hash_epochs: first epochs of each fit in which every batch goes to `full_pass_checks`.
            Default 1; 0 turns it off.
        full_pass_checks: the cheap checks that see every batch of those epochs. Default
            `("train-val-overlap", "nonfinite-input", "class-imbalance")`: overlap must hash
            every sample, one NaN row is enough to spoil a step, and a full count of the labels
            is exact where samples of a rare class would be a guess (each costs ~0.05 ms a
            batch of 32x64).
        task / num_classes: override what is inferred from the loss and the output width.
        warn: raise Python warnings for WARNING and ERROR findings. Default True.

    Example:
        >>> from mlcheck.integrations.keras import MLCheckCallback
        >>> cb = MLCheckCallback(log_dir="logs/run1")
        >>> model.fit(x, y, validation_split=0.2, epochs=5, callbacks=[cb])  # doctest: +SKIP
        >>> cb.findings  # doctest: +SKIP
        []
    """

    def __init__(
        self,
        checks: Sequence[Check] | None = None,
        suppress: Iterable[str] = (),
        log_dir: str | Path | None = "logs",
        stop_on: str | None = None,
        every_n_steps: int = 25,
        strict: bool = False,
        overfit_batch: bool = True,
        overfit_steps: int | None = None,
        overfit_seconds: float = 10.0,
        validation_data: Any = None,
        train_data: Any = None,
        batch_size: int = 32,
        sample_batches: int = 8,
        sample_every_n_batches: int = 100,
        hash_epochs: int = 1,
        full_pass_checks: Iterable[str] = ("train-val-overlap", "nonfinite-input", "class-imbalance"),
        task: str | None = None,
        num_classes: int | None = None,
        warn: bool = True,
    ) -> None:
        super().__init__()
        if stop_on not in (None, "error", "warning"):
            raise ValueError(f"stop_on must be None, 'error' or 'warning', got {stop_on!r}")
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        if overfit_steps is not None and overfit_steps < 1:
            raise ValueError(f"overfit_steps must be >= 1, got {overfit_steps}; "
                             "pass overfit_batch=False to switch overfit-a-batch off")
        suppress = tuple(suppress)
        unknown = set(suppress) - set(registry())
        if unknown:
            raise ValueError(f"suppress names unknown check ids {sorted(unknown)}; "
                             f"available: {', '.join(registry())}")
        self.checks = checks
        self.suppress = suppress
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.stop_on = stop_on
        self.every_n_steps = every_n_steps
        self.strict = strict
        self.overfit_batch = overfit_batch
        self.overfit_steps = overfit_steps
        self.overfit_seconds = overfit_seconds
        self.validation_data = validation_data
        self.train_data = train_data
        self.batch_size = batch_size
        self.sample_batches = sample_batches
        self.sample_every_n_batches = max(1, sample_every_n_batches)
        self.hash_epochs = hash_epochs
        self.full_pass_checks = tuple(full_pass_checks)
        self.task = task
        self.num_classes = num_classes
        self.warn = warn
        self.monitor: Monitor | None = None
        self._tensorboard: _KerasRunSink | None = None
        self._wrapped: _StepWrapper | None = None
        #: seconds spent per kind of observation in the last fit (see benchmarks/).
        self.timings: dict[str, float] = {}

    @property
    def findings(self) -> list[Finding]:
        """Findings of the last (or current) fit, in the order they were raised."""
        return list(self.monitor.findings) if self.monitor is not None else []

    # -- fit events ----------------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        model = self.model
        self._unwrap()
        facts = run_info_facts(model)
        steps = self.params.get("steps") if self.params else None
        epochs = self.params.get("epochs") if self.params else None
        info = RunInfo(
            task=self.task or facts["task"],
            num_classes=self.num_classes or facts["num_classes"],
            total_steps=steps * epochs if steps and epochs else None,
            max_epochs=epochs,
            has_scheduler=facts["has_scheduler"],
        )
        sinks: list[Sink] = []
        self._tensorboard = None
        if self.log_dir is not None:
            self._tensorboard = _KerasRunSink(self.log_dir)
            sinks = [self._tensorboard, JsonlSink(self.log_dir / "findings.jsonl")]
        self.monitor = Monitor(
            self.checks,
            suppress=self.suppress,
            stop_on=self.stop_on,
            every_n_steps=self.every_n_steps,
            strict=self.strict,
            warn=self.warn,
            info=info,
            sinks=sinks,
        )
        optimizer = getattr(model, "optimizer", None)
        self._step = int(backend.scalar(optimizer.iterations)) if optimizer is not None else 0
        self._epoch = 0
        self._fit_epochs = 0  # epochs finished in this fit (initial_epoch may be > 0)
        self._split_batches = {"train": 0, "val": 0}  # batches seen in this fit
        self._batch_index = 0
        self._val_index = 0
        self._in_validation = False
        self._input_kind = first_layer_kind(model)
        self._snapshot: list[Any] | None = None
        self._broken: set[str] = set()
        self._weights_scanned_after_nonfinite = False
        self._reset_loss_recovery()
        self.timings: dict[str, float] = {}
        self._overfit_pending = self.overfit_batch
        if backend.can_observe_steps(model):
            self._wrapped = _StepWrapper(self, model)
        else:
            self._observe_given_data()
        self._apply_stop()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._batch_index = 0
        self._reset_loss_recovery()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._step % self.every_n_steps == 0 and "weights" not in self._broken:
            t = perf_counter()
            self._guard("weights", self._take_snapshot)
            self._time("weights", t)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        step = self._step
        t = perf_counter()
        loss = self._batch_loss(logs or {})
        t = self._time("loss", t)
        lr = None
        if "lr" not in self._broken and step % self.every_n_steps == 0:
            lr = self._guard("lr", current_lr, self.model.optimizer)
        t = self._time("lr", t)
        ratio = nonfinite_weights = nonfinite_grads = None
        scan = self._snapshot is not None or (
            loss is not None and not math.isfinite(loss) and not self._weights_scanned_after_nonfinite
        )
        if scan and "weights" not in self._broken:
            stats = self._guard("weights", self._weight_stats)
            if stats is not None:
                ratio, nonfinite_weights, nonfinite_grads = stats
            if loss is not None and not math.isfinite(loss):
                self._weights_scanned_after_nonfinite = True
            t = self._time("weights", t)
        self._snapshot = None
        monitor.log_step(
            step, loss=loss, lr=lr, update_ratio=ratio, epoch=self._epoch,
            nonfinite_grads=nonfinite_grads, nonfinite_weights=nonfinite_weights,
        )
        t = self._time("checks", t)
        if self._tensorboard is not None and step % self.every_n_steps == 0 and loss is not None:
            self._tensorboard.train.scalars(step, {"batch_loss": loss})
            self._time("tensorboard", t)
        self._step += 1
        self._batch_index += 1
        self._apply_stop()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._in_validation = self.monitor is not None and self._wrapped is not None
        self._val_index = 0

    def on_test_end(self, logs: dict | None = None) -> None:
        self._in_validation = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        started = perf_counter()
        logs = {k: v for k, v in ((k, _number(v)) for k, v in (logs or {}).items()) if v is not None}
        train_metrics: dict[str, float] = {}
        val_metrics: dict[str, float] = {}
        for name, value in logs.items():
            split, base = strip_split(name)
            if base in _NOT_METRICS:
                continue
            (val_metrics if split == "val" else train_metrics)[base] = value
        train_loss, val_loss = logs.get("loss"), logs.get("val_loss")
        monitor.log_epoch(
            epoch, step=self._step - 1 if self._step else None,
            train_loss=train_loss, val_loss=val_loss,
            train_metrics=train_metrics, val_metrics=val_metrics,
        )
        if self._tensorboard is not None:
            lr = current_lr(self.model.optimizer)
            train = {f"epoch_{k}": v for k, v in train_metrics.items()}
            if train_loss is not None:
                train["epoch_loss"] = train_loss
            if lr is not None:
                train["epoch_learning_rate"] = lr
            self._tensorboard.train.scalars(epoch, train)
            val = {f"epoch_{k}": v for k, v in val_metrics.items()}
            if val_loss is not None:
                val["epoch_loss"] = val_loss
            if val:
                self._tensorboard.validation.scalars(epoch, val)
            self._tensorboard.flush()
        self._time("epoch", started)
        self._fit_epochs += 1
        self._apply_stop()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._unwrap()
        if self.monitor is not None:
            self.monitor.close()

    # -- observations --------------------------------------------------------------------------

    def _before_train_step(self, data: Any) -> None:
        """Called by the wrapped train step with the batch it is about to train on."""
        x, y, _ = unpack(data)
        self._batch_size = _leading_dim(x)
        if self._overfit_pending:
            self._overfit_pending = False
            t = perf_counter()
            self._overfit(data)
            self._time("overfit_batch", t)
        wanted = self._wanted("train")
        if wanted is not False:
            t = perf_counter()
            self._log_batch(x, y, "train", self._batch_index, wanted)
            self._time("batches", t)

    def _before_test_step(self, data: Any) -> None:
        if not self._in_validation:
            return  # an evaluate() the user runs from another callback
        wanted = self._wanted("val")
        if wanted is not False:
            t = perf_counter()
            x, y, _ = unpack(data)
            self._log_batch(x, y, "val", self._val_index, wanted)
            self._time("batches", t)
        self._val_index += 1

    def _wanted(self, split: str) -> tuple[str, ...] | None | bool:
        """Which checks see the next batch of `split`: None (all of them), some ids, or False.
        Counted over the whole fit, not per epoch: the data of a later epoch is the same data,
        and short epochs would otherwise pay for a fresh sample each time."""
        seen = self._split_batches[split]
        self._split_batches[split] = seen + 1
        if seen < self.sample_batches or seen % self.sample_every_n_batches == 0:
            return None
        if self._fit_epochs < self.hash_epochs and self.full_pass_checks:
            return self.full_pass_checks
        return False

    def _log_batch(self, x: Any, y: Any, split: str, index: int,
                   checks: tuple[str, ...] | None = None) -> None:
        if "batches" in self._broken or self.monitor is None:
            return
        arrays = self._guard("batches", lambda: (to_numpy(x), to_numpy(y)))
        if arrays is None:
            return
        self.monitor.log_batch(
            arrays[0], arrays[1], split=split, step=self._step, epoch=self._epoch,
            index=index, input_kind=self._input_kind, checks=checks, defer=checks is not None,
        )

    def _observe_given_data(self) -> None:
        """A compiled step hides the batches: use the data passed to the callback."""
        train = batches_of(self.train_data, self.batch_size, _ALL) if self.train_data is not None else []
        val = batches_of(self.validation_data, self.batch_size, _ALL) if self.validation_data is not None else []
        if self._overfit_pending and train:
            self._overfit_pending = False
            self._overfit(train[0])
        for split, batches in (("train", train), ("val", val)):
            for index, batch in enumerate(batches):
                wanted = self._wanted(split)
                if wanted is not False:
                    x, y, _ = unpack(batch)
                    self._log_batch(x, y, split, index, wanted)

    def _batch_loss(self, logs: dict) -> float | None:
        """This batch's loss: captured from `compute_loss` in the wrapped step, else recovered
        from Keras' running mean, loss_n = (W_n * mean_n - W_{n-1} * mean_{n-1}) / b_n with
        W the samples seen in the epoch (batches of equal size when the sizes are unknown)."""
        wrapped = self._wrapped
        if wrapped is not None and wrapped.loss is not None:
            value = wrapped.loss
            wrapped.loss = None
            return backend.scalar(value)
        mean = _number(logs.get("loss"))
        if mean is None:
            return None
        size = float(self._batch_size or 1) if wrapped is not None else 1.0
        seen = self._seen + size
        loss = (seen * mean - self._seen * self._mean) / size if self._seen else float(mean)
        self._seen, self._mean = seen, float(mean)
        return loss

    def _reset_loss_recovery(self) -> None:
        self._seen = 0.0
        self._mean = 0.0
        self._batch_size: int | None = None

    def _take_snapshot(self) -> None:
        with backend.no_grad():
            self._snapshot = _flat(v.value for v in self.model.trainable_variables)

    def _weight_stats(self) -> tuple[float | None, list[str] | None, list[str] | None]:
        """(|dW| / |W| over all trainable weights since the snapshot, names of variables with
        non-finite values, names of variables with non-finite gradients), pulled to the host
        in one transfer."""
        ops = keras.ops
        variables = self.model.trainable_variables
        if not variables:
            return None, None, None
        # A LossScaleOptimizer skips steps whose scaled gradients overflow and lowers its scale:
        # inf gradients there are routine (DESIGN.md "must stay silent"), and so is a skipped
        # step's zero update.
        scaled = isinstance(self.model.optimizer, keras.optimizers.LossScaleOptimizer)
        grads = None if scaled else backend.last_gradients(self.model)
        before = self._snapshot
        # all weights (and gradients) as one flat vector: a handful of ops instead of several
        # per variable; the variables are named one by one only when something is non-finite
        present = [g for g in grads if g is not None] if grads is not None else []
        with backend.no_grad():
            weights = _flat(v.value for v in variables)
            parts = [ops.all(ops.isfinite(weights))]
            if present:
                parts.append(ops.all(ops.isfinite(_flat(present))))
            parts = [ops.cast(part, "float32") for part in parts]
            if before is not None:
                parts.append(ops.sum(ops.square(weights - before)))
                parts.append(ops.sum(ops.square(before)))
            values = backend.to_numpy(ops.stack(parts))
        bad_weights = bad_grads = None
        if not values[0]:
            bad_weights = _nonfinite_paths(variables, [v.value for v in variables])
        if present and not values[1]:
            bad_grads = _nonfinite_paths(variables, grads)
        ratio = None
        if before is not None:
            delta, norm = float(values[-2]), float(values[-1])
            if norm > 0 and math.isfinite(delta) and math.isfinite(norm) and not (scaled and delta == 0):
                ratio = math.sqrt(delta) / math.sqrt(norm)
        return ratio, bad_weights or None, bad_grads or None

    # -- overfit-a-batch -----------------------------------------------------------------------

    def _overfit(self, batch: Any) -> None:
        """Runs the `overfit-batch` pre-flight check on a copy of the model trained on `batch`;
        the user's model, optimizer and random state are untouched."""
        monitor = self.monitor
        if monitor is None:
            return
        check = next((c for c in monitor.checks
                      if c.id == "overfit-batch" and c.id not in monitor.disabled), None)
        if check is None or not type(check).implements("preflight"):
            return
        if self.overfit_steps is not None and hasattr(check, "steps"):
            check = copy.copy(check)
            check.steps = self.overfit_steps
        x, y, w = unpack(batch)
        trainable = KerasTrainable(self.model, train_data=[(x, y) if w is None else (x, y, w)],
                                   batch_size=self.batch_size)
        saved = trainable.rng_state()
        findings: list[Finding] = []
        try:
            ctx = PreflightContext(
                trainable,
                budget=Budget(steps=self.overfit_steps or Budget.steps, seconds=self.overfit_seconds),
                info={"source": "keras-callback"},
            )
            with warnings.catch_warnings():
                # Keras' own numpy conversions (get_config, logs) warn under numpy 2; noise from
                # a side computation on a copy is not the user's business
                warnings.simplefilter("ignore", DeprecationWarning)
                findings = list(check.preflight(ctx) or ())
        except Exception as exc:
            if self.strict:
                raise
            monitor._switch_off(check, exc)  # reported once, like a check failing in a hook
        finally:
            trainable.set_rng_state(saved)
        for finding in findings:
            if finding.step is None:
                finding = dataclasses.replace(finding, step=self._step, epoch=self._epoch)
            monitor.report(finding)

    # -- helpers -------------------------------------------------------------------------------

    def _time(self, kind: str, started: float) -> float:
        now = perf_counter()
        self.timings[kind] = self.timings.get(kind, 0.0) + now - started
        return now

    def _apply_stop(self) -> None:
        if self.monitor is not None and self.monitor.should_stop and self.model is not None:
            self.model.stop_training = True

    def _guard(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Runs one of the adapter's own observations; a failure switches that observation off
        for the run (reported once) instead of stopping training, unless `strict`."""
        try:
            return fn(*args)
        except Exception as exc:
            if self.strict:
                raise
            self._broken.add(what)
            text = (f"mlcheck: observing {what} failed ({type(exc).__name__}: {exc}) and is "
                    "switched off for this run; training is unaffected. Pass strict=True to raise.")
            logger.warning(text, exc_info=exc)
            warnings.warn(text, MLCheckInternalWarning, stacklevel=2)
            return None

    def _unwrap(self) -> None:
        if self._wrapped is not None:
            self._wrapped.restore()
            self._wrapped = None


_ALL = 1 << 62


def _number(value: Any) -> float | None:
    """A log value as a float: Python and numpy numbers, 0-d tensors; None for anything else."""
    if value is None or isinstance(value, (bool, str)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _leading_dim(x: Any) -> int | None:
    shape = getattr(x, "shape", None)
    if shape is None or not len(shape):
        return None
    try:
        return int(shape[0])
    except (TypeError, ValueError):
        return None


class _StepWrapper:
    """Wraps `train_step`, `test_step` and `compute_loss` of one model for one fit, so the
    callback sees each batch and each batch's loss; what is computed does not change. The
    wrappers are instance attributes, removed again by `restore()` (or by themselves, should
    a fit end in an exception and a later fit run without this callback)."""

    _NAMES = ("train_step", "test_step", "compute_loss")

    def __init__(self, callback: MLCheckCallback, model: Any) -> None:
        self.callback = callback
        self.model = model
        self.loss: Any = None
        self.active = True
        # fit() hands the model a new History each time: a wrapper left behind by a fit that
        # ended in an exception (no on_train_end) recognises a later fit and removes itself.
        self.fit_history = getattr(model, "history", None)
        self._in_train_step = False
        self._saved: dict[str, Any] = {}
        for name in self._NAMES:
            stale = getattr(model.__dict__.get(name), "_mlcheck_wrapper", None)
            if stale is not None:
                stale.restore()
        for name in self._NAMES:
            self._saved[name] = model.__dict__.get(name, _MISSING)
            wrapper = getattr(self, f"_make_{name}")(getattr(model, name))
            wrapper._mlcheck_wrapper = self
            setattr(model, name, wrapper)

    def _current(self) -> bool:
        if self.active and self.model.history is self.fit_history:
            return True
        self.restore()
        return False

    def _make_train_step(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def train_step(*args: Any, **kwargs: Any) -> Any:
            if self._current():
                self.callback._before_train_step(backend.step_data(args, kwargs))
                self._in_train_step = True
            try:
                return original(*args, **kwargs)
            finally:
                self._in_train_step = False

        return train_step

    def _make_test_step(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def test_step(*args: Any, **kwargs: Any) -> Any:
            if self._current():
                self.callback._before_test_step(backend.step_data(args, kwargs))
            return original(*args, **kwargs)

        return test_step

    def _make_compute_loss(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def compute_loss(*args: Any, **kwargs: Any) -> Any:
            value = original(*args, **kwargs)
            if self._in_train_step and value is not None:
                self.loss = value
            return value

        return compute_loss

    def restore(self) -> None:
        if not self.active:
            return
        self.active = False
        for name, saved in self._saved.items():
            if getattr(self.model.__dict__.get(name), "_mlcheck_wrapper", None) is not self:
                continue  # already replaced by someone else
            if saved is _MISSING:
                if name in self.model.__dict__:
                    delattr(self.model, name)
            else:
                setattr(self.model, name, saved)


_MISSING = object()


class _KerasRunSink(Sink):
    """TensorBoard output laid out like Keras' `TensorBoard` callback: `<log_dir>/train/` and
    `<log_dir>/validation/`. Findings go to train/, validation-side ones to validation/."""

    def __init__(self, log_dir: Path) -> None:
        self.train = TensorBoardSink(log_dir / "train")
        self.validation = TensorBoardSink(log_dir / "validation")

    def _side(self, finding: Finding) -> TensorBoardSink:
        if finding.check in VAL_SIDE_CHECKS or finding.evidence.get("split") == "val":
            return self.validation
        return self.train

    def emit(self, finding: Finding, run: str | None = None) -> None:
        self._side(finding).emit(finding, run)

    def mark(self, finding: Finding, run: str | None = None) -> None:
        self._side(finding).mark(finding, run)

    def flush(self) -> None:
        self.train.flush()
        self.validation.flush()

    def close(self) -> None:
        self.train.close()
        self.validation.close()


def _flat(tensors: Iterable[Any]) -> Any:
    """The tensors as one float32 vector (a copy)."""
    ops = keras.ops
    return ops.concatenate([ops.reshape(ops.cast(t, "float32"), (-1,)) for t in tensors])


def _nonfinite_paths(variables: list[Any], values: list[Any]) -> list[str]:
    """Paths of the variables whose value (or gradient, in `values`) holds NaN or Inf."""
    ops = keras.ops
    flags = backend.to_numpy(ops.stack([
        ops.cast(ops.all(ops.isfinite(x)), "float32") if x is not None else ops.ones(())
        for x in values
    ]))
    return [v.path for v, ok in zip(variables, flags) if not ok]
