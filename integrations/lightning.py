"""`MLCheckCallback` for PyTorch Lightning: live mlcheck checks on a `Trainer.fit` run.

One class serves both `lightning.pytorch` and the standalone `pytorch_lightning` package: its
bases are the `Callback` classes of whichever of the two are installed. The callback only
translates Lightning's hooks into observations; the live core (`mlcheck.live.LiveRun`) decides
what goes to which check, and the checks live in `mlcheck.checks`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from mlcheck import options as opt
from mlcheck.checks.base import Check
from mlcheck.findings import Severity
from mlcheck.integrations.torch import (
    EMPTY_BATCHES_FIX,
    LightningTrainable,
    grouped_parameter_ids,
    inputs_shape,
    is_empty_batch,
    prediction_module,
)
from mlcheck.integrations.torch_adam_eps import adam_betas, adam_step_share
from mlcheck.integrations.torch_breakpoints import TorchBreakpoints
from mlcheck.integrations.torch_layers import LayerRecorder, locate_nonfinite
from mlcheck.integrations.torch_live import (
    HostCopies,
    LeftoverGradients,
    OneBatch,
    ParameterScan,
    batch_arrays,
    default_batch_to_arrays,
    eval_mode_layers,
    first_conv2d,
    gather,
    leading_rows,
    learning_rate,
    loss_class_weights,
    loss_ignored_class,
    loss_of,
    losses_to_floats,
    pretrained_weights,
    scalars,
    to_numpy,
    train_mode_layers,
    weight_fingerprint,
)
from mlcheck.integrations.torch_row_losses import ValidationLosses
from mlcheck.integrations.torch_samples import SampleCapture
from mlcheck.integrations.torch_symmetry import SymmetricUnits
from mlcheck.live import (
    BatchRoute,
    EpochMetrics,
    HookTimer,
    LiveCallback,
    LiveOptions,
    LiveRun,
    configured_checks,
    split_epoch_metrics,
    validate,
)
from mlcheck.metrics import strip_split
from mlcheck.run import EarlyStop
from mlcheck.spelling import keywords_checked

logger = logging.getLogger(__name__)

#: Why the train-start checks do not run under manual optimization, and how to check the
#: network another way (`mlcheck sanity` cannot drive a manual training_step either).
MANUAL_REASON = (
    "the LightningModule sets automatic_optimization=False, so its training_step steps the "
    "optimizers itself and mlcheck cannot drive the training steps of a copy"
)
MANUAL_HINT = (
    "To check that the network can fit one batch, run `mlcheck sanity model.py` with an "
    "mlcheck_target() that returns the network inside the module with its loss and optimizer, "
    "{'model': module.net, 'train_data': loader, 'loss': nn.CrossEntropyLoss(), "
    "'optimizer': torch.optim.Adam(module.net.parameters())}; overfit_batch=False leaves this out."
)

__all__ = ["MLCheckCallback", "default_batch_to_arrays"]


def _callback_bases() -> tuple[type, ...]:
    bases: list[type] = []
    try:
        from lightning.pytorch import Callback as _LCallback

        bases.append(_LCallback)
    except ImportError:
        pass
    try:
        from pytorch_lightning import Callback as _PLCallback

        bases.append(_PLCallback)
    except ImportError:
        pass
    if not bases:
        raise ImportError(
            "mlcheck.integrations.lightning needs PyTorch Lightning: "
            "pip install 'mlcheck-train[lightning]' (or pip install lightning)"
        )
    return tuple(bases)


#: the arguments `state_key` reads apart from the others (`MLCheckCallback._checks_key`)
_CHECKS_KEY_ARGUMENTS = ("checks", "suppress", "stop_on")


def _differing_arguments(given: dict[str, Any]) -> dict[str, Any]:
    """The arguments of `MLCheckCallback(...)` other than the checks, `suppress` and `stop_on`
    that are not at their default, each as a plain value that prints the same in every process
    (paths as strings, functions by their qualified name, any other object by its type), in the
    signature's order: what tells two callbacks of one Trainer apart in `state_key`."""
    found: dict[str, Any] = {}
    for name, parameter in inspect.signature(MLCheckCallback.__init__).parameters.items():
        if name == "self" or name in _CHECKS_KEY_ARGUMENTS or name not in given:
            continue
        value = _printable(given[name])
        if value != _printable(parameter.default):
            found[name] = value
    return found


def _printable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    return type(value).__qualname__


