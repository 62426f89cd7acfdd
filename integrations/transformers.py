"""`MLCheckCallback` for Hugging Face `transformers.Trainer`: live mlcheck checks on `trainer.train()`.

A `TrainerCallback` sees no batch, no loss and no outputs (its events carry `state`, `control`,
the model, the optimizer and the dataloaders). The least intrusive place that does see them is
the model itself: two forward hooks on it, registered for the duration of `train()`, read the
keyword arguments the Trainer calls it with (the batch: `input_ids`, `labels`, ...) and the
`ModelOutput` it returns (`loss`, `logits`). Nothing the Trainer iterates, draws or computes is
touched. The callback only translates; the live core (`mlcheck.live.LiveRun`) decides.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mlcheck import options as opt
from mlcheck.checks.base import Check, default_checks
from mlcheck.integrations.torch import _clone_module_and_optimizers, _first_tensor, _to_device, _TorchBase
from mlcheck.integrations.torch_live import (
    OneBatch,
    ParameterScan,
    batch_arrays,
    learning_rate,
    losses_to_floats,
    pretrained_weights,
    to_numpy,
)
from mlcheck.live import BatchRoute, EpochMetrics, HookTimer, LiveCallback, LiveOptions, LiveRun, split_epoch_metrics
from mlcheck.spelling import keywords_checked

try:
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "mlcheck.integrations.transformers needs Hugging Face transformers: "
        "pip install 'mlcheck-train[transformers]' (or pip install transformers)"
    ) from exc

logger = logging.getLogger(__name__)

__all__ = ["HFTrainable", "MLCheckCallback", "default_batch_to_arrays"]

#: Batch keys taken as the model's inputs, in order of preference, and as its targets.
INPUT_KEYS = ("input_ids", "pixel_values", "input_values", "input_features", "inputs_embeds")
TARGET_KEYS = ("labels", "label", "label_ids")
#: What the Trainer adds to the model's keyword arguments that is not data.
NOT_DATA = frozenset({"num_items_in_batch", "return_dict", "output_attentions", "output_hidden_states"})
#: Rows the sampled data checks should see at train start (Keras: 8 batches of 32; HF's
#: default batch is 8 per device, so a fixed batch count would give them too few rows).
SAMPLE_ROWS = 256
#: `on_evaluate` metrics that are timings, not measurements of the model.
NOT_EVAL_METRICS = frozenset({"runtime", "samples_per_second", "steps_per_second", "epoch", "model_preparation_time"})


def default_batch_to_arrays(batch: Mapping[str, Any]) -> tuple[Any, Any]:
    """(inputs, targets) of a Trainer batch (the model's keyword arguments): the first of
    `INPUT_KEYS` present (else the first tensor) and the first of `TARGET_KEYS` present."""
    inputs = next((batch[k] for k in INPUT_KEYS if isinstance(batch.get(k), torch.Tensor)), None)
    if inputs is None:
        inputs = next((v for k, v in batch.items() if isinstance(v, torch.Tensor) and k not in TARGET_KEYS), None)
    targets = next((batch[k] for k in TARGET_KEYS if isinstance(batch.get(k), torch.Tensor)), None)
    return inputs, targets


def _model_loss(output: Any, batch: Mapping[str, Any]) -> torch.Tensor | None:
    """The detached loss the model returned: a `ModelOutput`'s (or dict's) "loss", or the first
    element of a tuple when labels were passed (`return_dict=False`)."""
    if isinstance(output, Mapping):
        loss = output.get("loss")
    elif isinstance(output, (tuple, list)) and output and any(k in batch for k in TARGET_KEYS):
        loss = output[0]
    else:
        loss = None
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        return loss.detach()
    return None


class HFTrainable(_TorchBase):
    """A Hugging Face model that computes its own loss when given labels (`model(**batch).loss`),
    for the train-start checks; trains only clones of model and optimizer.

    Args:
        model: a `PreTrainedModel` (or any module whose forward takes the batch's keywords and
            returns an output with `.loss` and `.logits`).
        optimizer: the optimizer the run uses (copied with the model, never stepped).
        train_data: an iterable of batches (dicts of tensors).
    """

    framework = "transformers"

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, train_data: Any) -> None:
        super().__init__(model, train_data, None, batch_size=8)
        self.optimizers = [optimizer] if optimizer is not None else []

    def _outputs(self, batch: Any) -> torch.Tensor:
        batch = _to_device(batch, self._device())
        return _first_tensor(self.module(**{k: v for k, v in batch.items() if k not in TARGET_KEYS}))

    def _loss_tensor(self, batch: Any) -> torch.Tensor:
        out = self.module(**_to_device(batch, self._device()))
        loss = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
        if loss is None:
            raise ValueError("the model returned no loss for a batch with labels; the train-start checks need one")
        return loss

    def _copy(self) -> HFTrainable:
        module, optimizers = _clone_module_and_optimizers(self.module, self.optimizers)
        return HFTrainable(module, optimizers[0] if optimizers else None, None)


class MLCheckCallback(LiveCallback, TrainerCallback):
    """Watches a `transformers.Trainer` run and warns, early and specifically, when it looks wrong.

    `Trainer(..., callbacks=[MLCheckCallback()])` runs every default check on the live run:
    the loss of every optimizer step (the `loss` the model returns, read from its output, so
    every step counts, not only the `logging_steps` the Trainer logs), the learning rate, the
    update/weight ratio and non-finite gradients and weights every `every_n_steps` steps, the
    evaluation metrics (`eval_loss`, `eval_accuracy`, ...), and batches of inputs and targets
    from training and evaluation (every batch of the first pass for `train-val-overlap`).
    Before the first step a copy of the model trains on the first batch (`overfit-batch`);
    model, optimizer and random state are left exactly as they were.

    How it sees what a callback is not given: forward hooks on the model, for the duration of
    `train()`, read the batch the Trainer passes (`model(**batch)`) and the output it gets
    back. The Trainer's dataloaders, samplers and random state are not touched. When the model
    returns no loss (a `compute_loss_func`, label smoothing, an overridden `compute_loss`), the
    loss comes from the Trainer's own logs instead, every `logging_steps` steps, averaged over
    them as the Trainer reports it.

    Epoch-level checks (train-val gap, suspicious validation) get one record per evaluation:
    the evaluation's metrics and the mean training loss of the steps since the previous one;
    records are numbered by evaluation (0, 1, ...), which is the epoch with
    `eval_strategy="epoch"`. Without evaluation, one record per training epoch. The
    gradient norm the Trainer logs is not used: the gradient scan names non-finite gradients
    by parameter instead.

    Findings are Python warnings (`mlcheck.MLCheckWarning`, WARNING and ERROR only), log
    records, lines in `<log_dir>/findings.jsonl` and TensorBoard events in `log_dir`. Under
    distributed training only the main process (`state.is_world_process_zero`) observes its
    own batches, writes and warns; the stop decision reaches every process.

    Args:
        checks: checks to run: instances, classes or ids. Default None: every check on by default.
        suppress: check ids to silence (`mlcheck checks` lists them). Default: none.
        log_dir: where TensorBoard events and `findings.jsonl` go. Default None: the Trainer's
            TensorBoard run directory (`$TENSORBOARD_LOGGING_DIR`, `args.logging_dir` where the
            version has it, else the newest `<output_dir>/runs/*` the TensorBoard callback made),
            else `<output_dir>/runs/mlcheck`. False: no files.
        stop_on: None (default), "error" or "warning" (any case): set `control.should_training_stop` once a
            finding of that severity or worse is raised (the finding is logged).
        every_n_steps: optimizer steps between the costly statistics. Default 25.
        strict: re-raise exceptions from checks instead of switching the check off. Default False.
        overfit_batch: run the train-start checks (`overfit-batch`) on a copy. Default True.
        overfit_steps: step budget of those checks. Default None: 100 (`Budget.steps`).
        overfit_seconds: wall-clock safety net for them (an INFO "inconclusive" when hit). Default 10.
        sample_batches: first batches of each split that every data check sees (an evaluation
            split with fewer batches: its first pass). Default None: enough for 256 rows at the
            run's batch size (32 at the Trainer's default of 8), at least 3.
        sample_every_n_batches: after those, one batch in this many. Default 100.
        hash_epochs: first passes over each split whose every batch goes to the checks that must
            see every sample. Default 1; 0: off.
        full_pass_checks: ids of those checks. Default None: the checks declaring `Signal.EVERY_BATCH`.
        batch_to_arrays: function batch dict -> (inputs, targets). Default: `default_batch_to_arrays`
            (`input_ids` or the first of `INPUT_KEYS`, and `labels`).
        task: "classification" or "regression" (any case). Default None: inferred from the labels.
        num_classes: number of classes. Default None: inferred from the logits' width.
        warn: raise Python warnings for WARNING and ERROR findings. Default True.
        timing: keep the wall time spent per hook in `timings`. Default False.

    Example:
        >>> from transformers import Trainer, TrainingArguments
        >>> from mlcheck.integrations.transformers import MLCheckCallback
        >>> cb = MLCheckCallback(stop_on="error")
        >>> trainer = Trainer(model, TrainingArguments("out", eval_strategy="epoch"),
        ...                   train_dataset=train, eval_dataset=val, callbacks=[cb])  # doctest: +SKIP
        >>> trainer.train()                                                            # doctest: +SKIP
        >>> [f.check for f in cb.findings]                                             # doctest: +SKIP
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
        sample_batches: int | None = None,
        sample_every_n_batches: int = 100,
        hash_epochs: int = 1,
        full_pass_checks: Iterable[str] | None = None,
        batch_to_arrays: Callable[[Mapping[str, Any]], tuple[Any, Any]] | None = None,
        task: str | None = None,
        num_classes: int | None = None,
        warn: bool = True,
        timing: bool = False,
    ) -> None:
        self.options = LiveOptions(
            stop_on=stop_on,
            every_n_steps=every_n_steps,
            strict=strict,
            warn=warn,
            train_start_checks=overfit_batch,
            train_start_steps=overfit_steps,
            train_start_seconds=overfit_seconds,
            sample_batches=3 if sample_batches is None else sample_batches,
            sample_every_n_batches=sample_every_n_batches,
            hash_epochs=hash_epochs,
            full_pass_checks=None if full_pass_checks is None else tuple(full_pass_checks),
            task=task,
            num_classes=num_classes,
        )
        self._sample_batches = sample_batches
        self.checks = list(checks) if checks is not None else None
        self.suppress = tuple(suppress)
        # unknown ids, and a suppress that leaves none, raise here (a Monitor built for this said
        # "checks=[] names no check" a second time)
        opt.unsuppressed(
            default_checks() if self.checks is None else opt.check_instances("checks", self.checks),
            opt.check_ids("suppress", self.suppress),
        )
        self.log_dir = opt.log_dir(log_dir, flags=(None, True, False))  # a file, "" or "~/..." raise here
        what = "a function of the batch returning (inputs, targets)"
        self.batch_to_arrays = (
            opt.optional_function("batch_to_arrays", batch_to_arrays, what, arguments=1) or default_batch_to_arrays
        )
        self.timer = HookTimer(enabled=timing)
        self.live: LiveRun | None = None
        self._active = False
        self._hooks: list[Any] = []

    # -- train ---------------------------------------------------------------------------------

    def _resolve_log_dir(self, args: Any) -> Path | None:
        if self.log_dir is False:
            return None
        if self.log_dir not in (None, True):
            return Path(self.log_dir)  # type: ignore[arg-type]
        explicit = os.environ.get("TENSORBOARD_LOGGING_DIR") or getattr(args, "logging_dir", None)
        if explicit:
            return Path(explicit).expanduser()
        runs = Path(args.output_dir or ".") / "runs"
        made = [p for p in runs.glob("*") if p.is_dir() and p.name != "mlcheck"] if runs.is_dir() else []
        # the TensorBoard callback (report_to) made its run directory in its on_train_begin,
        # which runs before this one's: reporting callbacks precede the user's
        return max(made, key=lambda p: p.stat().st_mtime) if made else runs / "mlcheck"

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._rank_zero = bool(state.is_world_process_zero)
        self._world = int(getattr(args, "world_size", 1) or 1)
        self.timer.table.clear()
        options = self.options
        if self._sample_batches is None:
            rows = max(1, int(getattr(args, "per_device_train_batch_size", 8) or 8) * self._world)
            options = dataclasses.replace(options, sample_batches=max(3, math.ceil(SAMPLE_ROWS / rows)))
        self.live = LiveRun(
            options,
            self.checks,
            self.suppress,
            log_dir=self._resolve_log_dir(args) if self._rank_zero else None,
            default_sinks=self._rank_zero,
        )
        info = self.live.monitor.run.info
        if state.max_steps and state.max_steps > 0:
            info.total_steps = int(state.max_steps)
        epochs = float(getattr(args, "num_train_epochs", 0) or 0)
        if epochs > 0 and epochs.is_integer() and not (getattr(args, "max_steps", -1) or -1) > 0:
            info.max_epochs = int(epochs)
        schedule = str(getattr(getattr(args, "lr_scheduler_type", ""), "value", getattr(args, "lr_scheduler_type", "")))
        # "reduce_lr_on_plateau" moves the rate only when the metric stalls: a healthy run may
        # never see it move, so whether the rate must change is unknown
        info.has_scheduler = None if schedule == "reduce_lr_on_plateau" else schedule != "constant"
        info.zeroes_gradients = True  # the Trainer zeroes them after each optimizer step
        # weights loaded with `from_pretrained` (the config names where from) or a resumed run (no
        # mlcheck state comes back with the Trainer's checkpoint): the loss starts near its floor
        info.pretrained = bool(state.global_step) or bool(
            model is not None and self.live.guard("pretrained weights", pretrained_weights, model)
        )
        self._model = model
        self._optimizer: Any = kwargs.get("optimizer")
        self._scaled = bool(getattr(args, "fp16", False))  # a GradScaler skips inf steps: no finding
        self._step, self._epoch = int(state.global_step), int(state.epoch or 0)
        self._scan = ParameterScan(model, track_gradients=False)  # the Trainer zeroes them
        self._accum: list[torch.Tensor] = []
        self._sum_losses = False  # the model normalised each micro-batch by the whole step's items
        self._losses_from_model = True
        self._lr: float | None = None
        self._held: tuple | None = None  # a step without a model loss, waiting for on_log's
        self._started = bool(state.global_step)  # resumed runs skip the train-start checks
        self._val_index = 0
        self._record = 0  # epoch-level records written (one per evaluation)
        self._records_at_evaluation = str(getattr(getattr(args, "eval_strategy", "no"), "value", "no")) != "no"
        self._active = True
        self._add_hooks()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._active:
            self._active = False
            self._remove_hooks()
            if self._rank_zero:
                self._finish_held()
                self._flush()
                self.live.close()

    # -- the model's forward: batches and losses -----------------------------------------------

    def _add_hooks(self) -> None:
        if self._model is not None and self._rank_zero:
            self._hooks = [
                self._model.register_forward_pre_hook(self._before_forward, with_kwargs=True),
                self._model.register_forward_hook(self._after_forward, with_kwargs=True),
            ]

    def _remove_hooks(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def _before_forward(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if self._started or not module.training or not self._active:
            return
        self._started = True
        if self.live.train_start_checks:
            batch = {k: v for k, v in kwargs.items() if k not in NOT_DATA}
            self._remove_hooks()  # the checks deep-copy the model: no hook of ours may come along
            try:
                with self.timer("overfit_batch"):
                    self.live.run_train_start_checks(
                        lambda: HFTrainable(module, _unwrap(self._optimizer), OneBatch(batch)),
                        step=0,
                        epoch=0,
                    )
            finally:
                self._add_hooks()

    def _after_forward(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        if not self._active:
            return
        with self.timer("forward"):
            live = self.live
            if live.output_width is None:
                logits = getattr(output, "logits", None)
                if isinstance(logits, torch.Tensor) and logits.ndim >= 1:
                    live.output_width = int(logits.shape[-1]) if logits.ndim >= 2 else 1
            split = "train" if module.training else "val"
            if split == "train":
                loss = _model_loss(output, kwargs)
                if loss is not None:
                    self._accum.append(loss)
                    self._sum_losses = "num_items_in_batch" in kwargs
            index = live.count[split]
            route = live.route_batch(split)
            if route is BatchRoute.SKIP and (split != "train" or live.task_inferred):
                return
            pair = live.guard("batches", batch_arrays, self.batch_to_arrays, kwargs)  # failing: batches off
            if pair is None:
                return
            inputs, targets = pair
            inputs = to_numpy(inputs) if route is not BatchRoute.SKIP else None
            ids = inputs is not None and inputs.dtype.kind in "iu"
            live.observe_batch(
                route,
                inputs,
                to_numpy(targets),
                split=split,
                step=self._step,
                epoch=self._epoch,
                index=index,
                input_kind=self._scan.input_kind if ids else None,
            )

    # -- optimizer steps -----------------------------------------------------------------------

    def on_step_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        self._step, self._epoch = int(state.global_step) + 1, int(state.epoch or 0)
        self._optimizer = optimizer

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        if not self._active or not self._rank_zero:
            return
        optimizer = _unwrap(optimizer)
        self._lr = learning_rate(optimizer)
        step = int(state.global_step) + 1  # the step this update becomes
        if step % self.options.every_n_steps == 0 and optimizer is not None:
            with self.timer("before_optimizer_step"):
                self._scan.before_step(optimizer, step, scaled=self._scaled)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._active:
            return
        if self._rank_zero:
            with self.timer("step_end"):
                self._finish_held()
                step = int(state.global_step)
                ratio, nonfinite = self._scan.after_step(step)
                losses, self._accum = self._accum, []
                entry = (step, losses, ratio, nonfinite, self._lr, int(state.epoch or 0))
                if losses:
                    self._hold(entry)
                else:
                    self._losses_from_model = False
                    self._held = entry  # on_log may bring the Trainer's averaged loss for it
        self._maybe_stop(state, control, every=self.options.every_n_steps)

    def _hold(self, entry: tuple) -> None:
        step, losses, ratio, nonfinite, lr, epoch = entry
        scale = 1.0 if self._sum_losses or not losses else 1.0 / len(losses)
        if self.live.hold_step(step, losses, scale=scale, lr=lr, update_ratio=ratio, epoch=epoch, nonfinite=nonfinite):
            self._flush()

    def _finish_held(self) -> None:
        if self._held is not None:
            entry, self._held = self._held, None
            self._hold(entry)

    def _flush(self) -> None:
        if self.live.holding:
            optimizer = _unwrap(self._optimizer)
            self.live.flush_steps(
                losses_to_floats,
                rescan=None if optimizer is None else lambda: self._scan.nonfinite_now(optimizer, scaled=self._scaled),
            )

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not self._active or not self._rank_zero or self._held is None or not logs:
            return
        loss = logs.get("loss")
        if isinstance(loss, (int, float)) and self._held[0] == state.global_step:
            step, _, ratio, nonfinite, lr, epoch = self._held
            self._held = None
            self._hold((step, [torch.tensor(float(loss), dtype=torch.float64)], ratio, nonfinite, lr, epoch))

    # -- evaluations and epochs ----------------------------------------------------------------

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not self._active:
            return
        self.live.end_pass("val")
        if self._rank_zero and self._records_at_evaluation:
            val = {}
            for name, value in (metrics or {}).items():
                base = name.removeprefix("eval_")
                if base != name and base not in NOT_EVAL_METRICS and isinstance(value, (int, float)):
                    val["val_" + base] = float(value)
            self._end_record(state, split_epoch_metrics(val))
        self._maybe_stop(state, control)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._active:
            return
        self.live.end_pass("train")
        if self._rank_zero and not self._records_at_evaluation:
            self._end_record(state, EpochMetrics())
        self._maybe_stop(state, control)

    def _end_record(self, state: Any, metrics: EpochMetrics) -> None:
        self._finish_held()
        self._flush()
        self.live.end_epoch(self._record, step=int(state.global_step), metrics=metrics)
        self._record += 1
        self.live.start_epoch()

    def _maybe_stop(self, state: Any, control: Any, every: int = 1) -> None:
        if self.options.stop_on is None:
            return
        stop = self._rank_zero and self.live.should_stop
        if self._world > 1:
            # a collective, only at points every process reaches together
            if int(state.global_step) % every != 0:
                return
            stop = _broadcast_from_zero(stop)
        if stop:
            control.should_training_stop = True


def _unwrap(optimizer: Any) -> Any:
    """The torch optimizer inside accelerate's `AcceleratedOptimizer`."""
    return getattr(optimizer, "optimizer", optimizer)


def _broadcast_from_zero(flag: bool) -> bool:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    box = [flag]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])
