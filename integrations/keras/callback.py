"""`MLCheckCallback` for Keras 3: turns `model.fit` events into mlcheck observations.

The callback only translates; the live core (`mlcheck.live.LiveRun`) decides what goes to which
check, when to stop and what runs at train start, exactly as for Lightning.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mlcheck import options as opt
from mlcheck.breakpoints import Breakpoints
from mlcheck.checks.base import Check
from mlcheck.integrations.keras import backend
from mlcheck.integrations.keras.adam_eps import adam_betas, adam_step_share
from mlcheck.integrations.keras.function_tap import FunctionTap
from mlcheck.integrations.keras.layers import KerasLayerRecorder, inference_mode_layers, leaf_layers
from mlcheck.integrations.keras.output_tap import OutputTap
from mlcheck.integrations.keras.row_losses import KerasValidationLosses, compiled_from_logits
from mlcheck.integrations.keras.samples import KerasSampleCapture
from mlcheck.integrations.keras.scan import WeightScan
from mlcheck.integrations.keras.symmetry import KerasSymmetricUnits
from mlcheck.integrations.keras.trainable import (
    RATE_TABLE_EPOCHS,
    RATE_TABLE_STEPS,
    KerasTrainable,
    batches_of,
    current_lr,
    data_argument,
    first_layer_kind,
    run_info_facts,
    scheduled_rates,
    to_numpy,
    unpack,
)
from mlcheck.live import (
    BatchRoute,
    HookTimer,
    LiveCallback,
    LiveOptions,
    LiveRun,
    configured_checks,
    split_epoch_metrics,
    validate,
)
from mlcheck.run import EarlyStop, RunInfo
from mlcheck.sinks import JsonlSink, Sink, TrainValTensorBoardSink
from mlcheck.spelling import keywords_checked


class MLCheckCallback(LiveCallback, keras.callbacks.Callback):
    """Watches a Keras `model.fit` and reports what looks wrong while there is time to fix it.

    Each problem becomes a `Finding` in `findings`, a `mlcheck.MLCheckWarning` (warnings and
    errors), a log record, a line in `<log_dir>/findings.jsonl` and TensorBoard events in
    `<log_dir>/train/` and `<log_dir>/validation/` beside mlcheck's own copy of the curves
    (`epoch_loss`, `epoch_<metric>`, `epoch_learning_rate`, `batch_loss`), laid out like
    Keras' `TensorBoard` callback, which needs TensorFlow; this one does not.

    What it observes: the loss of every batch; the epoch logs split into train and validation;
    every `every_n_steps` steps the learning rate (a schedule evaluated at the optimizer's
    iteration), the update/weight ratio and non-finite weights and gradients; and batches of
    inputs and targets (the first `sample_batches` of each split and one in
    `sample_every_n_batches` after them for every data check; every batch of the first
    `hash_epochs` passes for the checks that must see every sample, so `train-val-overlap`
    hashes them all). Batches are seen by wrapping `model.train_step`/`test_step` for the
    duration of `fit` where they run eagerly (torch without `jit_compile`, TensorFlow with
    `run_eagerly=True`), elsewhere by wrapping the `train_function`/`test_function` that call
    the compiled step (jax.jit, tf.function, torch.compile), before the batch enters it. Before
    the first step, the train-start checks (`overfit-batch`) train a
    copy of the model on the first batch; the model, its optimizer and the random state are left
    exactly as they were.

    Args:
        checks: checks to run: instances, classes or ids (an id given twice is one check, the
            later one). Default None: every check that is on by default. `[]` runs none (said once, at INFO).
        suppress: check ids to silence (`mlcheck checks` lists them). Default: none.
        log_dir: where TensorBoard events and `findings.jsonl` go. Default "logs", like Keras'
            `TensorBoard` callback. None (or False, as in Lightning) writes neither. An empty
            string is refused (it would be the working directory): pass "." for that.
        stop_on: None (default), "error" or "warning" (any case): stop training (`model.stop_training`)
            once a finding of that severity or worse is raised (the finding is logged).
        every_n_steps: how often the costly statistics (update ratio, weight and gradient
            scans, the learning rate, `batch_loss` events) are taken. Default 25, as `Monitor`.
            At the default, the layer statistics are taken more often on a planned run (epochs
            x steps) under 200 steps, down to every 10th (docs/layers.md, "Sampling"); a value
            you set is kept.
        strict: re-raise exceptions from checks instead of switching the check off.
            Default False.
        overfit_batch: run the train-start checks (`overfit-batch`) on a copy of the model.
            Default True.
        overfit_steps: step budget of those checks. Default None: 100 (`Budget.steps`, as
            `mlcheck sanity`).
        overfit_seconds: wall-clock safety net for them (an INFO "inconclusive" when hit).
            Default 10 s.
        validation_data / train_data: arrays `(x, y)` or `(x, y, sample_weight)`, `x` alone,
            lists of batches or datasets (any iterable of batches), used for the data checks
            and the train-start checks only where neither the steps nor the step functions can
            be wrapped (a Keras backend mlcheck does not know); anything else is refused here.
            Default None.
        batch_size: batch size for slicing `train_data`/`validation_data` arrays. Default 32,
            Keras' default.
        sample_batches: first batches of each split in a fit that every data check sees (a
            validation split with fewer batches: its first pass). Default 3, as in Lightning.
        sample_every_n_batches: after those, one batch in this many (counted over the fit)
            goes to every data check. Default 100.
        hash_epochs: first passes over each split in which every batch goes to the checks that
            must see every sample. Default 1; 0 turns it off.
        full_pass_checks: ids of the checks that see every batch of those passes. Default None:
            the checks that declare `Signal.EVERY_BATCH` (`mlcheck checks` lists them).
        task / num_classes: override what is inferred from the loss and the output width.
        slice_by: function of one argument, the batch's tuple `(x, y)` (numpy arrays on every
            backend) -> one key per row, the slices `weak-slice` tests
            besides the classes; one that cannot take one argument is refused. Default None:
            classes only.
        breakpoints: conditions on layers, as for the Lightning callback (docs/layers.md,
            Breakpoints): per-layer check ids or functions of a layer's statistics, or a
            `mlcheck.breakpoints.Breakpoints(..., pdb=True)`. A tripped one writes
            `<log_dir>/mlcheck/snapshots/step<N>-<layer>.npz` (`numpy.load`). Torch backend
            with eager steps only (see docs/layers.md). Default None.
        nonfinite_allow: layer names (nested: "encoder/mask") or class names allowed to produce
            NaN/Inf on purpose, for `nonfinite-origin` (an infinity a layer's input already held
            always passes); one string is one name. A name matching no layer or class name is
            warned about at fit start; an empty one is refused (it would match the whole model). Default: none.
        nonfinite_origin: when a train step's loss is NaN/Inf, re-run its batch with hooks on
            every layer to name the layer that produced it (`nonfinite-origin`), as the Lightning
            callback's argument of that name. Each step's loss is read as it is computed, which
            costs a host sync per step where it lives on an accelerator. Default None: where
            the loss lives on the CPU (and always with a `nonfinite-origin` breakpoint); True:
            also on accelerators; False: never. Torch backend with eager steps only.
        warn: raise Python warnings for WARNING and ERROR findings. Default True.
        timing: keep the wall time spent on each kind of observation in `timings` (for
            benchmarks). Default False: the timers cost calls at every step.
        config: the pyproject.toml whose `[tool.mlcheck]` table configures the run (its
            `suppress`; where `checks` is not given, `select` and the checks' arguments), as for
            `mlcheck analyze`. Default None: the nearest one from the working directory (the file
            read is logged). False: none.

    Example:
        >>> from mlcheck.integrations.keras import MLCheckCallback
        >>> cb = MLCheckCallback(log_dir="logs/run1")
        >>> model.fit(x, y, validation_split=0.2, epochs=5, callbacks=[cb])  # doctest: +SKIP
        >>> cb.findings  # doctest: +SKIP
        []
    """

    @keywords_checked
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
        sample_batches: int = 3,
        sample_every_n_batches: int = 100,
        hash_epochs: int = 1,
        full_pass_checks: Iterable[str] | None = None,
        task: str | None = None,
        num_classes: int | None = None,
        warn: bool = True,
        timing: bool = False,
        config: str | Path | bool | None = None,
        slice_by: Callable[[Any], Any] | None = None,
        breakpoints: Any = None,
        nonfinite_allow: Iterable[str] = (),
        nonfinite_origin: bool | None = None,
    ) -> None:
        super().__init__()
        self.options = LiveOptions.from_arguments(locals())  # validated: a wrong value raises here
        self.breakpoints = Breakpoints.parse(breakpoints)
        self.options = self.options.watching(self.breakpoints)
        self.nonfinite_allow = opt.module_names("nonfinite_allow", nonfinite_allow)
        self.checks = checks
        self.suppress = opt.id_items("suppress", suppress)
        keep = self.breakpoints.check_ids if self.breakpoints is not None else ()
        validate(self.options, self.checks, self.suppress, keep)  # unknown ids, a bad [tool.mlcheck] raise here
        log_dir = opt.log_dir(log_dir, flags=(None, False))  # False, as in Lightning: no files
        self.log_dir = Path(log_dir) if log_dir not in (None, False) else None
        # refused here, not where they are first batched mid-fit
        self.validation_data = data_argument("validation_data", validation_data)
        self.train_data = data_argument("train_data", train_data)
        self.batch_size = opt.integer("batch_size", batch_size, minimum=1)
        self.live: LiveRun | None = None
        self._tensorboard: TrainValTensorBoardSink | None = None
        self._wrapped: _StepWrapper | None = None
        self._tap: FunctionTap | None = None
        self._outputs: OutputTap | None = None
        self._samples: KerasSampleCapture | None = None
        self._val_losses: KerasValidationLosses | None = None
        self._loader_watches: dict[str, tuple[Any, Callable[[], None]]] = {}  # split -> (epoch iterator, undo)
        self._layers: KerasLayerRecorder | None = None
        self._train_batch: Any = None
        self._rates: Any = None  # a schedule's rate at each of the first steps (`scheduled_rates`)
        self._rates_from = 0
        self._symmetric: KerasSymmetricUnits | None = None  # layers whose units were all equal at the start
        self.timer = HookTimer(enabled=timing)
        # (model, the epoch after its last) of this callback's last fit: a later `fit` of the same
        # model continues its epochs, as its steps (the optimizer's iterations) continue
        self._last_fit: tuple[Any, int] | None = None
        self._epoch_offset = 0

    # -- fit events ----------------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        model = self.model
        self._unwrap()
        if self._layers is not None:  # hooks of a fit that ended in an exception
            self._layers.abort()
        facts = run_info_facts(model)
        steps = self.params.get("steps") if self.params else None
        epochs = self.params.get("epochs") if self.params else None
        info = RunInfo(
            task=self.options.task or facts["task"],
            num_classes=self.options.num_classes or facts["num_classes"],
            total_steps=steps * epochs if steps and epochs else None,
            max_epochs=epochs,
            has_scheduler=facts["has_scheduler"],
            loss=facts["loss"],
            zeroes_gradients=True,  # each train step computes fresh gradients
            grad_clip=facts["grad_clip"],
            embedding_rows=facts["embedding_rows"],
            input_rescale=facts["input_rescale"],
            base_lr=facts["base_lr"],
        )
        sinks: list[Sink] = []
        self._tensorboard = None
        if self.log_dir is not None:
            self._tensorboard = TrainValTensorBoardSink(self.log_dir)
            self._tensorboard.begin()  # before the train-start checks' findings
            sinks = [self._tensorboard, JsonlSink(self.log_dir / "findings.jsonl")]
        # Keras reads each batch's loss for its own logs: steps go to the checks one by one
        checks = self.checks
        if self.breakpoints is not None:  # breakpoints turn on the checks (and recorder) they need
            checks = self.breakpoints.with_checks(configured_checks(self.checks, self.suppress, self.options.config)[0])
        self.live = LiveRun(
            self.options,
            checks,
            self.suppress,
            sinks=sinks,
            info=info,
            flush_every=1,
            artefact_dir=self.log_dir,
            keep=self.breakpoints.check_ids if self.breakpoints is not None else (),
        )
        self.live.guard("early stopping", self._note_early_stopping)
        self.live.monitor.run.info.adam_betas = self.live.guard(
            "adam betas", adam_betas, getattr(model, "optimizer", None)
        )
        self.live.guard("plateau scheduler", self._note_plateau_scheduler)
        self.live.guard("ignored class", self._note_ignored_class)
        self.live.guard("convolution input", self._note_conv_input)
        # read again at the first training epoch's end (`_note_symmetric_units`)
        self._symmetric = self.live.guard("symmetric units", KerasSymmetricUnits.find, model)
        optimizer = getattr(model, "optimizer", None)
        self._step = int(backend.scalar(optimizer.iterations)) if optimizer is not None else 0
        # a schedule's rate at every step of the first epochs (read every `every_n_steps` after)
        table = min(steps * RATE_TABLE_EPOCHS if steps else RATE_TABLE_STEPS, RATE_TABLE_STEPS)
        self._rates = self.live.guard("lr", scheduled_rates, optimizer, self._step, table)
        self._rates_from = self._step
        self._epoch = 0
        self._first_epoch: int | None = None  # the first epoch this fit trains (`initial_epoch`)
        last = self._last_fit
        self._resume_at = last[1] if last is not None and last[0] is model else None
        self._epoch_offset = 0
        self._batch_index = 0
        self._val_index = 0
        self._in_validation = False
        self._mode_probe: Any = None  # inputs of the first validation batch, until they are probed
        self._mode_probed = False
        self._input_kind = first_layer_kind(model)
        self._scan = WeightScan(model)
        self._scanned_after_nonfinite = False
        self._reset_loss_recovery()
        self.timer.table.clear()
        self._train_start_pending = True
        self._class_weights: dict[int, float] | None = {}  # None: the weights are per sample
        self._samples = KerasSampleCapture(self.live, self.options.slice_by) if self.live.samples_active else None
        self._layers = None
        self._warn_unmatched_allow(self.nonfinite_allow, leaf_layers(model), "/")
        if self.live.layers_active or self.breakpoints is not None:
            self._layers = KerasLayerRecorder.create(model, self.breakpoints, self.log_dir, self.nonfinite_allow)
        self._val_losses = None
        if backend.can_observe_steps(model):
            self._wrapped = _StepWrapper(self, model)
            if self.live.val_losses_active:  # each validation row's loss, from the test steps' outputs
                from_logits = self.live.guard("validation losses", compiled_from_logits, model)
                self._val_losses = KerasValidationLosses(from_logits)
            if self._samples is not None:  # the data set indices of fit's batches, where it has them
                self.live.guard("samples", self._watch_loaders, "train", _fit_epoch_iterator())
        elif backend.can_tap_functions(model):  # a compiled step: its batches, before it runs
            if self._samples is not None:  # and its predictions, sent from inside it where it can
                self.live.guard("samples", self._tap_outputs, model)
            self._tap = FunctionTap(model, self._before_train_step, self._before_test_step)
        else:
            self._observe_given_data()
        self._apply_stop()

    def _tap_outputs(self, model: Any) -> None:
        """Has the compiled step send its predictions to the sample capture (`OutputTap`), or
        says once why they cannot be recorded on this backend."""
        if not backend.can_send_outputs(model):
            self._samples.unavailable(backend.outputs_unseen_reason(model))
            return
        self._outputs = OutputTap.attach(model, self._samples.receive)
        self._samples.expect_sent()

    def _note_early_stopping(self) -> None:
        """Tells the live core what early stopping and best-weight checkpoints `fit` runs with."""
        stops, kept, modes = [], [], []
        for cb in _sibling_callbacks(self):
            keeps_best = isinstance(cb, keras.callbacks.ModelCheckpoint) and cb.save_best_only
            # "auto" too: `stop-on-training` reads the name; `stop-mode` leaves "auto" alone
            if (isinstance(cb, keras.callbacks.EarlyStopping) or keeps_best) and cb.mode in ("min", "max", "auto"):
                words = f"{type(cb).__name__}(monitor={cb.monitor!r}, mode={cb.mode!r})"
                modes.append((words, str(cb.monitor), str(cb.mode)))
            if isinstance(cb, keras.callbacks.EarlyStopping):
                restores = bool(cb.restore_best_weights)
                stops.append(
                    EarlyStop(
                        monitor=str(cb.monitor),
                        patience=int(cb.patience),
                        mode=str(cb.mode),
                        min_delta=float(cb.min_delta),
                        start_from=int(getattr(cb, "start_from_epoch", 0) or 0),
                        keeps_best="EarlyStopping(restore_best_weights=True)" if restores else None,
                    )
                )
            elif isinstance(cb, keras.callbacks.ModelCheckpoint) and cb.save_best_only and cb.mode != "max":
                kept.append((str(cb.monitor), f"ModelCheckpoint(monitor={cb.monitor!r}, save_best_only=True)"))
        self.live.note_early_stopping(stops, kept)
        self.live.monitor.run.info.stop_monitors = tuple(modes)

    def _note_ignored_class(self) -> None:
        """`RunInfo.ignored_class`: the `ignore_class` of the compiled sparse cross-entropy
        (`SparseCategoricalCrossentropy(ignore_class=0)`), where it is a label a class can have."""
        loss = getattr(self.model, "loss", None)
        if isinstance(loss, (list, tuple)) and len(loss) == 1:
            loss = loss[0]
        config = loss.get_config() if isinstance(loss, keras.losses.Loss) else {}
        value = config.get("ignore_class")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            self.live.monitor.run.info.ignored_class = value

    def _note_conv_input(self) -> None:
        """`RunInfo.conv_input`: the first `Conv2D` of the model whose input shape is known (a
        model built from `keras.Input`), with its `data_format`."""
        for layer in self.model._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.Conv2D):
                try:
                    shape = tuple(layer.input.shape[1:])
                except Exception:  # a subclassed model's layer has no symbolic input: unknown
                    return
                if len(shape) == 3 and all(isinstance(n, int) for n in shape):
                    info = self.live.monitor.run.info
                    info.conv_input = (f"Conv2D layer '{layer.name}'", shape, str(layer.data_format))
                return

    def _note_plateau_scheduler(self) -> None:
        """`RunInfo.plateau_scheduler`: the rate's only schedule is a `ReduceLROnPlateau` that `fit`
        runs beside this callback (no `LearningRateSchedule` in the optimizer, no
        `LearningRateScheduler` callback); `RunInfo.built_lr`, the plain rate the optimizer was
        built with, where a `LearningRateScheduler` will set the rate."""
        info = self.live.monitor.run.info
        siblings = _sibling_callbacks(self)
        plateau = any(isinstance(cb, keras.callbacks.ReduceLROnPlateau) for cb in siblings)
        scheduler_callback = any(isinstance(cb, keras.callbacks.LearningRateScheduler) for cb in siblings)
        timed = info.has_scheduler or scheduler_callback
        if scheduler_callback and not info.has_scheduler:
            # the rate the optimizer was built with, before the scheduler sets its first one
            info.built_lr = current_lr(getattr(self.model, "optimizer", None))
        if plateau and not timed:
            info.plateau_scheduler = True
        info.plateau_monitors = tuple(
            (str(cb.monitor), str(cb.mode))
            for cb in siblings
            if isinstance(cb, keras.callbacks.ReduceLROnPlateau) and getattr(cb, "mode", None) in ("min", "max")
        )

    def _note_adam_eps(self) -> None:
        """`RunInfo.adam_eps` and `adam_step_share`, once, at the first training epoch's end: the
        optimizer's epsilon against its own running gradient size (`adam_step_share`)."""
        found = adam_step_share(getattr(self.model, "optimizer", None))
        if found is not None:
            info = self.live.monitor.run.info
            info.adam_eps, info.adam_step_share = found

    def _note_symmetric_units(self) -> None:
        """`RunInfo.symmetric_units`, once, at the first training epoch's end: the layers whose
        units were all equal at the start, moved and are still all equal (`KerasSymmetricUnits`)."""
        if self._symmetric is None:
            return
        still, self._symmetric = self._symmetric.confirm(), None
        if still:
            self.live.monitor.run.info.symmetric_units = still

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._first_epoch is None:
            self._epoch_offset = self._continued_epochs(epoch)
        epoch += self._epoch_offset
        self._epoch = epoch
        if self._first_epoch is None:
            self._first_epoch = epoch
        self._batch_index = 0
        self._reset_loss_recovery()
        if self.live is not None:
            self.live.start_epoch()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        live = self.live
        if live is None:
            return
        step = self._step
        if step % self.options.every_n_steps == 0:
            with self.timer("weights"):
                live.guard("weights", self._scan.snapshot)
        # the layers' own interval (`LiveRun.plan_layer_steps`): shorter on a short planned run
        if self._layers is not None and step % live.layer_every == 0 and self._layers.due(live, step):
            self._layers.start()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        live = self.live
        if live is None:
            return
        step = self._step
        if self._layers is not None and self._layers.recording:
            with self.timer("layer_stats"):
                self._layers.observe(live, step, self._epoch, self._train_batch)
        with self.timer("loss"):
            loss = self._batch_loss(logs or {})
        lr = ratio = None
        nonfinite: dict[str, list[str]] = {}
        rates, offset = self._rates, step - self._rates_from
        if rates is not None and 0 <= offset < len(rates):
            lr = float(rates[offset])
        elif step % self.options.every_n_steps == 0:
            with self.timer("lr"):
                lr = live.guard("lr", current_lr, self.model.optimizer)
        nonfinite_loss = loss is not None and not math.isfinite(loss)
        if self._scan.before is not None or (nonfinite_loss and not self._scanned_after_nonfinite):
            with self.timer("weights"):
                stats = live.guard("weights", self._scan.measure)
            if stats is not None:
                ratio = stats[0]
                nonfinite = {k: v for k, v in (("nonfinite_weights", stats[1]), ("nonfinite_grads", stats[2])) if v}
            self._scanned_after_nonfinite |= nonfinite_loss
        self._scan.before = None
        with self.timer("checks"):
            live.hold_step(
                step, [] if loss is None else [loss], lr=lr, update_ratio=ratio, epoch=self._epoch, nonfinite=nonfinite
            )
            live.flush_steps(list)
        if self._tensorboard is not None and step % self.options.every_n_steps == 0 and loss is not None:
            with self.timer("tensorboard"):
                self._tensorboard.train.scalars(step, {"batch_loss": loss})
        self._step += 1
        self._batch_index += 1
        self._apply_stop()

    def _watch_loaders(self, split: str, iterator: Any) -> None:
        """Hands each `DataLoader` that `fit`'s epoch iterator of `split` makes to the sample
        capture (`KerasSampleCapture.watch_loader`): on torch, fit's arrays are drawn by index
        through one, and a row's id then comes from its index (a hash per index, kept)."""
        samples = self._samples
        if iterator is None or samples is None or split in self._loader_watches:
            return

        def on_loader(loader: Any, size: int | None) -> None:
            self.live.guard("samples", samples.watch_loader, split, loader, size)

        undo = backend.watch_loaders(iterator, on_loader)
        if undo is not None:
            self._loader_watches[split] = (iterator, undo)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._in_validation = self.live is not None and (self._wrapped is not None or self._tap is not None)
        if self._in_validation and self._wrapped is not None and self._samples is not None:
            self.live.guard("samples", self._watch_loaders, "val", getattr(self.model, "_eval_epoch_iterator", None))
        if self._outputs is not None:
            self.live.guard("samples", self._outputs.tap_test)
        if self._in_validation and self._val_losses is not None:
            self._val_losses.start()
        if self._tap is not None:
            self._tap.tap_test()
        self._val_index = 0

    def on_test_end(self, logs: dict | None = None) -> None:
        if self._in_validation and self._mode_probe is not None:
            # once, outside the (possibly compiled) test step: Keras layers carry no mode flag to
            # read, so one inference call of the first validation batch shows what moves
            probe, self._mode_probe = self._mode_probe, None
            self.live.monitor.run.info.train_mode_at_validation = self.live.guard(
                "validation mode", inference_mode_layers, self.model, probe
            )
        if self._in_validation:
            self.live.end_pass("val")
        if self._in_validation and self._val_losses is not None:
            summed = self.live.guard("validation losses", self._val_losses.end)
            if summed is not None:
                self.live.observe_val_losses(self._epoch, *summed)
        self._in_validation = False

    def _continued_epochs(self, epoch: int) -> int:
        """What this fit adds to Keras' epoch numbers: where the callback's last fit trained the
        same model up to epoch E and this one starts below E + 1 (a second `fit` without
        `initial_epoch`), E + 1 - its first epoch, so that TensorBoard's epoch curves and the
        findings continue instead of drawing over the first fit's; else 0."""
        if self._resume_at is None or epoch >= self._resume_at:
            return 0
        return self._resume_at - epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        live = self.live
        if live is None:
            return
        epoch += self._epoch_offset
        self._last_fit = (self.model, epoch + 1)
        if self._samples is not None:
            with self.timer("samples"):
                live.guard("samples", self._samples.flush)
        with self.timer("epoch"):
            logs = {k: v for k, v in ((k, _number(v)) for k, v in (logs or {}).items()) if v is not None}
            metrics = split_epoch_metrics(logs)
            live.guard("symmetric units", self._note_symmetric_units)
            if epoch == self._first_epoch:
                live.guard("adam eps", self._note_adam_eps)
            live.end_epoch(
                epoch, step=self._step - 1 if self._step else None, metrics=metrics, train_loss_from_steps=False
            )
            if self._tensorboard is not None:
                self._tensorboard.epoch(epoch, metrics, current_lr(self.model.optimizer))
        live.end_pass("train")
        self._apply_stop()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._unwrap()
        if self._layers is not None:
            self._layers.abort()
        if self._samples is not None and self.live is not None:
            self.live.guard("samples", self._samples.flush)
            self.live.guard("samples", self._samples.release_loaders)
        if self.live is not None:
            self.live.close()

    def _train_step_raised(self) -> None:
        """The training step raised: neither `on_train_batch_end` nor `on_train_end` follows, so
        a recorded step's layer hooks come off now, and the watched loaders' samplers get their
        classes back. Torch's is a global forward hook: left behind,
        it would see every later forward pass in the process (another model's, another fit's)."""
        try:
            if self._layers is not None:
                self._layers.abort()
            if self._samples is not None:  # a DataLoader of the user's gets its sampler's class back
                self._samples.release_loaders()
        except Exception:  # never mask the user's exception
            pass

    # -- observations --------------------------------------------------------------------------

    def _before_train_step(self, data: Any) -> None:
        """Called by the wrapped train step with the batch it is about to train on."""
        x, y, w = unpack(data)
        if w is not None and self._class_weights is not None and self._epoch == self._first_epoch:
            self.live.guard("class weights", self._note_class_weights, y, w)
        self._batch_size = _leading_dim(x)
        self._train_batch = data  # a breakpoint's snapshot holds it
        if self._train_start_pending:
            self._train_start_pending = False
            with self.timer("overfit_batch"):
                self._train_start_checks(data)
        live = self.live
        count = live.count["train"]
        if count < live.skip_below["train"] and live.task_inferred:
            live.count["train"] = count + 1  # no check wants this batch (`LiveRun.skip_below`)
        else:
            with self.timer("batches"):
                self._log_batch(x, y, "train", self._batch_index)
        if self._samples is not None:
            self._samples.begin("train", self._epoch, x, y, self._batch_index)

    def _note_class_weights(self, y: Any, w: Any) -> None:
        """`fit(class_weight=...)` reaches the step as per-sample weights: the weight of each
        class label, where it is one value per class (`RunInfo.class_weights`), read over the
        first epoch. Weights that differ within a class are `sample_weight`: none then."""
        labels, weights = to_numpy(y), to_numpy(w)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or weights.shape != labels.shape or labels.dtype.kind not in "iuf":
            self._class_weights = None
            return
        found = self._class_weights
        # one sort for the batch: each label's least and largest weight (NaN in either: not one value)
        classes, inverse = np.unique(labels, return_inverse=True)
        lowest = np.full(len(classes), np.inf)
        highest = np.full(len(classes), -np.inf)
        np.minimum.at(lowest, inverse, weights)
        np.maximum.at(highest, inverse, weights)
        for label, low, high in zip(classes.tolist(), lowest.tolist(), highest.tolist()):
            if low != high or label != int(label) or found.setdefault(int(label), low) != low:
                self._class_weights = None
                self.live.monitor.run.info.class_weights = None
                return
        self.live.monitor.run.info.class_weights = dict(found)

    def _after_train_loss(self, loss: Any) -> float | None:
        """Called by the wrapped `compute_loss` of a train step, before its backward pass: the
        layer recorder's NaN watch names the layer behind a non-finite loss (`nonfinite-origin`).
        Returns the loss as a float where the watch read it (`KerasLayers.after_loss`), else None."""
        if self._layers is None:
            return None
        with self.timer("nonfinite_origin"):
            return self.live.guard(
                "nonfinite origin",
                self._layers.after_loss,
                self.live,
                self._step,
                self._epoch,
                loss,
                self._train_batch,
            )

    def _before_test_step(self, data: Any) -> None:
        if not self._in_validation:
            return  # an evaluate() the user runs from another callback
        with self.timer("batches"):
            x, y, _ = unpack(data)
            self._log_batch(x, y, "val", self._val_index)
            if not self._mode_probed:
                self._mode_probed, self._mode_probe = True, x  # a reference: probed at on_test_end
        if self._samples is not None:
            self._samples.begin("val", self._epoch, x, y, self._val_index)
        self._val_index += 1

    def _log_batch(self, x: Any, y: Any, split: str, index: int) -> None:
        live = self.live
        route = live.route_batch(split)
        if route is BatchRoute.SKIP and (split != "train" or live.task_inferred):
            return
        arrays = live.guard("batches", lambda: (to_numpy(x), to_numpy(y)))
        if arrays is not None:
            live.observe_batch(
                route,
                arrays[0],
                arrays[1],
                split=split,
                step=self._step,
                epoch=self._epoch,
                index=index,
                input_kind=self._input_kind,
            )

    def _observe_given_data(self) -> None:
        """A compiled step hides the batches: use the data passed to the callback."""
        train = batches_of(self.train_data, self.batch_size, _ALL) if self.train_data is not None else []
        val = batches_of(self.validation_data, self.batch_size, _ALL) if self.validation_data is not None else []
        if self._train_start_pending and train:
            self._train_start_pending = False
            self._train_start_checks(train[0])
        for split, batches in (("train", train), ("val", val)):
            for index, batch in enumerate(batches):
                x, y, _ = unpack(batch)
                self._log_batch(x, y, split, index)

    def _train_start_checks(self, batch: Any) -> None:
        x, y, w = unpack(batch)
        self.live.run_train_start_checks(
            lambda: KerasTrainable(
                self.model, train_data=[(x, y) if w is None else (x, y, w)], batch_size=self.batch_size
            ),
            step=self._step,
            epoch=self._epoch,
        )

    def _batch_loss(self, logs: dict) -> float | None:
        """This batch's loss: captured from `compute_loss` in the wrapped step, else recovered
        from Keras' running mean, loss_n = (W_n * mean_n - W_{n-1} * mean_{n-1}) / b_n with
        W the samples seen in the epoch (batches of equal size when the sizes are unknown)."""
        wrapped = self._wrapped
        if wrapped is not None and wrapped.loss is not None:
            value = wrapped.loss
            wrapped.loss = None
            return value if type(value) is float else backend.scalar(value)
        mean = _number(logs.get("loss"))
        if mean is None:
            return None
        size = float(self._batch_size or 1)  # unknown (no batch seen): equal sizes assumed
        seen = self._seen + size
        loss = (seen * mean - self._seen * self._mean) / size if self._seen else float(mean)
        self._seen, self._mean = seen, float(mean)
        return loss

    def _reset_loss_recovery(self) -> None:
        self._seen = 0.0
        self._mean = 0.0
        self._batch_size: int | None = None

    def _apply_stop(self) -> None:
        if self.live is not None and self.live.should_stop and self.model is not None:
            self.model.stop_training = True

    def _unwrap(self) -> None:
        for _, undo in self._loader_watches.values():
            undo()
        self._loader_watches = {}
        if self._wrapped is not None:
            self._wrapped.restore()
            self._wrapped = None
        if self._tap is not None:
            self._tap.restore()
            self._tap = None
        if self._outputs is not None:  # after the function tap, which put back the function it wrapped
            self._outputs.detach(self._samples.receive)
            self._outputs = None


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
            if stale is not None and not stale.in_this_fit():
                stale.restore()
            # else another MLCheckCallback of this fit wrapped the step first: this wrapper goes
            # on top of its wrapper, so that both see every batch (replacing it left that
            # callback without a batch: no batch checks, no train-start checks)
        for name in self._NAMES:
            self._saved[name] = model.__dict__.get(name, _MISSING)
            wrapper = getattr(self, f"_make_{name}")(getattr(model, name))
            wrapper._mlcheck_wrapper = self
            setattr(model, name, wrapper)
        # TensorFlow's `fit` makes its `train_function` from the bound `train_step` before any
        # callback's `on_train_begin` (its `test_function` comes later, at the first validation):
        # made again now, it calls the wrapper, and is put back by `restore()`. Without this an
        # eager TensorFlow fit showed the callback no training batch at all (no batch checks,
        # no per-sample outputs), only its validation.
        self._saved_function: Any = None
        if backend.name() == "tensorflow" and getattr(model, "train_function", None) is not None:
            self._saved_function = model.train_function
            model.make_train_function(force=True)

    def in_this_fit(self) -> bool:
        return self.active and self.model.history is self.fit_history

    def _current(self) -> bool:
        if self.in_this_fit():
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
            except BaseException:
                self.callback._train_step_raised()
                raise
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
                read = self.callback._after_train_loss(value)
                # the float the NaN watch read, where it read the loss: `_batch_loss` reads no more
                self.loss = value if read is None else read
            losses = self.callback._val_losses
            if losses is not None and not self._in_train_step and self.active and self.callback._in_validation:
                if self.callback.live.monitor.run.info.task != "regression":
                    self.callback.live.guard("validation losses", losses.collect, args, kwargs)
            samples = self.callback._samples
            if samples is not None and self.active:
                with self.callback.timer("samples"):
                    self.callback.live.guard("samples", samples.collect, args, kwargs)
            return value

        return compute_loss

    def restore(self) -> None:
        """Puts back what this wrapper replaced. A wrapper with another callback's on top of it
        (two MLCheckCallbacks in one fit) leaves the model alone: the one on top puts back, when
        it is restored, what lies under every wrapper restored by then."""
        if not self.active:
            return
        self.active = False
        function = self._saved_function
        for name, saved in self._saved.items():
            if getattr(self.model.__dict__.get(name), "_mlcheck_wrapper", None) is not self:
                continue  # already replaced by someone else, or wrapped by another callback
            under = getattr(saved, "_mlcheck_wrapper", None)
            while under is not None and not under.active:  # restored already, under this one
                if name == "train_step" and under._saved_function is not None and function is not None:
                    function = under._saved_function
                saved = under._saved[name]
                under = getattr(saved, "_mlcheck_wrapper", None)
            if saved is _MISSING:
                if name in self.model.__dict__:
                    delattr(self.model, name)
            else:
                setattr(self.model, name, saved)
            if name == "train_step" and function is not None:
                self.model.train_function = function
                self._saved_function = None


_MISSING = object()


def _fit_epoch_iterator() -> Any:
    """The epoch iterator of the `fit` whose `on_train_begin` is calling (its local
    `epoch_iterator`: Keras hands a callback no reference to it); None where none is found."""

    def accept(found: Any) -> bool:
        return callable(getattr(found, "_get_iterator", None)) and hasattr(found, "data_adapter")

    return _caller_local("epoch_iterator", accept)


def _caller_local(name: str, accept: Callable[[Any], bool]) -> Any:
    """The first local `name` that `accept` takes in the frames that called the function asking
    (up to 8 up the stack, from the hook `fit` called); None where none is."""
    frame = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            break
        found = frame.f_locals.get(name)
        if found is not None and accept(found):
            return found
        frame = frame.f_back
    return None


def _sibling_callbacks(callback: keras.callbacks.Callback) -> list[Any]:
    """The callbacks `fit` runs beside `callback`: Keras hands a callback no reference to them,
    so they are read from the `CallbackList` whose `on_train_begin` is calling it (a few frames
    up the stack); empty where none is found (`callback` called by hand)."""

    def accept(found: Any) -> bool:
        callbacks = getattr(found, "callbacks", None)
        return isinstance(callbacks, list) and any(cb is callback for cb in callbacks)

    owner = _caller_local("self", accept)
    return [] if owner is None else list(owner.callbacks)