class MLCheckCallback(LiveCallback, *_callback_bases()):  # type: ignore[misc]
    """Watches a Lightning training run and warns, early and specifically, when it looks wrong.

    Add it to a `Trainer` from `lightning.pytorch` or `pytorch_lightning`; every default check
    then runs on the live run: per-step train loss and learning rate, epoch-level train and
    validation loss and metrics (from `trainer.callback_metrics`, split by name: `val_loss`,
    `val_acc`, `train_loss_epoch`, ...), the update/weight ratio and non-finite gradients and
    weights every `every_n_steps` optimizer steps, and sampled input/target batches. Every
    batch of the first pass over the training and the validation data goes to the checks that
    must see every sample (`train-val-overlap` hashes them). Before the first step, a copy of the
    model trains on the first batch (`overfit-batch`); the user's model, optimizer and random
    state are left exactly as they were.

    Findings are Python warnings (`mlcheck.MLCheckWarning`, WARNING and ERROR only), log records,
    lines in `<log_dir>/findings.jsonl` and TensorBoard events in `log_dir`, which defaults to the
    trainer's own `TensorBoardLogger` run directory so that findings sit beside the loss curves.
    Under distributed training only rank zero observes, writes and warns; the sampled batches of
    every rank are gathered to it through the strategy.

    Args:
        checks: checks to run: instances, classes or ids (an id given twice is one check, the
            later one). Default None: every check on by default. `[]` runs none (said once, at INFO).
        suppress: check ids to silence (`mlcheck checks` lists them). Default: none.
        log_dir: where TensorBoard events and `findings.jsonl` go. Default None: the directory of
            the trainer's `TensorBoardLogger`; without one, of its first logger that has one (a
            `CSVLogger`'s `version_N`, beside `metrics.csv`); with no logger at all,
            `<default_root_dir>/lightning_logs/mlcheck`.
            False: write no files (warnings and logging only). An empty string is refused
            (it would be the working directory): pass "." for that.
        stop_on: None (default), "error" or "warning" (any case): set `trainer.should_stop` once a finding of
            that severity or worse is raised (the finding is logged).
        every_n_steps: optimizer steps between the costly statistics (update ratio, gradient and
            weight scans). Default 25: ~18 us per step averaged over 10 epochs of the digits MLP
            of benchmarks/bench_overhead_lightning.py (CPU; docs/benchmarks.md, Cost). At the
            default, the layer statistics are taken more often on a planned run under 200 steps
            (down to every 10th: docs/layers.md, "Sampling"), so that 5 sampled steps fit in its
            first half; a value you set is kept.
        strict: re-raise exceptions from checks instead of switching the failing check off.
            Default False.
        overfit_batch: run the train-start checks (`overfit-batch`: train a copy of the model on
            the first batch and report when it cannot drive the loss near zero). Default True.
        overfit_steps: step budget of those checks. Default None: 100 (`Budget.steps`, as
            `mlcheck sanity`).
        overfit_seconds: wall-clock safety net for them; when it cuts a check short the result is
            an INFO "inconclusive", never a warning. Default 10.
        sample_batches: first batches of each split that every data check sees (a validation split
            with fewer batches: its first pass). Default 3.
        sample_every_n_batches: after those, every data check sees one batch in this many.
            Default 100: every data check together costs ~1-2 ms per batch on digits, so this
            keeps them far under 1% of a small model's training time.
        hash_epochs: first passes over each split in which every batch goes to the checks that
            must see every sample. Default 1; 0: off.
        full_pass_checks: ids of the checks that see every batch of those passes, merged into
            blocks of up to 1 MiB. Default None: the checks that declare
            `Signal.EVERY_BATCH` (`mlcheck checks` lists them).
        batch_to_arrays: function batch -> (inputs, targets) (tensors or arrays). Default:
            `default_batch_to_arrays` (first tensor = inputs, last tensor = targets).
        task: "classification" or "regression" (any case). Default None: inferred from the targets.
        num_classes: number of classes. Default None: inferred from the model's output width.
        slice_by: function batch -> one key per row (a tensor or array), the slices `weak-slice`
            tests besides the classes. Default None: classes only.
        breakpoints: conditions on layers (docs/layers.md, Breakpoints): per-layer check ids
            (`dead-units`, `nonfinite-origin`, ...), functions of a layer's statistics
            (`mlcheck.layers.LayerStats` -> bool, checked on the sampled layer steps), or a
            `mlcheck.breakpoints.Breakpoints(..., pdb=True)` to open the debugger where one trips.
            When one trips: its finding, and a snapshot of the step (the batch, the layer's input,
            output and weights) in `<log_dir>/mlcheck/snapshots/step<N>-<layer>.pt`, which
            `torch.load(path, weights_only=True)` reads. Setting breakpoints turns on the checks
            and the layer recorder they need. Default None.
        warn: raise Python warnings for WARNING and ERROR findings. Default True.
        config: the pyproject.toml whose `[tool.mlcheck]` table configures the run (its
            `suppress`; where `checks` is not given, `select` and the checks' arguments), as for
            `mlcheck analyze`. Default None: the nearest one from the working directory (the file
            read is logged). False: none.
        timing: keep the wall time spent in each hook in `timings` (for benchmarks). Default False.
        nonfinite_origin: when a step's loss is NaN/Inf, re-run its batch on a copy of the model
            to name the module that produced it (`nonfinite-origin`). Losses are read every 16
            steps with the others, so the callback keeps references to the batches since the last
            read and, from the sampled steps, one copy of the last finite weights to re-run with.
            Default None: where the model lives on the CPU (on an accelerator that memory is the
            device's); True: also on accelerators; False: never.
        nonfinite_allow: module paths or class names allowed to produce NaN/Inf on purpose (an
            infinity a module's input already held always passes); one string is one name. A name
            matching no module path or class name is warned about at fit start; an empty one is refused (it
            would match the whole model). Default: none.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> from mlcheck.integrations.lightning import MLCheckCallback
        >>> cb = MLCheckCallback(stop_on="error")
        >>> trainer = Trainer(max_epochs=5, callbacks=[cb])
        >>> trainer.fit(model, datamodule=dm)              # doctest: +SKIP
        >>> for finding in cb.findings:                    # doctest: +SKIP
        ...     print(finding.format())
    """

    @keywords_checked
    def __init__(
        self,
        checks: Sequence[Check] | None = None,
        suppress: Iterable[str] = (),
        log_dir: str | os.PathLike[str] | bool | None = None,
        stop_on: str | None = None,
        every_n_steps: int = 25,
        strict: bool = False,
        overfit_batch: bool = True,
        overfit_steps: int | None = None,
        overfit_seconds: float = 10.0,
        sample_batches: int = 3,
        sample_every_n_batches: int = 100,
        hash_epochs: int = 1,
        full_pass_checks: Iterable[str] | None = None,
        batch_to_arrays: Callable[[Any], tuple[Any, Any]] | None = None,
        task: str | None = None,
        num_classes: int | None = None,
        warn: bool = True,
        timing: bool = False,
        config: str | os.PathLike[str] | bool | None = None,
        nonfinite_origin: bool | None = None,
        nonfinite_allow: Iterable[str] = (),
        slice_by: Callable[[Any], Any] | None = None,
        breakpoints: Any = None,
    ) -> None:
        super().__init__()
        self._key_arguments = _differing_arguments(locals())
        self.options = LiveOptions.from_arguments(locals())  # validated: a wrong value raises here
        self.breakpoints = TorchBreakpoints(breakpoints) if breakpoints is not None else None
        self.options = self.options.watching(self.breakpoints.breakpoints if self.breakpoints is not None else None)
        self.nonfinite_allow = opt.module_names("nonfinite_allow", nonfinite_allow)
        self.checks = opt.check_items("checks", checks)
        self.suppress = opt.id_items("suppress", suppress)
        keep = self.breakpoints.breakpoints.check_ids if self.breakpoints is not None else ()
        validate(self.options, self.checks, self.suppress, keep)  # unknown ids, a bad [tool.mlcheck] raise here
        self.log_dir = opt.log_dir(log_dir, flags=(None, True, False))
        what = "a function of the batch returning (inputs, targets)"
        self.batch_to_arrays = (
            opt.optional_function("batch_to_arrays", batch_to_arrays, what, arguments=1) or default_batch_to_arrays
        )
        self.timer = HookTimer(enabled=timing)
        self.live: LiveRun | None = None
        self._active = False  # inside a fit (validate/test/predict after it are not observed)
        self._pending_state: dict[str, Any] | None = None
        for name in self._NO_OP_HOOKS:
            self._skip_hook(name, True)
        # called again by each fit's start where it needs them
        self._skip_hook("on_before_backward", True)
        self._skip_hook("on_validation_batch_start", True)

    #: Hooks Lightning calls at every training step that this callback leaves as Lightning's
    #: no-ops. Lightning calls a callback's hook only where the attribute is callable
    #: (`_call_callback_hooks`), and each call it makes costs a profiler context and module
    #: look-ups, some 12 Python calls: on the digits MLP, 77 of the 165 Python calls a step the
    #: callback added were that dispatch (docs/benchmarks.md, "Calls per step").
    _NO_OP_HOOKS = ("on_after_backward", "on_before_zero_grad")

    #: Held steps at which losses on an accelerator are handed over even without a scan at that
    #: step (an optimizer Lightning does not see): a bound on what is held, far beyond the usual
    #: flush at the next sampled step.
    _FLUSH_CAP = 256

    def _skip_hook(self, name: str, skip: bool) -> None:
        """Lightning skips hook `name` (set to None on the instance, which Lightning's
        `callable` test passes over) or calls it again. A subclass's own override of the hook is
        never skipped."""
        if skip and getattr(type(self), name) is getattr(MLCheckCallback, name):
            self.__dict__[name] = None
        else:
            self.__dict__.pop(name, None)

    # -- fit -----------------------------------------------------------------------------------

    def _resolve_log_dir(self, trainer: Any) -> Path | None:
        """`log_dir`, else the run directory of the trainer's TensorBoard logger (findings beside
        the curves), else of its first logger with one (CSVLogger), else a folder of our own."""
        if self.log_dir not in (None, True):
            return Path(self.log_dir) if self.log_dir is not False else None  # type: ignore[arg-type]
        loggers = sorted(
            getattr(trainer, "loggers", None) or [], key=lambda lg: type(lg).__name__ != "TensorBoardLogger"
        )
        found = next((lg.log_dir for lg in loggers if getattr(lg, "log_dir", None)), None)
        return Path(found) if found else Path(trainer.default_root_dir) / "lightning_logs" / "mlcheck"

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._rank_zero = bool(trainer.is_global_zero)
        self._world = int(getattr(trainer, "world_size", 1) or 1)
        self._active = True
        self.timer.table.clear()
        log_dir = self._resolve_log_dir(trainer) if self._rank_zero else None
        checks = self.checks
        if self.breakpoints is not None:  # breakpoints turn on the checks (and recorder) they need
            self.breakpoints.reset()
            checks = self.breakpoints.breakpoints.with_checks(
                configured_checks(self.checks, self.suppress, self.options.config)[0]
            )
        self.live = LiveRun(
            self.options,
            checks,
            self.suppress,
            log_dir=log_dir,
            default_sinks=self._rank_zero,
            run_name=log_dir.name if log_dir is not None and self.log_dir in (None, True) else None,
            keep=self.breakpoints.breakpoints.check_ids if self.breakpoints is not None else (),
        )
        # a confirming pass would gather batches on rank zero's say alone: not under DDP
        self.live.confirm_passes = self._world == 1
        self._copies: HostCopies | None = None  # set at train start, where the module's device is known
        # Per-fit translation state (reset so one instance can serve several fits).
        self._val_index = 0
        self._val_mode_read = not self._rank_zero  # the layers' modes, read at one validation batch
        # the module's own mode at the end of the last training batch: evaluation mode there and
        # at the next one's end is a training step run in evaluation mode (read at batch ends,
        # the hook Lightning calls at every step; the layers then read once)
        self._eval_mode_read = not self._rank_zero
        self._eval_at_last_end = False
        self._val_names: set[str] = set()  # unprefixed callback_metrics logged by validation
        self._before_val: dict[str, float] = {}
        self._val_metrics: dict[str, float] = {}
        self._accum: list[torch.Tensor] = []  # micro-batch losses since the last step
        self._accum_rows = 0  # and the rows of their batches
        self._epoch = int(trainer.current_epoch)
        self._last_backward_loss: torch.Tensor | None = None
        self._optimizer_count = 0  # the trainer's optimizers, counted at train start
        self._global_step = int(trainer.global_step)  # after the last observed batch
        self._epoch_loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
        self._automatic = bool(getattr(pl_module, "automatic_optimization", True))
        # each step's loss looked at before its backward while the NaN origin is watched on the
        # CPU (`_watch_loss_before_step`)
        self._loss_before_step = False
        self._want_backward_loss(not self._automatic)
        self._first_optimizer: Any = None
        self._lr: float | None = None
        # automatic optimization zeroes the gradients itself, through the module's
        # `optimizer_zero_grad`: they go stale only under manual optimization or an override
        self._zeroes_gradients = self._automatic and not _overrides_zero_grad(pl_module)
        self._scan = ParameterScan(pl_module, track_gradients=not self._zeroes_gradients)
        self._leftover: LeftoverGradients | None = None  # hooked at train start, where they can go stale
        self._hook: Any = None
        self._conv_hook: Any = None  # the first Conv2d's input shape, seen once (RunInfo.conv_input)
        self._start_trainable: LightningTrainable | None = None  # the train-start checks' (its trace)
        self._started = False
        # the empty batches before the first with samples: how many, the first's inputs' shape, said
        self._empty_batches, self._empty_shape, self._empty_said = 0, (), False
        self._resumed = bool(getattr(trainer, "ckpt_path", None))
        self._input_kind = self._scan.input_kind
        if self._rank_zero:
            self._warn_unmatched_allow(self.nonfinite_allow, pl_module.named_modules(), ".")
        # per-layer statistics and the origin of a NaN: only where a check consumes them
        self._layers = None
        if self._rank_zero and (self.live.layers_active or self.breakpoints is not None):
            # automatic optimization keeps a step's gradients until the next one's backward:
            # read in `finish`, without a hook per parameter
            self._layers = LayerRecorder(
                pl_module, keep_tensors=self.breakpoints is not None, grad_hooks=not self._automatic
            )
        self._module = pl_module
        # the next step's work is decided by integer compares: a batch no check wants is only
        # counted (single process, rank zero, hooks not timed), and on_train_batch_start is
        # called only where it has work (`on_train_batch_end`)
        self._quiet_path = self._rank_zero and self._world == 1 and not self.timer.enabled
        self._scanned = False  # the parameter scan ran at this step: `after_step` reads it back
        self._start_skipped = False
        self._epoch_weights: torch.Tensor | None = None  # `weight_fingerprint` at the epoch's start
        # (name, parameter) frozen at train start, not yet judged (`_note_unfrozen`)
        self._frozen_at_start: list[tuple[str, Any]] = []
        self._epoch_from: tuple[int, int] | None = None  # (training batches, global step) then
        self._epoch_zero_lr = False  # a parameter group's learning rate was 0 then
        self._first_group_rates: tuple[float, ...] | None = None  # every group's rate at the first epoch's start
        self._symmetric: SymmetricUnits | None = None  # layers whose rows were all equal at the start
        self._adam_read = False  # Adam's eps against its state, read once (`_note_adam_eps`)
        self._skip_hook("on_train_batch_start", False)
        # the NaN origin: the batches of the held losses (in their order), re-run when one of
        # those losses turns out non-finite
        self._watch_nonfinite: bool | None = None
        self._accum_batches: list[tuple[Any, int]] = []
        self._held_batches: list[tuple[Any, int, int, int]] = []  # (batch, index, step, epoch)
        self._samples: SampleCapture | None = None
        if self._rank_zero and self.live.samples_active:
            self._samples = SampleCapture(self.live, self.batch_to_arrays, self.options.slice_by)
        self._quiet_path = self._quiet_path and self._samples is None
        # the capture arms every batch; otherwise on_train_batch_start has work on the first
        # batch and, with a layer recorder, at the layer steps only
        self._start_every_step = self._samples is not None
        # each validation row's loss, summed (`Signal.VAL_LOSSES`): hooked for the validation
        # passes only; one process (a rank's rows are its shard's, its logged loss may be all ranks')
        self._val_losses: ValidationLosses | None = None
        if self._rank_zero and self._world == 1 and self.live.val_losses_active:
            self._val_losses = ValidationLosses(self.batch_to_arrays)
        # it arms the captures only
        self._skip_hook("on_validation_batch_start", self._samples is None and self._val_losses is None)
        if self._pending_state is not None:
            self._apply_state(self._pending_state)
            self._pending_state = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not self._active:
            return
        self._global_step = int(trainer.global_step)  # restored from a checkpoint by now
        device = getattr(getattr(pl_module, "device", None), "type", "cpu")
        # Losses on an accelerator are read back (a host sync) only at the sampled steps, where
        # the parameter scan syncs already, not every 16 steps: no sync at the other steps.
        self._losses_on_host = device == "cpu"
        # the full pass's batches copied to the host without a sync (`HostCopies`): a CUDA module
        # in one process
        self._copies = HostCopies() if device == "cuda" and self._world == 1 and self._rank_zero else None
        if getattr(trainer, "fast_dev_run", False):  # 1 batch (or n) a split: the summary says what it left unjudged
            self.live.cut_short_by = f"fast_dev_run={trainer.fast_dev_run!r}"
        info = self.live.monitor.run.info
        total = getattr(trainer, "estimated_stepping_batches", None)
        if isinstance(total, (int, float)) and math.isfinite(total) and total > 0:
            info.total_steps = int(total)
            self.live.plan_layer_steps()  # a short run samples its layers more often
        if isinstance(trainer.max_epochs, int) and trainer.max_epochs > 0:
            info.max_epochs = trainer.max_epochs
        # A ReduceLROnPlateau moves the rate only when its metric stalls, so a healthy run may
        # never see it move: only schedulers that move the rate by the count of steps or epochs
        # say "the rate must change" (plateau ones alone leave it unknown, as Keras' callback does).
        configs = list(getattr(trainer, "lr_scheduler_configs", None) or [])
        timed = [c for c in configs if not getattr(c, "reduce_on_plateau", False)]
        info.has_scheduler = True if timed else (None if configs else False)
        info.plateau_scheduler = True if configs and not timed else None
        info.plateau_monitors = tuple(
            (str(c.monitor), str(c.scheduler.mode))
            for c in configs
            if getattr(c, "reduce_on_plateau", False)
            and isinstance(c.monitor, str)
            and getattr(c.scheduler, "mode", None) in ("min", "max")
        )
        if not self._automatic and not info.has_scheduler:
            info.has_scheduler = None  # manual optimization may step schedulers we cannot see
        info.zeroes_gradients = True if self._zeroes_gradients else None
        info.adam_betas = self.live.guard("adam betas", adam_betas, list(getattr(trainer, "optimizers", None) or ()))
        clip = getattr(trainer, "gradient_clip_val", None)  # None or 0: no clipping
        info.grad_clip = float(clip) if isinstance(clip, (int, float)) and clip > 0 else None
        # holding a `from_pretrained` model, or resumed from a checkpoint (`fit(ckpt_path=...)`)
        # that held no mlcheck state: the curves then start from a trained model's loss
        resumed = self._global_step > 0 and self.live.monitor.run.train_loss.total == 0
        info.pretrained = (
            True if resumed or self.live.guard("pretrained weights", pretrained_weights, pl_module) else None
        )
        # the twin of Keras' `class_weight=`: the weight of a loss module the LightningModule holds
        info.class_weights = self.live.guard("class weights", loss_class_weights, pl_module)
        info.ignored_class = self.live.guard("ignored class", loss_ignored_class, pl_module)
        if not self._zeroes_gradients and self._rank_zero:
            # each optimizer's own steps: two stepping in turn (a GAN) are judged apart
            self._leftover = self.live.guard(
                "leftover gradients",
                LeftoverGradients,
                [getattr(o, "_optimizer", o) for o in trainer.optimizers],
                self.options.every_n_steps,
            )
        self._optimizer_count = len(getattr(trainer, "optimizers", None) or ())
        if self._rank_zero and self._automatic:
            self._frozen_at_start = self.live.guard("unfrozen parameters", _frozen_parameters, trainer, pl_module) or []
        self.live.guard("early stopping", self._note_early_stopping, trainer)
        # read again at the first training epoch's end (`_note_symmetric_units`)
        self._symmetric = (
            self.live.guard("symmetric units", SymmetricUnits.find, pl_module) if self._rank_zero else None
        )
        if self._rank_zero and getattr(trainer, "loggers", None):
            self.live.guard("logging interval", self._note_logging_interval, trainer)

    def _note_early_stopping(self, trainer: Any) -> None:
        """Tells the live core what early stopping and best-weight checkpoints the trainer runs
        with (Lightning's `EarlyStopping` never restores weights: a `ModelCheckpoint` on the same
        metric keeps the best)."""
        stops, kept, modes = [], [], []
        for cb in getattr(trainer, "callbacks", None) or []:
            kinds = {c.__name__ for c in type(cb).__mro__}  # either package's classes, and subclasses
            # a checkpoint that keeps every epoch (save_top_k -1) or none keeps no "best"
            keeps_best = "ModelCheckpoint" in kinds and getattr(cb, "save_top_k", 0) not in (0, -1)
            watches = ({"EarlyStopping"} & kinds) | ({"ModelCheckpoint"} if keeps_best else set())
            if (
                watches
                and isinstance(getattr(cb, "monitor", None), str)
                and getattr(cb, "mode", None) in ("min", "max")
            ):
                modes.append((f"{min(watches)}(monitor={cb.monitor!r}, mode={cb.mode!r})", cb.monitor, cb.mode))
            if "EarlyStopping" in kinds and isinstance(getattr(cb, "monitor", None), str):
                stops.append(
                    EarlyStop(
                        monitor=cb.monitor,
                        patience=int(cb.patience),
                        mode=str(cb.mode),
                        min_delta=abs(float(cb.min_delta)),
                    )
                )
            elif "ModelCheckpoint" in kinds and isinstance(getattr(cb, "monitor", None), str):
                if cb.save_top_k != 0 and cb.mode != "max":
                    kept.append((cb.monitor, f"ModelCheckpoint(monitor={cb.monitor!r})"))
        self.live.note_early_stopping(stops, kept)
        self.live.monitor.run.info.stop_monitors = tuple(modes)

    def _note_logging_interval(self, trainer: Any) -> None:
        batches = getattr(trainer, "num_training_batches", None)
        accumulate = getattr(trainer, "accumulate_grad_batches", 1) or 1
        per_epoch = int(batches) // accumulate if isinstance(batches, (int, float)) and math.isfinite(batches) else None
        every = getattr(trainer, "log_every_n_steps", None)
        if isinstance(every, int):
            self.live.note_logging_interval(every, per_epoch or None, "Trainer(log_every_n_steps={})")

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._end(trainer)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        try:
            self._end(trainer, finished=False)
        except Exception:  # never mask the user's exception
            pass

    def _end(self, trainer: Any, finished: bool = True) -> None:
        if self._active:
            self._active = False
            self._remove_hook()
            self._remove_conv_hook()
            if self._leftover is not None:
                self._leftover.close()
                self._leftover = None
            if self._layers is not None:
                self._layers.abort()
            if finished:
                self._land_copies()
                self.live.guard("training batches", self._note_no_batches, trainer)
            if self._samples is not None:
                if finished:
                    self.live.guard("samples", self._samples.flush)
                self._samples.remove()
            self._flush(trainer)
            if self._layers is not None:
                self._layers.release_weights()
            self._held_batches, self._accum_batches = [], []
            self.live.close()

    def _note_no_batches(self, trainer: Any) -> None:
        """At the end of a fit that took no step because the training loader has no batch
        (`num_training_batches` 0 while `limit_train_batches` and the epoch and step limits
        allow some): the loader's batch_size, drop_last and dataset size to the live core."""
        if int(trainer.global_step) != 0 or trainer.num_training_batches != 0:
            return
        if trainer.limit_train_batches == 0 or trainer.max_epochs == 0 or trainer.max_steps == 0:
            return  # no training asked for
        loader = trainer.train_dataloader
        details: dict[str, Any] = {"batch_size": None, "drop_last": None, "samples": None}
        if loader is not None and hasattr(loader, "dataset"):
            details["batch_size"] = getattr(loader, "batch_size", None)
            details["drop_last"] = getattr(loader, "drop_last", None)
            with contextlib.suppress(TypeError):
                details["samples"] = len(loader.dataset)
        self.live.note_no_training_batches(details)

    # -- training steps ------------------------------------------------------------------------

    # Per-step work is kept to a few attribute reads (benchmarks/bench_step_calls.py): the
    # learning rate is read where the optimizer steps (before a step-interval scheduler moves
    # it), the loss and the rows are held in on_train_batch_end, and what is due is decided by
    # integer compares: on_train_batch_start is left to Lightning's skip (`_skip_hook`) between
    # layer steps, and a batch no check wants (`LiveRun.skip_below`) is counted, not routed.

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if not self._active:
            return
        if not self._started:
            if is_empty_batch(batch):  # nothing to check: the train-start checks wait for one with samples
                self._empty_batches += 1
                self._empty_shape = self._empty_shape or inputs_shape(batch)
            else:
                self._first_batch_start(trainer, pl_module, batch)
        if self._layers is not None:
            if self._watch_nonfinite is None:
                self._watch_nonfinite = self._automatic and self.live.watch_loss(pl_module.device.type == "cpu")
                self._layers.keep_weights = self._watch_nonfinite
                self._watch_loss_before_step(self._watch_nonfinite and self._losses_on_host)
            step = self._logging_step(trainer)
            if self.live.layer_step_due(step) or (self.breakpoints is not None and step % self.live.layer_every == 0):
                self._layers.start()
        if self._samples is not None:
            self._samples.arm(pl_module, "train")  # after the train-start checks copied the module

    def _first_batch_start(self, trainer: Any, pl_module: Any, batch: Any) -> None:
        self._started = True
        if not self._rank_zero:
            return
        with self.timer("train_batch_start"):
            if not self._resumed and self.live.train_start_checks:
                with self.timer("overfit_batch"):
                    self._train_start_checks(trainer, pl_module, batch)
            if self.live.output_width is None:
                # one look at the real forward pass of the first batch: the output width (of the
                # child modules that give the prediction, for a module without forward)
                network = (
                    self.live.guard("output width", prediction_module, pl_module, batch, self._start_trainable)
                    or pl_module
                )
                self._hook = network.register_forward_hook(self._capture_output_width)
            if self.live.monitor.run.info.conv_input is None:
                conv = self.live.guard("convolution input", first_conv2d, pl_module)
                if conv is not None:
                    self._conv_hook = conv[1].register_forward_pre_hook(
                        functools.partial(self._capture_conv_input, conv[0])
                    )
            self._start_trainable = None  # held for its trace only: the batch and module go with it

    def _say_all_empty(self, trainer: Any) -> None:
        """An epoch whose training batches all held 0 samples: the train-start checks had none to
        run on and no step trained; said at the epoch's end, once (it read "no problems found")."""
        self._empty_said = True  # a later epoch with samples still starts the checks
        if not self._rank_zero:
            return
        epoch = int(trainer.current_epoch)
        held = (
            f"every one of the {self._empty_batches} training batches of epoch {epoch} held 0 samples (inputs of "
            f"shape {self._empty_shape})"
        )
        if not self.live.train_start_checks:  # overfit_batch=False: no finding to carry it, a log line
            logger.warning("mlcheck: %s: no step trained; %s", held, EMPTY_BATCHES_FIX)
            return
        self.live.skip_train_start_checks(
            f"{held}: no step trained, and there was no batch to check",
            EMPTY_BATCHES_FIX[0].upper() + EMPTY_BATCHES_FIX[1:] + ".",
            step=self._logging_step(trainer),
            epoch=epoch,
            severity=Severity.WARNING,  # a fit on nothing: no healthy run has an epoch of empty batches
        )
        self.live.release_held()

    def _make_start_trainable(self, pl_module: Any, batch: Any) -> LightningTrainable:
        """The train-start checks' view of the module, kept: the output-width hook reuses its
        trace of `training_step` (a module without `forward`) instead of tracing again."""
        self._start_trainable = LightningTrainable(pl_module, train_data=OneBatch(batch))
        return self._start_trainable

    def _train_start_checks(self, trainer: Any, pl_module: Any, batch: Any) -> None:
        if not self._automatic:
            self.live.skip_train_start_checks(
                MANUAL_REASON, MANUAL_HINT, step=self._logging_step(trainer), epoch=trainer.current_epoch
            )
            return
        self.live.run_train_start_checks(
            lambda: self._make_start_trainable(pl_module, batch),
            step=self._logging_step(trainer),
            epoch=trainer.current_epoch,
        )

    def _capture_output_width(self, module: Any, args: Any, output: Any) -> None:
        out = output[0] if isinstance(output, (list, tuple)) and output else output
        if isinstance(out, torch.Tensor) and out.ndim >= 1:
            self.live.output_width = int(out.shape[-1]) if out.ndim >= 2 else 1
        self._remove_hook()

    def _capture_conv_input(self, name: str, module: Any, args: Any) -> None:
        """`RunInfo.conv_input` from the first training forward pass through the first `nn.Conv2d`:
        its per-sample input shape, read as torch reads it (channels first)."""
        x = args[0] if isinstance(args, tuple) and args else None
        if isinstance(x, torch.Tensor) and x.ndim == 4:
            shape = tuple(int(n) for n in x.shape[1:])
            self.live.monitor.run.info.conv_input = (f"nn.Conv2d '{name}'", shape, "channels_first")
        self._remove_conv_hook()

    def _remove_conv_hook(self) -> None:
        if self._conv_hook is not None:
            self._conv_hook.remove()
            self._conv_hook = None

    def _remove_hook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
        # needed where training_step hands Lightning no loss (manual optimization), and while
        # the NaN origin is watched on the CPU: skipped by Lightning otherwise
        if not isinstance(loss, torch.Tensor):
            return
        if self._backward_loss_wanted:
            self._last_backward_loss = loss.detach()
        if self._loss_before_step:
            try:
                finite = math.isfinite(loss.item())  # a CPU scalar: no device to wait for
            except (RuntimeError, ValueError):  # not one number: Lightning's backward says so
                return
            if not finite:
                self._keep_weights_before_step(trainer)

    def _keep_weights_before_step(self, trainer: Any) -> None:
        """This step's loss is non-finite, before its backward: keeps the weights that produced
        it, which the optimizer is about to step on it, for the re-run of its batch at the next
        flush (`_locate_nonfinite`). Without them the re-run took the last sampled step's weights,
        on which the batch's loss can be finite (an SGD run whose loss overflows within a few
        steps: no `nonfinite-origin` at all). Once a run: the flush locates or gives up."""
        self._watch_loss_before_step(False)
        self._layers.keep_weights_now(self._logging_step(trainer))

    def _watch_loss_before_step(self, watched: bool) -> None:
        self._loss_before_step = watched
        self._skip_hook("on_before_backward", not (watched or self._backward_loss_wanted))

    def _want_backward_loss(self, wanted: bool) -> None:
        self._backward_loss_wanted = wanted
        self._skip_hook("on_before_backward", not (wanted or self._loss_before_step))

    def _locate_nonfinite(self, batch: Any, batch_idx: int, step: int, epoch: int) -> None:
        """A held loss was non-finite: re-runs its batch on a copy of the module, with finite
        weights (the model's own, else those of the last finite sampled step: by now the
        optimizer has stepped on the NaN), to name the module that produced it."""
        if self._layers.recording:  # flushed from another callback's hook, mid-step
            self._layers.abort()  # the copy must not feed this step's statistics
        weights = self._layers.weights_for_rerun()
        if weights is None:
            return  # nothing finite to re-run with: `nonfinite-loss` stands alone
        module = self._module

        def compute_loss(clone: Any) -> Any:
            clone.train()  # a training batch (the epoch may have ended in evaluation mode)
            out = clone.training_step(batch, batch_idx)
            return out.get("loss") if isinstance(out, dict) else out  # not detached: backward runs

        capture: dict[str, Any] | None = {} if self.breakpoints is not None else None
        with self.timer("nonfinite_origin"):
            found = self.live.observe_nonfinite_loss(
                step,
                epoch,
                lambda: locate_nonfinite(
                    module, compute_loss, allow=self.nonfinite_allow, capture=capture, weights=weights, batch=batch
                ),
            )
        if self.breakpoints is not None:
            self.breakpoints.on_origin(self.live.monitor, found, capture or {}, module, batch)
        self._watch_nonfinite = self.live.watch_loss(True)
        self._watch_loss_before_step(self._watch_nonfinite and self._losses_on_host)
        if not self._watch_nonfinite:  # located, or given up on: nothing more to keep
            self._layers.keep_weights = False
            self._layers.release_weights()

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if not self._active or not self._rank_zero:
            return
        optimizer = getattr(optimizer, "_optimizer", optimizer)  # LightningOptimizer wraps it
        if self._first_optimizer is None:
            first = trainer.optimizers[0] if trainer.optimizers else optimizer
            self._first_optimizer = getattr(first, "_optimizer", first)
        if optimizer is not self._first_optimizer:
            return
        self._lr = learning_rate(optimizer)
        step = self._logging_step(trainer)
        if step % self.options.every_n_steps == 0:
            self._scanned = True
            with self.timer("before_optimizer_step"):
                self._scan.before_step(optimizer, step, scaled=_grad_scaler(trainer) is not None)
                self.live.guard("gradients", self._scan.gradients, optimizer, step)
        elif not self._zeroes_gradients and self._scan.wants_gradients(step):  # else never wanted
            self._scanned = True
            with self.timer("before_optimizer_step"):
                self.live.guard("gradients", self._scan.gradients, optimizer, step)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self._active:
            return
        self._batch_end_looks(trainer, pl_module, batch_idx)
        if self._layers is not None and self._layers.recording:
            with self.timer("layer_stats"):
                observation = self.live.guard("layers", self._layers.finish, self._logging_step(trainer), self._epoch)
                found = self.live.guard("layers", self.live.observe_layers, observation) if observation else None
            if self.breakpoints is not None and observation is not None:
                self.breakpoints.on_layers(self.live.monitor, observation, found, self._layers, batch)
        live = self.live
        count = live.count["train"]
        if self._quiet_path and count < live.skip_below["train"] and live.task_inferred:
            # no check wants this batch: counted as `route_batch` would, nothing else to do
            live.count["train"] = count + 1
            step = self._observe_step(trainer, outputs, batch, batch_idx)
        else:
            with self.timer("train_batch_end"):
                # observed after the step, so that the model's output width is known
                self._observe_batch(trainer, batch, "train", batch_idx)
                if self._samples is not None:
                    with self.timer("samples"):
                        epoch = trainer.current_epoch
                        self.live.guard("samples", self._samples.collect, batch, "train", epoch, batch_idx)
                step = self._observe_step(trainer, outputs, batch, batch_idx) if self._rank_zero else None
        if self.options.stop_on is not None:
            self._maybe_stop(trainer)
        if self._start_every_step:
            return
        # the next batch starts at this step (accumulating) or the next: Lightning calls
        # on_train_batch_start only where it may start the layer statistics
        if step is None:
            step = self._logging_step(trainer)
        every = self.live.layer_every
        # until a batch with samples came, each batch's start is the train-start checks' (a run of
        # empty first batches skipped the hook, and with it the checks, for the rest of the fit)
        skip = self._started and (self._layers is None or (step % every != 0 and (step + 1) % every != 0))
        if skip is not self._start_skipped:
            self._start_skipped = skip
            self._skip_hook("on_train_batch_start", skip)

    def _observe_step(self, trainer: Any, outputs: Any, batch: Any, batch_idx: int) -> int:
        """Holds the step's loss; returns its logging step."""
        loss = loss_of(outputs)
        if loss is None:
            loss = self._backward_loss()
        self._last_backward_loss = None
        global_step = trainer.global_step
        stepped = global_step != self._global_step
        self._global_step = global_step
        scale = 1.0
        batches: list[tuple[Any, int]] = []
        if self._automatic:
            if loss is not None:
                self._accum.append(loss)
                self._accum_rows += leading_rows(batch) or 0
                if self._watch_nonfinite:
                    self._accum_batches.append((batch, batch_idx))  # a reference, not a copy
            if not stepped:
                return self._logging_step(trainer)  # accumulating gradients: the step comes later
            losses, self._accum = self._accum, []
            batches, self._accum_batches = self._accum_batches, []
            rows, self._accum_rows = self._accum_rows, 0
            # the loss Lightning hands over is divided by accumulate_grad_batches
            if losses:
                scale = (getattr(trainer, "accumulate_grad_batches", 1) or 1) / len(losses)
        else:
            losses = [loss] if loss is not None else []
            rows = leading_rows(batch) or 0
        step = self._logging_step(trainer)
        if batches:
            if not self.live.holding:  # flushed elsewhere: the held batches went with it
                self._held_batches = []
            for held in batches:
                self._held_batches.append((*held, step, self._epoch))
        ratio = nonfinite = grad_norm = grad_cosine = None
        scanned = self._scanned
        if scanned:  # the parameter scan ran at this step
            ratio, nonfinite, grad_norm, grad_cosine = self._read_scan(step)
        leftover = self._leftover.take() if self._leftover is not None else None
        due = self.live.hold_step(
            step,
            losses,
            scale=scale,
            lr=self._lr,
            update_ratio=ratio,
            epoch=self._epoch,
            nonfinite=nonfinite,
            grad_norm=grad_norm,
            grad_cosine=grad_cosine,
            leftover_grads=leftover,
            rows=rows or None,
        )
        if self._flush_due(due, scanned):
            self._flush(trainer)
        return step

    def _flush_due(self, due: bool, scanned: bool) -> bool:
        """Whether the held losses go to the checks now: every `LiveRun.flush_every` steps on
        the CPU (`due`), where reading them waits for nothing; on an accelerator at a step the
        parameter scan read (`scanned`), where the host has waited for the device already, so
        that no other step synchronises."""
        if self._losses_on_host:
            return due
        return scanned or self.live.held_steps >= self._FLUSH_CAP

    def _backward_loss(self) -> Any:
        """The loss on_before_backward kept, where training_step handed Lightning none; from
        then on, Lightning calls on_before_backward at every step. With two or more optimizers
        (manual optimization), that loss is one of several objectives (RunInfo.several_objectives)."""
        if not self._backward_loss_wanted:
            self._want_backward_loss(True)
        if self._optimizer_count >= 2:
            self._optimizer_count = 0  # noted once per fit
            self.live.monitor.run.info.several_objectives = True
        return self._last_backward_loss

    def _read_scan(self, step: int) -> tuple[Any, Any, float | None, float | None]:
        """(update ratio, non-finite names, gradient norm, gradient cosine) the scan of this
        step measured."""
        self._scanned = False
        scan = self._scan
        if scan.idle:  # nothing to read back
            return None, None, None, None
        ratio, nonfinite = scan.after_step(step)
        return (ratio, nonfinite, *scan.gradient_stats(step))

    def _flush(self, trainer: Any | None) -> None:
        """Hands the held steps to the checks, with one device sync for all their losses; when
        one of them is non-finite, re-runs its batch to name the module that produced it."""
        if self.live.holding:
            optimizer = trainer.optimizers[0] if trainer is not None and trainer.optimizers else None
            scaled = trainer is not None and _grad_scaler(trainer) is not None
            read: list[float] = []

            def to_floats(losses: list[Any]) -> list[float]:
                read[:] = losses_to_floats(losses)
                return read

            self.live.flush_steps(
                to_floats,
                rescan=None if optimizer is None else lambda: self._scan.nonfinite_now(optimizer, scaled=scaled),
            )
            held, self._held_batches = self._held_batches, []
            if self._watch_nonfinite and len(held) == len(read):  # one batch per held loss
                first = next((k for k, value in enumerate(read) if not math.isfinite(value)), None)
                if first is not None:
                    self._locate_nonfinite(*held[first])

    def _logging_step(self, trainer: Any) -> int:
        # The step Lightning's loggers use for this batch, so markers line up with the curves.
        step = getattr(self._epoch_loop, "_batches_that_stepped", None)
        return step if type(step) is int else int(trainer.global_step)

    # -- batches -------------------------------------------------------------------------------

    def _observe_batch(self, trainer: Any, batch: Any, split: str, index: int) -> None:
        live = self.live
        route = live.route_batch(split)
        if route is BatchRoute.SKIP and (split != "train" or live.task_inferred or not self._rank_zero):
            return
        with self.timer(f"{split}_batch_observe"):
            if self._world > 1 and route is not BatchRoute.SKIP:
                # every rank must reach the gather below: a failure here raises (docs/lightning.md)
                inputs, targets = batch_arrays(self.batch_to_arrays, batch)
            else:  # a failing batch_to_arrays switches batch observation off, training goes on
                pair = live.guard("batches", batch_arrays, self.batch_to_arrays, batch)
                if pair is None:
                    return
                inputs, targets = pair
            if route is not BatchRoute.SKIP and self._world > 1:
                inputs, targets = gather(trainer.strategy, inputs), gather(trainer.strategy, targets)
            if not self._rank_zero:
                return
            step, epoch, kind = self._logging_step(trainer), trainer.current_epoch, self._input_kind

            def observe(inputs: Any, targets: Any) -> None:
                # a module with an embedding somewhere: its integer inputs are ids
                ids = inputs is not None and inputs.dtype.kind in "iu"
                live.observe_batch(
                    route,
                    inputs,
                    targets,
                    split=split,
                    step=step,
                    epoch=epoch,
                    index=index,
                    input_kind=kind if ids else None,
                )

            copies = self._copies
            if (
                copies is not None
                and route in (BatchRoute.FULL_PASS, BatchRoute.CONFIRM)
                and live.task_inferred
                and copies.wanted(inputs, targets)
            ):
                copies.start((inputs, targets), observe)  # a full pass on an accelerator: no sync
                return
            if copies is not None:
                copies.drain()  # those in flight first: the checks see batches in their order
            observe(to_numpy(inputs) if route is not BatchRoute.SKIP else None, to_numpy(targets))

    def _land_copies(self) -> None:
        """The full pass's batches still being copied to the host, observed (at a pass's end)."""
        if self._copies is not None and self._copies.pending:
            with self.timer("batch_copies"):
                self._copies.drain()

    def _watch_eval_mode(self, trainer: Any, pl_module: Any) -> None:
        """At a training batch's end, until read once: where the module was in evaluation mode at
        the end of this batch and the last, so over the whole step between (its own `self.eval()`
        not undone; Lightning's switch for validation is undone before the next batch), the
        layers that act differently in training go to `RunInfo.eval_mode_at_training`."""
        if pl_module.training or not self._eval_at_last_end:
            self._eval_at_last_end = not pl_module.training
            return
        self._eval_mode_read = True
        layers = self.live.guard("training mode", eval_mode_layers, pl_module)
        if layers:
            info = self.live.monitor.run.info
            info.eval_mode_at_training = layers
            info.eval_mode_since = (int(trainer.current_epoch), self._logging_step(trainer))

    # -- epochs --------------------------------------------------------------------------------

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self._active:
            self.live.start_epoch()
            self._epoch = int(trainer.current_epoch)
            if self._rank_zero:  # the weights before the epoch: did any step move them? (one sum per tensor)
                self._epoch_weights = self.live.guard("weight updates", weight_fingerprint, pl_module)
                self._epoch_from = (self.live.count["train"], int(trainer.global_step))
                self._epoch_zero_lr = _zero_learning_rate(trainer)
                self.live.guard("group rates", self._note_group_rates, trainer, pl_module)
            if self._samples is not None:  # before the epoch's loader starts: its indices
                self.live.guard("samples", self._samples.watch_loader, "train", _first_loader(trainer, "train"))

    def _note_group_rates(self, trainer: Any, pl_module: Any) -> None:
        """`RunInfo.rate_held_at_zero`, `group_rates_moved` and `base_lr`, at each training epoch's start:
        the modules whose group a scheduler holds at 0 now, and whether any group's rate has
        changed since the first epoch's start."""
        rates = _group_rates(trainer)
        info = self.live.monitor.run.info
        bases = [initial if initial is not None else lr for _, lr, initial in rates]
        info.base_lr = max(bases) if bases else None
        now = tuple(lr for _, lr, _ in rates)
        if self._first_group_rates is None:
            self._first_group_rates = now
        elif now != self._first_group_rates:
            info.group_rates_moved = True
        held = {id(p) for group, lr, initial in rates if lr == 0 and initial for p in group.get("params", ())}
        if not held and not info.rate_held_at_zero:
            return
        paths = {name.rpartition(".")[0] for name, p in pl_module.named_parameters() if id(p) in held}
        info.rate_held_at_zero = tuple(sorted(paths)) or None

    def _batch_end_looks(self, trainer: Any, pl_module: Any, batch_idx: int) -> None:
        """The looks taken at a few training batches' ends: integer compares at the others."""
        if not self._eval_mode_read:
            self._watch_eval_mode(trainer, pl_module)
        if self._hook is not None or self._conv_hook is not None:  # the first batch's looks
            self._remove_hook()
            self._remove_conv_hook()
        if batch_idx == 0 and self._frozen_at_start:  # each epoch's first step
            self.live.guard("unfrozen parameters", self._note_unfrozen, trainer)

    def _note_unfrozen(self, trainer: Any) -> None:
        """At the end of each training epoch's first batch (every epoch-start hook, the module's
        and the callbacks', has run, and a step with it), while parameters frozen at train start
        remain unjudged: those trainable now and in no parameter group of the trainer's
        optimizers, that got a gradient, go to the live core (`unused-parameters`, key
        `unfrozen-not-in-optimizer`). A loop over those parameters; over the groups' ids only
        where one is trainable. Each is judged once: told, or seen in a group."""
        unfrozen = [(name, p) for name, p in self._frozen_at_start if p.requires_grad]
        if not unfrozen:
            return
        grouped = grouped_parameter_ids(trainer.optimizers)
        # a gradient they got (no optimizer's zero_grad clears it): trainable but never given one (a
        # teacher run under no_grad) wastes nothing, and is looked at again next epoch
        outside = [(name, p) for name, p in unfrozen if id(p) not in grouped and p.grad is not None]
        judged = {id(p) for _, p in unfrozen if id(p) in grouped} | {id(p) for _, p in outside}
        self._frozen_at_start = [(n, p) for n, p in self._frozen_at_start if id(p) not in judged]
        if outside:
            step, epoch = self._logging_step(trainer), int(trainer.current_epoch)
            self.live.note_unfrozen_outside([name for name, _ in outside], step=step, epoch=epoch)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if self._active and self._samples is not None:
            # in the sanity check too: the first validation pass's iterator starts before its
            # on_validation_start (so does the first training epoch's, before any hook here)
            self.live.guard("samples", self._samples.watch_loader, "val", _first_loader(trainer, "val"))
        if not self._active or trainer.sanity_checking:
            return
        self._val_index = 0
        if self._rank_zero:
            self._before_val = scalars(trainer.callback_metrics)
        if self._val_losses is not None and self.live.monitor.run.info.task != "regression":
            self.live.guard("validation losses", self._val_losses.start, pl_module, self.live.monitor.run.info.loss)

    def on_validation_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not self._active or trainer.sanity_checking or dataloader_idx != 0:
            return
        if self._samples is not None:
            self._samples.arm(pl_module, "val")
        if self._val_losses is not None:
            self._val_losses.arm()

    def on_validation_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not self._active or trainer.sanity_checking or dataloader_idx != 0:
            return
        with self.timer("val_batch_end"):
            if not self._val_mode_read:
                # after validation_step, inside the validation loop: Lightning has put every layer
                # in evaluation mode, unless the module's own code turned some back
                self._val_mode_read = True
                self.live.monitor.run.info.train_mode_at_validation = self.live.guard(
                    "validation mode", train_mode_layers, pl_module
                )
            self._val_index += 1
            if self._val_losses is not None and "batches" not in self.live.broken:
                # it reads the targets with the same `batch_to_arrays`: one that failed on the
                # training batches is not called again (its failure was told once)
                self.live.guard("validation losses", self._val_losses.collect, batch)
            self._observe_batch(trainer, batch, "val", self._val_index - 1)
            if self._samples is not None:
                with self.timer("samples"):
                    self.live.guard(
                        "samples", self._samples.collect, batch, "val", trainer.current_epoch, self._val_index - 1
                    )

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._active or trainer.sanity_checking:
            return
        self._land_copies()
        self.live.end_pass("val")
        if self._val_losses is not None:
            summed = self.live.guard("validation losses", self._val_losses.end)
            if summed is not None:
                self.live.observe_val_losses(int(trainer.current_epoch), *summed)
        if self._rank_zero:
            metrics = scalars(trainer.callback_metrics)
            # unprefixed names count as validation ones when validation logged them
            self._val_names |= {
                n for n, v in metrics.items() if self._before_val.get(n) != v and strip_split(n)[0] in (None, "val")
            }
            self._val_metrics = metrics

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._active:
            return
        with self.timer("train_epoch_end"):
            if not self._started and self._empty_batches and not self._empty_said:
                self._say_all_empty(trainer)
            self._land_copies()
            self.live.end_pass("train")
            if self._samples is not None:
                with self.timer("samples"):
                    self.live.guard("samples", self._samples.flush)
            if self._rank_zero:
                self._flush(trainer)
                train = split_epoch_metrics(scalars(trainer.callback_metrics), self._val_names)
                val = split_epoch_metrics(self._val_metrics, self._val_names)
                self._val_metrics = {}
                self._note_epoch_updates(trainer, pl_module)
                self.live.guard("symmetric units", self._note_symmetric_units)
                self.live.guard("adam eps", self._note_adam_eps, trainer)
                self.live.end_epoch(
                    trainer.current_epoch,
                    step=max(self._logging_step(trainer) - 1, 0),
                    metrics=EpochMetrics(train.train_loss, val.val_loss, train.train, val.val),
                )
            disabled = sorted(self.live.monitor.disabled)
            if self._world > 1:
                disabled = trainer.strategy.broadcast(disabled, src=0)
            self.live.sync(disabled)
            self._maybe_stop(trainer, force_sync=True)

    def _note_adam_eps(self, trainer: Any) -> None:
        """`RunInfo.adam_eps` and `adam_step_share`, once, at the first training epoch's end: the
        first optimizer's eps against its own running gradient size (`adam_step_share`)."""
        if self._adam_read or not trainer.optimizers:
            return
        self._adam_read = True
        found = adam_step_share(getattr(trainer.optimizers[0], "_optimizer", trainer.optimizers[0]))
        if found is not None:
            info = self.live.monitor.run.info
            info.adam_eps, info.adam_step_share = found

    def _note_symmetric_units(self) -> None:
        """`RunInfo.symmetric_units`, once, at the first training epoch's end: the layers whose
        rows were all equal at the start, moved and still all equal (`SymmetricUnits`)."""
        if self._symmetric is None:
            return
        still, self._symmetric = self._symmetric.confirm(), None
        if still:
            self.live.monitor.run.info.symmetric_units = still

    def _note_epoch_updates(self, trainer: Any, pl_module: Any) -> None:
        """Tells the live core whether this training epoch's batches moved any trainable weight
        (fingerprints at its start and end: one host sync an epoch)."""
        before, self._epoch_weights = self._epoch_weights, None
        if before is None or self._epoch_from is None:
            return  # nothing trainable, or the epoch's start was not seen
        if not self._started:
            return  # every batch so far held 0 samples: `_say_all_empty` told it, with its fix
        if _grad_scaler(trainer) is not None:
            return  # fp16 loss scaling skips the steps of inf gradients, a whole short epoch's at first
        if self._epoch_zero_lr or _zero_learning_rate(trainer):
            return  # a warm-up from 0 stepped per epoch (LambdaLR(lambda e: e / 5)): `lr-schedule`'s to judge
        after = self.live.guard("weight updates", weight_fingerprint, pl_module)
        if after is None or after.shape != before.shape:
            return  # parameters added or frozen during the epoch: not comparable
        batches, steps = self._epoch_from
        self.live.note_epoch_updates(
            batches=self.live.count["train"] - batches,
            moved=not bool(torch.equal(after, before)),
            # Lightning counts the steps of the optimizers it returned from configure_optimizers
            optimizer_steps=int(trainer.global_step) - steps,
            manual=not self._automatic,
        )

    def _maybe_stop(self, trainer: Any, force_sync: bool = False) -> None:
        if self.options.stop_on is None:
            return
        stop = self._rank_zero and self.live.should_stop
        if self._world > 1:
            # collectives only at points every rank reaches together
            if not force_sync and self._logging_step(trainer) % self.options.every_n_steps != 0:
                return
            stop = bool(trainer.strategy.broadcast(stop, src=0))
        if stop:
            trainer.should_stop = True

    # -- checkpoints ---------------------------------------------------------------------------

    @functools.cached_property
    def state_key(self) -> str:  # type: ignore[override]
        """Lightning's default (the class name) for a callback with every argument at its default,
        so that checkpoints keep resuming; the checks, `suppress`, `stop_on` and every other
        argument not at its default (`log_dir`, `every_n_steps`, ...) join it otherwise, so that
        callbacks that differ in any of them can share a Trainer (Lightning refuses two stateful
        callbacks with one key). Built once and kept in the instance's `__dict__`: Lightning
        reads it at every hook call (six a training step), which is then a plain attribute read,
        not a Python call (a cached property, unlike the base's property, lets the instance's
        value win)."""
        key = {**self._checks_key(), **self._key_arguments}
        return self._generate_state_key(**key) if key else type(self).__qualname__

    def _checks_key(self) -> dict[str, Any]:
        key: dict[str, Any] = {}
        if self.checks is not None:
            key["checks"] = [c if isinstance(c, str) else c.id if hasattr(c, "id") else repr(c) for c in self.checks]
        if self.suppress:
            key["suppress"] = sorted(self.suppress)
        if self.options.stop_on is not None:
            key["stop_on"] = self.options.stop_on
        return key

    @property
    def _old_state_key(self) -> str:
        """The key mlcheck gave this callback's state before other arguments joined it (the
        checks, `suppress` and `stop_on` only): what checkpoints saved then are keyed by."""
        key = self._checks_key()
        return self._generate_state_key(**key) if key else type(self).__qualname__

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        """Where no saved state has this callback's key: the one MLCheckCallback state of a
        checkpoint is this callback's when it is the trainer's one MLCheckCallback (a run resumed
        with an argument changed, `warn=False` say, whose key changed with it); else the state
        under the old key (saved before `log_dir` and the other arguments joined `state_key`),
        where no other MLCheckCallback of the trainer has the same old key (its state could be
        either's). Lightning still warns that the saved key has no callback: it compares the keys
        before this hook."""
        states = checkpoint.get("callbacks") or {}
        if self.state_key in states:
            return
        ours = [cb for cb in trainer.callbacks if isinstance(cb, MLCheckCallback)]
        name = type(self).__qualname__
        saved = [k for k in states if isinstance(k, str) and (k == name or k.startswith(name + "{"))]
        if len(ours) == 1 and len(saved) == 1:
            key = saved[0]
        else:
            key = self._old_state_key
            if key == self.state_key or sum(cb._old_state_key == key for cb in ours) != 1:
                return
        if states.get(key):
            self.load_state_dict(copy.deepcopy(states[key]))

    def state_dict(self) -> dict[str, Any]:
        if self.live is None:
            return {}
        if self._active:
            self._flush(None)  # a checkpoint mid-epoch: the state it saves is complete
        return self.live.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if not self._active:
            self._pending_state = state_dict  # applied when the run is built in on_fit_start
        else:
            self._apply_state(state_dict)

    def _apply_state(self, state: dict[str, Any]) -> None:
        self._resumed = True
        self.live.load_state_dict(state, checks_too=self._rank_zero)


# -- helpers ------------------------------------------------------------------------------------


def _group_rates(trainer: Any) -> list[tuple[Any, float, float | None]]:
    """(group, its learning rate now, the rate it was built with: torch's `initial_lr`, which
    schedulers set, or None) for each parameter group of the trainer's optimizers."""
    out = []
    for optimizer in trainer.optimizers or ():
        for group in getattr(optimizer, "param_groups", ()):
            lr, initial = group.get("lr"), group.get("initial_lr")
            if isinstance(lr, (int, float)):
                out.append((group, float(lr), float(initial) if isinstance(initial, (int, float)) else None))
    return out


def _frozen_parameters(trainer: Any, pl_module: Any) -> list[tuple[str, Any]]:
    """(name, parameter) of the module's parameters frozen (`requires_grad` False) at train start,
    where the trainer's optimizers hold the module's trainable parameters themselves (not
    flattened copies, as FSDP or DeepSpeed may): only there is a parameter's absence from every
    group a fact. Empty elsewhere."""
    named = list(pl_module.named_parameters())
    frozen = [(n, p) for n, p in named if not p.requires_grad]
    if not frozen:
        return []
    grouped = grouped_parameter_ids(trainer.optimizers)
    if not any(id(p) in grouped for _, p in named if p.requires_grad):
        return []
    return frozen


def _zero_learning_rate(trainer: Any) -> bool:
    """True when a parameter group of the trainer's optimizers has a learning rate of 0."""
    for optimizer in trainer.optimizers or ():
        for group in getattr(optimizer, "param_groups", ()):
            lr = group.get("lr")
            if isinstance(lr, (int, float)) and lr == 0:
                return True
    return False


def _grad_scaler(trainer: Any) -> Any:
    return getattr(getattr(trainer, "precision_plugin", None), "scaler", None)


#: where `LightningModule.optimizer_zero_grad`, which calls `optimizer.zero_grad()`, is defined
_LIGHTNING_PACKAGES = ("lightning.pytorch.", "pytorch_lightning.")


def _overrides_zero_grad(pl_module: Any) -> bool:
    """True when the module replaces Lightning's `optimizer_zero_grad` (in its class or on the
    instance), so that automatic optimization no longer guarantees zeroed gradients."""
    if "optimizer_zero_grad" in vars(pl_module):
        return True
    for cls in type(pl_module).__mro__:
        if "optimizer_zero_grad" in vars(cls):
            return not cls.__module__.startswith(_LIGHTNING_PACKAGES)
    return True  # not a LightningModule as we know it: assume nothing


def _first_loader(trainer: Any, split: str) -> Any:
    """The training loader, or the first validation loader (the one whose samples are
    recorded), as the trainer holds it; None where it holds none."""
    try:
        loaders = trainer.train_dataloader if split == "train" else trainer.val_dataloaders
    except Exception:
        return None
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    return loaders
