"""The live core shared by every callback.

Adapters translate framework events into the calls of `LiveRun`; every decision is made here,
once, for all of them: option validation, which batch goes to which checks (routed by what each
check declares it consumes, `Check.consumes`), the checks run at train start on a copy of the
model, how epoch metrics split into train and validation, when held steps reach the checks, task
inference, and when to stop. `Monitor` users who want the callbacks' behaviour use it too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import math
import os
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck import options as opt
from mlcheck import samples, task
from mlcheck.checks.base import Check, Signal, default_checks
from mlcheck.checks.curve import curve_minimums
from mlcheck.checks.preflight.unused_parameters import UNCHANGED_WEIGHTS, UnusedParameters
from mlcheck.checks.samples import NoisyLabels
from mlcheck.config import build_checks, load_config
from mlcheck.findings import Finding, Severity
from mlcheck.layers import LayerObservation, NonfiniteOrigin
from mlcheck.metrics import first_loader_name, strip_split
from mlcheck.monitor import Monitor, internal_notice
from mlcheck.preflight_context import StepTimeNet
from mlcheck.run import EarlyStop, RowLosses, RunInfo
from mlcheck.sinks import Sink
from mlcheck.sinks.jsonl import JsonlSink
from mlcheck.trainable import BatchUnsplit, CloneRefused, Trainable

logger = logging.getLogger(__name__)

__all__ = ["BatchRoute", "EpochMetrics", "HookTimer", "LiveCallback", "LiveOptions", "LiveRun", "split_epoch_metrics"]

#: A held step's non-finite parameter names when there are none (read-only: shared by them all).
_NO_NAMES: Mapping[str, Sequence[str]] = types.MappingProxyType({})

#: Log names that are the optimizer's settings, not metrics of the model.
NOT_METRICS = frozenset({"learning_rate", "lr"})


#: `every_n_steps` by default: the callbacks' and `Monitor`'s
DEFAULT_EVERY_N_STEPS = 25


#: What `slice_by=` is, as its errors say: each callback calls it with one argument.
_SLICE_BY = "a function of one batch (Lightning: the batch; Keras: the tuple (x, y)), one key per row"


@dataclass(frozen=True)
class LiveOptions:
    """The options every callback shares, validated once (a wrong value raises here, naming the
    argument), with the same defaults in every callback. Their meaning is documented on the
    callbacks, which take them as keywords."""

    stop_on: str | None = None
    every_n_steps: int = DEFAULT_EVERY_N_STEPS
    strict: bool = False
    warn: bool = True
    train_start_checks: bool = True
    train_start_steps: int | None = None
    train_start_seconds: float = 10.0
    sample_batches: int = 3
    sample_every_n_batches: int = 100
    hash_epochs: int = 1
    full_pass_checks: tuple[str, ...] | None = None
    task: str | None = None
    num_classes: int | None = None
    config: str | os.PathLike[str] | bool | None = None
    #: look for the layer that produced a non-finite loss on every step: None (default) where
    #: the loss lives on the CPU (free there; on an accelerator it costs a host sync per step)
    nonfinite_origin: bool | None = None
    slice_by: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop_on", opt.stop_on(self.stop_on))
        opt.integer("every_n_steps", self.every_n_steps, minimum=1)
        for name, value in (("strict", self.strict), ("warn", self.warn), ("overfit_batch", self.train_start_checks)):
            object.__setattr__(self, self._PUBLIC.get(name, name), opt.flag(name, value))
        opt.flag("nonfinite_origin", self.nonfinite_origin, optional=True)
        opt.optional_integer(
            "overfit_steps",
            self.train_start_steps,
            minimum=1,
            hint="; pass overfit_batch=False to switch overfit-a-batch off",
        )
        opt.seconds("overfit_seconds", self.train_start_seconds)
        opt.integer("sample_batches", self.sample_batches, minimum=0)
        opt.integer("sample_every_n_batches", self.sample_every_n_batches, minimum=1)
        opt.integer("hash_epochs", self.hash_epochs, minimum=0)
        object.__setattr__(self, "task", opt.task(self.task))
        classes_hint = " (a classifier tells two or more classes apart)"
        opt.optional_integer("num_classes", self.num_classes, minimum=2, hint=classes_hint)
        if not isinstance(self.config, (str, os.PathLike, bool, type(None))):
            raise TypeError(f"config must be a path to a pyproject.toml, True/None or False, got {self.config!r}")
        opt.optional_function("slice_by", self.slice_by, _SLICE_BY, arguments=1)
        if self.full_pass_checks is not None:  # a lone string is one id, not its characters
            object.__setattr__(self, "full_pass_checks", opt.id_items("full_pass_checks", self.full_pass_checks))

    #: The callbacks' public names of the options named for what they do here.
    _PUBLIC = {
        "overfit_batch": "train_start_checks",
        "overfit_steps": "train_start_steps",
        "overfit_seconds": "train_start_seconds",
    }

    def watching(self, breakpoints: Any) -> LiveOptions:
        """These options for a callback given `breakpoints` (a `mlcheck.breakpoints.Breakpoints`
        or None): a breakpoint on the NaN origin watches every step's loss on accelerators too,
        where `nonfinite_origin` was left at None."""
        if breakpoints is not None and breakpoints.watches_nonfinite and self.nonfinite_origin is None:
            return replace(self, nonfinite_origin=True)
        return self

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> LiveOptions:
        """The options among a callback's keyword arguments (its `locals()`), by public name;
        the callback's other arguments are left out."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {cls._PUBLIC.get(k, k): v for k, v in arguments.items()}
        return cls(**{k: v for k, v in values.items() if k in names})


class HookTimer:
    """Wall time per named hook in `table`, kept only when enabled (for benchmarks):
    `with timer("train_batch_end"): ...`."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = opt.flag("timing", enabled)  # the callbacks' `timing=`
        self.table: dict[str, float] = {}

    def __call__(self, name: str) -> Any:
        return _Span(self.table, name) if self.enabled else _NULL

    def add(self, name: str, seconds: float) -> None:
        self.table[name] = self.table.get(name, 0.0) + seconds


class _Span:
    def __init__(self, table: dict[str, float], name: str) -> None:
        self.table, self.name = table, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        self.table[self.name] = self.table.get(self.name, 0.0) + time.perf_counter() - self.started


_NULL = contextlib.nullcontext()


class BatchRoute(enum.Enum):
    """Which checks see a batch."""

    SAMPLE = "sample"  # every check that consumes batches
    FULL_PASS = "full_pass"  # only the checks that consume every batch of the first pass(es)
    CONFIRM = "confirm"  # only the full-pass checks awaiting this split again (`Check.awaits_batches`)
    SKIP = "skip"  # none


@dataclass(frozen=True)
class EpochMetrics:
    """An epoch's logged values, split into train and validation by name."""

    train_loss: float | None = None
    val_loss: float | None = None
    train: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)


def split_epoch_metrics(metrics: Mapping[str, float], val_names: Iterable[str] = ()) -> EpochMetrics:
    """Splits logged epoch values by name: `val_*`, `*/val` and the names in `val_names`
    (unprefixed names that validation logged) are validation; unprefixed and `train_*` names
    are training. A `_epoch` suffix is dropped; `_step` values, the learning rate and other
    splits (`test_*`) are left out. Of several validation loaders (`val_loss/dataloader_idx_0`,
    `.../dataloader_idx_1`) the first one's values are taken."""
    val_names = frozenset(val_names)
    losses: dict[str, float] = {}
    sides: dict[str, dict[str, float]] = {"train": {}, "val": {}}
    for logged, value in metrics.items():
        name = first_loader_name(logged)  # several validation loaders: the first one's values
        if name is None or name.endswith("_step"):
            continue
        split, base = strip_split(name)
        base = base.removesuffix("_epoch")
        validation = split == "val" or logged in val_names
        side = "val" if validation else ("train" if split in ("train", None) else None)
        if side is None or base in NOT_METRICS:
            continue
        if base == "loss":
            losses[side] = value
        else:
            sides[side][base] = value
    return EpochMetrics(losses.get("train"), losses.get("val"), sides["train"], sides["val"])


def write_run_csv(monitor: Monitor, log_dir: str | os.PathLike[str]) -> Path | None:
    """Writes `<log_dir>/mlcheck/samples.csv` for a finished run: the ranking of its
    `noisy-labels` check (a default one when the run has none)."""
    if not monitor.run.samples:
        return None
    check = next((c for c in monitor.checks if isinstance(c, NoisyLabels)), None) or NoisyLabels()
    return samples.write_samples_csv(Path(log_dir) / samples.CSV_PATH, check.rows(monitor.run))


def infer_task(info: RunInfo, targets: np.ndarray | None, output_width: int | None) -> None:
    """Fills `info.task` and `info.num_classes` where they are not set, from a batch of targets
    and the model's output width (`mlcheck.task.from_targets`); what is set wins."""
    if targets is None or (info.task is not None and info.num_classes is not None):
        return
    facts = task.merge(
        task.TaskFacts(task=info.task, num_classes=info.num_classes), task.from_targets(targets, output_width)
    )
    info.task, info.num_classes = facts.task, facts.num_classes


def configured_checks(
    checks: Sequence[Check] | None, suppress: Iterable[str] | str, config: str | os.PathLike[str] | bool | None
) -> tuple[list[Check] | None, tuple[str, ...], Path | None]:
    """(checks, suppress, the pyproject.toml read) for a run, as `mlcheck analyze` and `mlcheck
    sanity` configure theirs: the `[tool.mlcheck]` table of `config` (None or True: the nearest
    pyproject.toml from the working directory; False: none) adds its `suppress` ids and, where
    `checks` is not given, chooses the checks (`select`) and their arguments
    (`[tool.mlcheck.checks.<id>]`). A bad table raises `ConfigError` naming the file and key."""
    suppress = opt.check_ids("suppress", suppress)
    if checks is not None:
        checks = opt.check_instances("checks", checks)  # ids and classes built with their defaults
    if config is False:
        return (list(checks) if checks is not None else None), suppress, None
    if config in (None, True):
        cfg = load_config()
    else:
        given = f"config={os.fspath(config)!r}"  # type: ignore[arg-type]
        cfg = load_config(Path(config), given=given, otherwise=" (None finds the nearest one, False reads none)")
    if cfg.source is None:
        return (list(checks) if checks is not None else None), suppress, None
    suppress = tuple(dict.fromkeys([*suppress, *cfg.suppress]))
    if checks is None and (cfg.select or cfg.check_args):
        return build_checks(config=cfg), suppress, cfg.source
    return (list(checks) if checks is not None else None), suppress, cfg.source


def validate(
    options: LiveOptions, checks: Sequence[Check] | None, suppress: Iterable[str], keep: Iterable[str] = ()
) -> None:
    """Raises now, where the user sees it, what building the run would raise at train start:
    unknown check ids, a bad `[tool.mlcheck]` table, a `suppress` that leaves no check to run
    (`keep`: the ids breakpoints turn on, as `LiveRun` takes them)."""
    checks, suppress, _ = configured_checks(checks, suppress, options.config)  # ids and classes checked
    built = checks if checks is not None else default_checks()
    keep = set(keep)
    if not keep:  # breakpoints add the checks they need: the run checks something
        opt.unsuppressed(built, suppress)
    if options.full_pass_checks is not None:
        opt.check_ids("full_pass_checks", options.full_pass_checks, also=[c.id for c in built])


class LiveRun:
    """One watched training run: a `Monitor` plus the decisions the callbacks share.

    Args:
        options: the validated `LiveOptions`.
        checks: checks to run: instances, classes or check ids. Default None: every default check.
        suppress: check ids to silence.
        log_dir: where `Monitor`'s default sinks write (None: no files).
        sinks: extra sinks (an adapter's own TensorBoard layout, for instance).
        default_sinks: False on the ranks that must not write or warn.
        info: facts about the run the adapter already knows.
        flush_every: steps held by `hold_step` before they reach the checks. Adapters whose
            losses live on a device hold them (one host sync per flush); 1 hands each step over.
        run_name: names the run in `findings.jsonl`.
        curves: also write the losses, learning rate and metrics it is given to `log_dir`
            (`Monitor`'s `curves`). Default False: the callbacks' frameworks have loggers that
            keep them; a hand-written loop without one may turn it on.
        keep: check ids that run even where `suppress` or the config's suppress list names
            them (the checks a breakpoint needs: setting it turns them on).
    """

    #: Steps held before they reach the monitor: divides `Monitor.STEP_EVAL_EVERY`, so a flush
    #: lands on every evaluation point; a non-finite loss is noticed at most this many steps
    #: late (the step it names is still exact).
    FLUSH_EVERY = 16

    #: Overfit-a-batch on a run whose length the trainer plans: at most half its steps, never
    #: fewer than this (Adam at 1e-2 or SGD+momentum at 0.1 memorise 16 digits with a small MLP
    #: in under 60 steps), never more than the pre-flight budget (`Budget.steps`, 100).
    TRAIN_START_MIN_STEPS = 60

    #: The train-start checks together take at most the time of this many of their own
    #: training steps (`StepTimeNet`; issue 13's target: overfit-a-batch at most the time of 100
    #: of the run's own steps), unless `overfit_steps` is given: a copy's step on the first
    #: batch's first 16 rows does no more work than the run's step on the whole batch.
    TRAIN_START_STEP_TIMES = 100
    #: ...never less than this: half the fixed `overfit_seconds` net (10 s) every run accepted
    #: before. On a small model a copy's step (~1 ms for the digits MLP; a Keras eager step on
    #: one row ~23 ms at load 8) costs no less than the run's own, so the steps' time alone would
    #: cut the fault suite's three-try schedules (20-33 + 60-100 + 60-100 steps) on a loaded
    #: machine and turn their verdicts into INFO; a slow model's (50 ms a step and up) net is its
    #: steps' time.
    TRAIN_START_FLOOR_SECONDS = 5.0

    def __init__(
        self,
        options: LiveOptions,
        checks: Sequence[Check] | None = None,
        suppress: Iterable[str] = (),
        *,
        log_dir: str | os.PathLike[str] | None = None,
        sinks: Sequence[Sink] = (),
        default_sinks: bool = True,
        info: RunInfo | None = None,
        flush_every: int = FLUSH_EVERY,
        run_name: str | None = None,
        artefact_dir: str | os.PathLike[str] | None = None,
        curves: bool = False,
        keep: Iterable[str] = (),
    ) -> None:
        self.options = options
        # ranks other than zero say nothing: their summary ("checked 0 steps ... no problems
        # found") would contradict rank zero's, the one that observed the run
        self._speaks = default_sinks
        #: where larger files go (`mlcheck/samples.csv`); default: `log_dir`
        self.artefact_dir = artefact_dir if artefact_dir is not None else log_dir
        checks, suppress, self.config_source = configured_checks(checks, suppress, options.config)
        keep = set(keep)
        suppress = tuple(i for i in suppress if i not in keep)
        if self.config_source is not None:
            logger.info("mlcheck: configuration from %s", self.config_source)
        if checks is not None:
            for check in checks:
                check.reset()
        self.monitor = Monitor(
            checks,
            suppress=suppress,
            log_dir=log_dir if default_sinks else None,
            stop_on=options.stop_on,
            every_n_steps=options.every_n_steps,
            strict=options.strict,
            warn=options.warn,
            info=info or RunInfo(task=options.task, num_classes=options.num_classes),
            sinks=sinks,
            default_sinks=default_sinks,
            run_name=run_name,
            curves=curves and default_sinks and log_dir is not None,
        )
        # the callbacks count optimizer updates: a run of one an epoch is not a log indexed by epochs
        self.monitor.run.info.steps_are_updates = True
        if self.artefact_dir is not None:  # where close() writes it: findings can point there
            self.monitor.run.samples_csv = Path(self.artefact_dir) / samples.CSV_PATH
        if options.task is not None:
            self.monitor.run.info.task = options.task
        if options.num_classes is not None:
            self.monitor.run.info.num_classes = options.num_classes
        full = options.full_pass_checks
        if full is not None:
            full = opt.check_ids("full_pass_checks", full, also=[c.id for c in self.monitor.checks])
        else:
            full = tuple(c.id for c in self.monitor.checks if Signal.EVERY_BATCH in c.signals())
        self.full_pass_checks: tuple[str, ...] = full
        self._second_stage_checks = [
            c for c in self.monitor.checks if c.id in full and type(c).awaits_batches is not Check.awaits_batches
        ]
        self._confirm_checks: dict[str, tuple[str, ...]] = {"train": (), "val": ()}
        #: a second stage may ask for one more pass over a split (`Check.awaits_batches`); an
        #: adapter whose ranks must route alike and cannot agree on it sets this False
        self.confirm_passes = True
        self.passes = {"train": 0, "val": 0}  # completed passes over each split
        self.count = {"train": 0, "val": 0}  # batches seen in the run, per split
        # findings a checkpoint brought back, and the findings file they were written to then
        self.resumed_findings, self.resumed_file = 0, None
        #: `route_batch` answers SKIP, and does nothing else, to every batch of a split counted
        #: below this: an adapter may count such a batch itself (`count[split] += 1`) instead of
        #: calling it, so that an unsampled step costs one integer compare
        self.skip_below = {"train": 0, "val": 0}
        self.output_width: int | None = None
        self.task_inferred = False
        self.flush_every = flush_every
        self._pending: list[tuple] = []
        self._rows = 1  # the weight of a step in the epoch's training loss: its batch's rows, last known
        self._epoch_loss_sum, self._epoch_loss_n = 0.0, 0
        self._weights_moved = False  # an epoch's updates moved a trainable weight (`note_epoch_updates`)
        self._stop_logged = False
        self.broken: set[str] = set()  # the adapter's observations that failed (see `guard`)
        self._held: list[Finding] = []  # train-start findings, reported after the first batch
        #: per-sample hand-overs held inside `handing_over()`, merged at its end
        self._samples_held: list[samples.SampleOutputs] | None = None
        self._origin_attempts = 0
        self._synced: set[str] | None = None  # `monitor.disabled` at the last `sync`
        self.sync()
        #: optimizer steps between sampled layer steps (`plan_layer_steps`)
        self.layer_every = options.every_n_steps
        #: what cut the run short, where the adapter knows ("fast_dev_run=True"), for the summary
        self.cut_short_by: str | None = None
        self.plan_layer_steps()
        if options.slice_by is not None and not self.samples_active:
            # the slices are tested by an opt-in check: without it `slice_by` is never called
            internal_notice(
                "mlcheck: slice_by is set, but no check that reads per-sample outputs is on, so it is "
                "not used in this run: weak-slice, which tests the slices, is opt-in. Turn it on with "
                "checks=[*default_checks(), WeakSlice()] (from mlcheck.checks.base and "
                "mlcheck.checks.samples), or name it in the select list of [tool.mlcheck]."
            )

    # -- batches -------------------------------------------------------------------------------

    def route_batch(self, split: str) -> BatchRoute:
        """Which checks see the next batch of `split`. Counts batches over the whole run, so the
        answer is the same on every rank and machine, and short epochs do not pay for a fresh
        sample each time. A validation split shorter than `sample_batches` is sampled in its
        first pass only: every check has seen all of it, and it comes again unchanged (no
        shuffle, no augmentation), so the rest of the first batches would be repeats."""
        count = self.count[split]
        self.count[split] += 1
        options = self.options
        if not self.data_active:
            return BatchRoute.SKIP
        first = count < options.sample_batches and not (split == "val" and self.passes["val"])
        if first or count % options.sample_every_n_batches == 0:
            return BatchRoute.SAMPLE
        if self.passes[split] < options.hash_epochs and self.full_pass_checks:
            return BatchRoute.FULL_PASS
        if self.passes[split] == options.hash_epochs and self._awaiting(split):  # one pass more at most
            return BatchRoute.CONFIRM
        # The same answer until the next sampled batch or the end of a pass: passes change only
        # there, and what a check awaits only when data reaches it (a sample, a pass handed over)
        every = options.sample_every_n_batches
        self.skip_below[split] = (count // every + 1) * every
        return BatchRoute.SKIP

    def _awaiting(self, split: str) -> tuple[str, ...]:
        """Ids of the full-pass checks that wait for samples of `split` to come by again."""
        if not (self.options.hash_epochs and self.confirm_passes):
            return ()
        disabled = self.monitor.disabled
        ids = tuple(c.id for c in self._second_stage_checks if c.id not in disabled and c.awaits_batches(split))
        self._confirm_checks[split] = ids
        return ids

    def observe_batch(
        self,
        route: BatchRoute,
        inputs: np.ndarray | None,
        targets: np.ndarray | None,
        *,
        split: str,
        step: int | None,
        epoch: int | None,
        index: int,
        input_kind: str | None = None,
    ) -> list[Finding]:
        """Hands a routed batch (numpy arrays) to its checks; the first training batch also
        settles the task."""
        if split == "train" and not self.task_inferred:
            self.note_targets(targets)
        found: list[Finding] = []
        if route is BatchRoute.SAMPLE:
            found = self.monitor.log_batch(
                inputs, targets, split=split, step=step, epoch=epoch, index=index, input_kind=input_kind
            )
        elif route is not BatchRoute.SKIP:  # the full-pass checks take merged blocks of batches
            found = self.monitor.log_pass_batch(
                inputs,
                targets,
                split=split,
                step=step,
                epoch=epoch,
                index=index,
                input_kind=input_kind,
                checks=self._confirm_checks[split] if route is BatchRoute.CONFIRM else self.full_pass_checks,
            )
            if route is BatchRoute.CONFIRM:
                # a confirming pass's batch reaches its checks now, not merged at the pass's end:
                # what they await is asked again at the next batch (`route_batch`), so a check
                # that needs the first rows of the pass (`train-val-overlap`'s 64 validation
                # rows) is not handed the rest of it
                found += self.monitor.hand_over_deferred()
        if split == "train" and self._held:
            self.release_held()  # the train-start findings come after the first batch's
        return found

    def note_targets(self, targets: np.ndarray | None) -> None:
        """Infers the task from the first training targets seen (once)."""
        if not self.task_inferred:
            self.task_inferred = True
            infer_task(self.monitor.run.info, targets, self.output_width)

    def end_pass(self, split: str) -> None:
        self.passes[split] += 1
        self.skip_below = {"train": 0, "val": 0}  # the routes of both splits are asked again
        # the pass's merged full-pass batches reach their checks now: what they await of the
        # next pass (`Check.awaits_batches`) is known before its first batch is routed
        self.monitor.hand_over_deferred()

    def observe_val_losses(
        self,
        epoch: int | None,
        rows: int,
        total: float,
        total_sq: float,
        losses: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        """The per-row losses of a validation pass, summed (`RunState.val_row_losses`): its rows,
        the sum of their losses and of their squares, which the adapter reduced on the device
        (one host transfer a pass), and, for a pass of at most `RowLosses.PAIRED_MAX_ROWS` rows,
        each row's loss and class where the adapter gave them (`RunState.val_rows_by_epoch`).
        Read by the checks that declare `Signal.VAL_LOSSES` at the epoch's end; a pass of no
        rows or with a non-finite sum is dropped."""
        if not self.val_losses_active:
            return
        if rows > 0 and math.isfinite(total) and math.isfinite(total_sq):
            kept = losses is not None and labels is not None and len(losses) == len(labels) == rows
            kept = kept and rows <= RowLosses.PAIRED_MAX_ROWS
            row = RowLosses(
                epoch, int(rows), float(total), float(total_sq), *((losses, labels) if kept else (None, None))
            )
            run = self.monitor.run
            run.val_row_losses = row
            if kept and epoch is not None:
                run.val_rows_by_epoch[int(epoch)] = row
                while len(run.val_rows_by_epoch) > run.VAL_ROW_EPOCHS:
                    del run.val_rows_by_epoch[min(run.val_rows_by_epoch)]

    # -- per-sample outputs --------------------------------------------------------------------

    def observe_samples(
        self,
        split: str,
        epoch: int | None,
        *,
        labels: np.ndarray,
        true_prob: np.ndarray,
        predicted: np.ndarray,
        inputs: np.ndarray | None = None,
        indices: np.ndarray | None = None,
        slices: Any = None,
        features: np.ndarray | None = None,
        other_prob: np.ndarray | None = None,
        other_class: np.ndarray | None = None,
        positions: np.ndarray | None = None,
    ) -> list[Finding]:
        """Hands one batch's per-sample outputs (the true-class probability and prediction the
        adapter took from the model's own forward pass) to the checks that consume them; ids
        are the data set `indices` when the batch carries them, else content hashes of `inputs`.
        Validation rows of tabular inputs (`features`, else `inputs`) keep their values for
        `weak-slice`'s feature ranges. `other_prob` and `other_class`: the likeliest class
        other than the label and its probability, per row (`SampleOutputs`). `positions`: each
        row's data set index where the adapter knows it besides its id (its loader's indices):
        the store then finds a row seen before by a gather, not a search."""
        if not self.samples_active:
            return []
        values = samples.tabular_features(features if features is not None else inputs) if split == "val" else None
        outputs = samples.SampleOutputs(
            split=split,
            epoch=epoch,
            ids=samples.sample_ids(inputs, indices),
            labels=labels,
            true_prob=true_prob,
            predicted=predicted,
            slices=None if slices is None else np.asarray(slices).reshape(len(labels), -1)[:, 0],
            features=values if values is not None and len(values) == len(labels) else None,
            other_prob=other_prob,
            other_class=other_class,
            positions=positions,
        )
        if self._samples_held is not None:
            self._samples_held.append(outputs)
            return []
        return self.monitor.log_samples(outputs)

    #: Whether `handing_over()` merges its hand-overs (False: each handed over on its own).
    MERGE_SAMPLES = True

    @contextlib.contextmanager
    def handing_over(self) -> Iterator[None]:
        """Holds the per-sample hand-overs (`observe_samples`) made inside it, and at its end hands
        consecutive ones of one split and epoch to the store and the checks as one
        (`samples.merge_outputs`): an adapter that reduces many blocks at once (an epoch's, at its
        end) calls the store and each check once per split, not once per block; the results are
        those of the blocks one by one (see `SampleOutputs.segments`)."""
        if self._samples_held is not None:  # nested: the outer one hands them over
            yield
            return
        self._samples_held = []
        try:
            yield
        finally:
            held, self._samples_held = self._samples_held, None
            self._hand_over_held(held)

    def _hand_over_held(self, held: list[samples.SampleOutputs]) -> None:
        try:
            merged = samples.merge_outputs(held) if self.MERGE_SAMPLES else held
        except Exception:  # columns that do not concatenate: one by one, as they came
            merged = held
        for outputs in merged:
            self.monitor.log_samples(outputs)

    def keep_pass_fingerprints(self, keep: bool = True) -> samples.PassFingerprints | None:
        """Starts (`keep`) or stops keeping the fingerprints the full-pass checks compute of each
        batch's rows (`mlcheck.samples.PassFingerprints`), which the per-sample recording takes
        as its ids instead of hashing the same rows again; returns where they are kept."""
        monitor = self.monitor
        if not keep:
            monitor.pass_fingerprints = None
        elif monitor.pass_fingerprints is None:
            monitor.pass_fingerprints = samples.PassFingerprints()
        return monitor.pass_fingerprints

    # -- steps ---------------------------------------------------------------------------------

    def hold_step(
        self,
        step: int,
        losses: Sequence[Any],
        *,
        scale: float = 1.0,
        lr: float | None = None,
        update_ratio: float | None = None,
        epoch: int | None = None,
        nonfinite: Mapping[str, Sequence[str]] | None = None,
        grad_norm: float | None = None,
        grad_cosine: float | None = None,
        leftover_grads: tuple[float, float] | None = None,
        rows: int | None = None,
    ) -> bool:
        """Holds one optimizer step: its (micro-batch) losses as the adapter has them, summed
        and multiplied by `scale` when flushed. `rows`: the samples the step's batches held,
        where the adapter knows them: the epoch's training loss (`epoch_train_loss`) is then
        weighted by them, as Lightning's own epoch logging and Keras weigh it, so a short last
        batch counts for its rows, not as a whole batch. Returns True when a flush is due (at
        multiples of `flush_every` steps of the whole run). `leftover_grads`: (norm of the gradient
        found left over across an optimizer step, norm of the fresh one), where measured."""
        if self._held:
            self.release_held()
        grads = (grad_norm, grad_cosine, *(leftover_grads or (None, None)))
        names = dict(nonfinite) if nonfinite else _NO_NAMES  # the common case: nothing non-finite
        self._pending.append((step, lr, list(losses), scale, update_ratio, epoch, names, grads, rows))
        return (self.monitor.run.train_loss.total + len(self._pending)) % self.flush_every == 0

    def flush_steps(
        self,
        to_floats: Callable[[list[Any]], list[float]],
        rescan: Callable[[], Mapping[str, Sequence[str]]] | None = None,
    ) -> list[Finding]:
        """Hands the held steps to the checks. `to_floats` turns every held loss into a float in
        one go (one device sync); `rescan`, when a held loss is non-finite and no scan at a held
        step named the culprits, names the non-finite parameters now (at the last held step)."""
        pending, self._pending = self._pending, []
        if not pending:
            return []
        values = to_floats([loss for entry in pending for loss in entry[2]])
        last_nonfinite = pending[-1][6]
        if rescan is not None and not all(map(math.isfinite, values)) and not any(e[6] for e in pending):
            last_nonfinite = dict(rescan())
        out: list[Finding] = []
        i, last = 0, len(pending) - 1
        log_step = self.monitor.log_step
        for n, (step, lr, losses, scale, ratio, epoch, nonfinite, grads, rows) in enumerate(pending):
            k = len(losses)
            value = sum(values[i : i + k]) * scale if k else None
            i += k
            if rows:
                self._rows = rows
            if value is not None and math.isfinite(value):
                self._epoch_loss_sum += value * self._rows
                self._epoch_loss_n += self._rows
            if n == last:
                nonfinite = last_nonfinite
            # one call per step: cheaper than the vectorised log_steps on a block this small
            out += log_step(
                step,
                loss=value,
                lr=lr,
                update_ratio=ratio,
                epoch=epoch,
                nonfinite_grads=nonfinite.get("nonfinite_grads") or None,
                nonfinite_weights=nonfinite.get("nonfinite_weights") or None,
                grad_norm=grads[0],
                grad_cosine=grads[1],
                leftover_grad_norm=grads[2],
                fresh_grad_norm=grads[3],
            )
        return out

    @property
    def holding(self) -> bool:
        return bool(self._pending)

    @property
    def held_steps(self) -> int:
        """The steps `hold_step` holds that no flush has handed over yet."""
        return len(self._pending)

    # -- the user's logger ----------------------------------------------------------------------

    #: points per epoch suggested where the length of the run is not known
    POINTS_PER_EPOCH = 5

    def note_early_stopping(self, stops: Iterable[EarlyStop], best_checkpoints: Iterable[tuple[str, str]] = ()) -> None:
        """Records in `RunInfo.early_stop` the early stopping the adapter found that guards the
        validation loss (`train-val-gap` reads it): `stops` as configured, each with `keeps_best`
        where it restores its best weights itself; `best_checkpoints`: (monitored name, the user's
        words for it) of each callback that saves the weights of the best value of a metric
        (Keras' `ModelCheckpoint(save_best_only=True)`, Lightning's `ModelCheckpoint(monitor=...)`),
        which keeps the best for a stop on the same name. Of several, the one that keeps the best
        and stops first; None when none watches the validation loss."""
        kept = {monitor: words for monitor, words in best_checkpoints}
        guards = [
            replace(stop, keeps_best=kept[stop.monitor]) if stop.keeps_best is None and stop.monitor in kept else stop
            for stop in stops
            if stop.watches_val_loss
        ]
        self.monitor.run.info.early_stop = min(guards, key=lambda s: (s.keeps_best is None, s.patience), default=None)

    def note_logging_interval(self, every: int, steps_per_epoch: int | None, setting: str) -> str | None:
        """Says once (INFO), and returns, when the user's logger keeps too few training-loss
        points of this run for `mlcheck analyze` to judge its curve later (fewer than the
        loss-curve checks need over the planned `RunInfo.total_steps`), or fewer than one per
        epoch. The live checks read every step's loss and are not affected. `setting` names the
        framework's option with a `{}` for its value, e.g. "Trainer(log_every_n_steps={})"."""
        total = self.monitor.run.info.total_steps
        needed = curve_minimums(self.monitor.checks, "step")
        if every <= 1 or not needed or not (total or steps_per_epoch):
            return None
        most = max(needed.values())
        logged = total // every if total else None
        coarse = bool(steps_per_epoch) and every > steps_per_epoch
        if not coarse and (logged is None or logged >= most):
            return None
        short = ", ".join(f"{check} needs {n}" for check, n in needed.items() if logged is not None and logged < n)
        # enough points for every loss-curve check over the run, else a few per epoch
        enough = total // most if short else steps_per_epoch // self.POINTS_PER_EPOCH
        better = setting.format(max(1, min(enough, steps_per_epoch or every, every - 1)))
        if total:
            kept = f"about {logged} training-loss points of this run's {total} steps"
        else:
            kept = f"one training-loss point every {every} steps"
        if steps_per_epoch:
            kept += f" ({steps_per_epoch} steps per epoch)"
        if short:
            why = f"too few for `mlcheck analyze` to judge them later ({short})"
            fix = f"For curves that can be analysed later, set {better}."
        else:
            why, fix = "fewer than one per epoch", f"For a few points per epoch, set {better}."
        text = (
            f"mlcheck: {setting.format(every)} keeps {kept} in your logger's curves (TensorBoard, CSV): {why}. "
            f"mlcheck's live checks read the loss at every step and are not affected. {fix}"
        )
        logger.info(text)
        return text

    # -- epochs --------------------------------------------------------------------------------

    def start_epoch(self) -> None:
        self._epoch_loss_sum, self._epoch_loss_n = 0.0, 0

    def note_epoch_updates(
        self, *, batches: int, moved: bool, optimizer_steps: int | None = None, manual: bool | None = None
    ) -> None:
        """What the adapter saw of this training epoch's updates, before `end_epoch`: how many
        training batches ran, whether any trainable weight changed (fingerprints at the epoch's
        start and end), the optimizer steps the framework counted (None when unknown) and whether
        the user's code steps the optimizers itself (Lightning's manual optimization). An
        epoch of batches with no weight moved reaches `unused-parameters` (key `no-step`), but
        only while no epoch has moved one yet: weights that moved and then stand still have
        converged (a logistic regression whose float32 gradients are all exactly 0 once its
        sigmoid saturates: the fault suite's clean `early_converging` at seed 1), not failed
        to step."""
        extras = self.monitor.run.extras
        self._weights_moved = self._weights_moved or moved
        if self._weights_moved or batches <= 0:
            extras.pop(UNCHANGED_WEIGHTS, None)
        else:
            extras[UNCHANGED_WEIGHTS] = {"batches": batches, "optimizer_steps": optimizer_steps, "manual": manual}

    def note_unfrozen_outside(self, names: list[str], *, step: int | None, epoch: int | None) -> None:
        """Parameters frozen at train start, now trainable and in no optimizer parameter group
        (the adapter looks once an epoch): `unused-parameters` (key `unfrozen-not-in-optimizer`)
        tells them now, where it is enabled."""
        monitor = self.monitor
        for check in monitor.checks:
            if isinstance(check, UnusedParameters) and check.id not in monitor.disabled:
                monitor.report(check.unfrozen_finding(names, step=step, epoch=epoch))

    def note_no_training_batches(self, loader: dict[str, Any]) -> None:
        """The fit ended without a training batch, the training loader having none:
        `unused-parameters` (key `no-batches`) tells it, where it is enabled."""
        monitor = self.monitor
        for check in monitor.checks:
            if isinstance(check, UnusedParameters) and check.id not in monitor.disabled:
                monitor.report(check.no_batches_finding(loader))

    def epoch_train_loss(self) -> float | None:
        """The mean of this epoch's finite step losses that went through `flush_steps`, weighted
        by their `rows` where the adapter gave them (a step without rows weighs as the last step
        with them; all steps alike where none had them)."""
        return self._epoch_loss_sum / self._epoch_loss_n if self._epoch_loss_n else None

    def end_epoch(
        self, epoch: int, *, step: int | None, metrics: EpochMetrics, train_loss_from_steps: bool = True
    ) -> list[Finding]:
        """Records an epoch. The train loss is the mean of the flushed steps where there were
        any (memory flat in steps; a trainer may log none for the epoch), else the logged one;
        `train_loss_from_steps=False` where the logged one is always the epoch's weighted mean
        (Keras)."""
        train_loss = self.epoch_train_loss() if train_loss_from_steps else None
        return self.monitor.log_epoch(
            epoch,
            step=step,
            train_loss=metrics.train_loss if train_loss is None else train_loss,
            val_loss=metrics.val_loss,
            train_metrics=metrics.train or None,
            val_metrics=metrics.val or None,
        )

    # -- train start ---------------------------------------------------------------------------

    @property
    def train_start_checks(self) -> list[Check]:
        """The enabled checks that run on a copy of the model at train start (overfit-a-batch)."""
        if not self.options.train_start_checks:
            return []
        monitor = self.monitor
        checks = [c for c in monitor.checks if Signal.TRAIN_START in c.signals() and c.id not in monitor.disabled]
        return sorted(checks, key=lambda c: bool(type(c).explained_by))  # root causes first

    def train_start_steps(self) -> int:
        """The train-start checks' step budget: `train_start_steps` when given; else, where the
        trainer plans the run (`RunInfo.total_steps`), proportioned to it (a 3-epoch run is not
        charged like a 300-epoch one); else `Budget.steps`."""
        from mlcheck.preflight_context import Budget

        if self.options.train_start_steps is not None:
            return self.options.train_start_steps
        total = self.monitor.run.info.total_steps
        if not total:
            return Budget.steps
        return max(self.TRAIN_START_MIN_STEPS, min(Budget.steps, total // 2))

    def _train_start_net(self) -> StepTimeNet | None:
        """The train-start checks' shared net in measured step times; None where the user gave
        `overfit_steps` (those steps run, within `overfit_seconds`)."""
        if self.options.train_start_steps is not None:
            return None
        return StepTimeNet(steps=self.TRAIN_START_STEP_TIMES, floor=self.TRAIN_START_FLOOR_SECONDS)

    def run_train_start_checks(
        self, make_trainable: Callable[[], Trainable], *, step: int | None, epoch: int | None
    ) -> None:
        """Runs the train-start checks on the trainable `make_trainable()` builds around the first
        batch. They train only clones; the random state is restored afterwards, so the user's
        run computes exactly what it would have without mlcheck. Their findings are held until
        the first training batch has been observed, so that a root cause in the data (NaN
        inputs) is reported before the symptoms it explains (`Check.explained_by`)."""
        from mlcheck.sanity.context import Budget, PreflightContext

        checks = self.train_start_checks
        if not checks:
            return
        options = self.options
        try:
            trainable = make_trainable()
        except Exception as exc:
            if options.strict:
                raise
            for check in checks:
                self.monitor.switch_off(check, exc)
            return
        saved = trainable.rng_state()
        refused: list[Check] = []  # stopped by the model's own loss failing on the first batch
        loss_error: list[BaseException | None] = []  # what that loss raises, asked once
        unfed: list[tuple[Check, Exception]] = []  # the model refused the batch's inputs as they come
        uncopied: list[tuple[Check, Exception]] = []  # the adapter cannot copy the model (CloneRefused)
        unsplit: list[tuple[Check, BatchUnsplit]] = []  # the batch's inputs cannot be told apart (BatchUnsplit)
        net = self._train_start_net()
        try:
            for check in checks:
                seconds = options.train_start_seconds  # a fixed net: the time is taken from training
                ctx = PreflightContext(
                    trainable,
                    budget=Budget(steps=self.train_start_steps(), seconds=seconds, max_seconds=seconds, step_net=net),
                    info={"source": "live"},
                    interface="live",
                )
                try:
                    with warnings.catch_warnings():
                        # frameworks' own deprecation noise from a side computation on a copy
                        warnings.simplefilter("ignore", DeprecationWarning)
                        found = list(check.preflight(ctx) or ())
                except Exception as exc:
                    if options.strict:
                        raise
                    self._train_start_failed(check, exc, trainable, loss_error, refused, unfed, uncopied, unsplit)
                    continue
                for finding in found:
                    if finding.step is None:
                        finding = dataclasses.replace(finding, step=step, epoch=epoch)
                    self._held.append(finding)
            note = trainable.call_convention("forward", None) if unfed else None
            own_step = trainable.own_training_step() if refused else None
            self._held += _not_run(
                refused, loss_error, unfed, uncopied, step=step, epoch=epoch, note=note, own_step=own_step
            )
            if unsplit:
                exc = unsplit[0][1]
                self._held.append(
                    _train_start_skipped(
                        [check for check, _ in unsplit],
                        f"{exc.reason} (your training_step takes the batch as it comes: the run itself is "
                        "not affected)",
                        exc.hint,
                        step=step,
                        epoch=epoch,
                    )
                )
            self._note_loss(trainable)  # before the random state is restored: it may run a forward pass
        finally:
            trainable.set_rng_state(saved)

    def _train_start_failed(
        self,
        check: Check,
        exc: Exception,
        trainable: Trainable,
        loss_error: list[BaseException | None],
        refused: list[Check],
        unfed: list[tuple[Check, Exception]],
        uncopied: list[tuple[Check, Exception]],
        unsplit: list[tuple[Check, BatchUnsplit]],
    ) -> None:
        """Switches off a train-start check that raised: quietly, into `uncopied`, when the
        adapter cannot copy the model (`CloneRefused`); quietly, into `unsplit`, when the adapter
        cannot tell the batch's inputs apart (`BatchUnsplit`); quietly, into `refused`, when the
        model's own loss raises the same on the first batch (asked once, into `loss_error`);
        quietly too, into `unfed`, when the error rose inside the model called on the batch's
        inputs while the training step itself runs (its `training_step` prepares them: casts,
        concatenates); else as an internal error of the check."""
        if isinstance(exc, CloneRefused):
            self.monitor.disable(check.id, "the model cannot be copied")
            uncopied.append((check, exc))
            return
        if isinstance(exc, BatchUnsplit):
            self.monitor.disable(check.id, "the batch's inputs cannot be told apart")
            unsplit.append((check, exc))
            return
        if not loss_error:
            loss_error.append(_loss_error(trainable))
        if _same_error(exc, loss_error[0]):
            self.monitor.disable(check.id, f"the model's loss raised {type(exc).__name__}")
            refused.append(check)
        elif loss_error[0] is None and _raised_in_model(exc):
            self.monitor.disable(check.id, f"the model refused the batch's inputs: {type(exc).__name__}")
            unfed.append((check, exc))
        else:
            self.monitor.switch_off(check, exc)

    def skip_train_start_checks(
        self, reason: str, hint: str, *, step: int | None, epoch: int | None, severity: Severity = Severity.INFO
    ) -> None:
        """The train-start checks cannot run on this model (`reason`, and `hint`: how to check it
        another way): one finding says so, under `overfit-batch` (the check users look for
        when it is on, else the first of them), naming the others not run. INFO unless the
        reason is itself a mistake (an epoch of empty batches: WARNING). Held like their
        findings, so it comes after the first batch's."""
        checks = self.train_start_checks
        if not checks:
            return
        also = ", which also run at train start, did not run either"
        finding = _train_start_skipped(checks, reason, hint, step=step, epoch=epoch, also=also)
        self._held.append(dataclasses.replace(finding, severity=severity))

    def release_held(self) -> None:
        """Reports the held train-start findings (after the first training batch)."""
        if not self._held:  # called on every step and batch: nothing to allocate once released
            return
        held, self._held = self._held, []
        for finding in held:
            self.monitor.report(finding)

    def _note_loss(self, trainable: Trainable) -> None:
        """Names the loss in `RunInfo.loss` from the train-start trainable where the adapter could
        not, the class weights it found by the loss's value (`RunInfo.class_weights`, where none
        were read), the rows a summed loss adds up (`RunInfo.loss_summed_over`) and whether the
        loss matched no common one (`RunInfo.loss_unmatched`): its `loss_config()`
        is cached by the checks that just ran (at most a forward pass of the first batch
        otherwise), once per run."""
        info = self.monitor.run.info
        try:
            config = trainable.loss_config()
        except Exception:  # a loss that cannot be named leaves it unknown
            logger.debug("mlcheck: could not name the loss", exc_info=True)
            return
        if info.loss is None:
            info.loss = config.loss
        if info.loss_summed_over is None:
            # the level a summed loss sits at is that many times a per-sample one (`chance_level`)
            info.loss_summed_over = config.summed_over
        if info.class_weights is None and config.class_weights is not None:
            # weights the adapter found by the loss's value (a buffer passed to F.cross_entropy)
            info.class_weights = dict(enumerate(config.class_weights))
        if info.target_is_input is None and config.target_is_input:
            # an autoencoder's batch of inputs alone: the inputs are the targets (their entropy
            # is a binary cross-entropy's floor, `FirstPassLabels.soft_floor`)
            info.target_is_input = True
        if info.loss_unmatched is None and config.unmatched:
            # another objective than the common losses: its level is not a validation loss's
            info.loss_unmatched = True

    # -- layers (Signal.LAYER_STATS) -------------------------------------------------------------

    #: Re-runs of a batch whose loss was non-finite before giving up on locating the origin.
    ORIGIN_ATTEMPTS = 3
    #: The layer checks' patience where no check states one (`mlcheck.checks.layers.PATIENCE`).
    LAYER_PATIENCE = 5
    #: The shortest interval between sampled layer steps a planned run is given:
    #: TheDeepChecker's own (every 10 steps, patience 5), 2.5 times the default's cost a step.
    MIN_LAYER_EVERY = 10

    def plan_layer_steps(self) -> int:
        """Sets and returns `layer_every`, the optimizer steps between the sampled layer steps:
        `every_n_steps`, or fewer where `every_n_steps` is at its default and the planned run
        (`RunInfo.total_steps`) is too short for a symptom seen from its start to hold on
        `patience` sampled steps within its first half. At the default 25 and patience 5 that
        holds from 200 steps on (a verdict by step 100); a shorter run is sampled every
        total / (2 x (patience - 1)) steps, never more often than every `MIN_LAYER_EVERY`, so
        that a 2-epoch run of 90 steps is sampled every 11 (9 sampled steps, a verdict by step
        44) instead of getting 4 sampled steps and no verdict. Call it once the planned steps
        are known; an unknown length, or an `every_n_steps` the user set, is kept."""
        every = self.options.every_n_steps
        total = self.monitor.run.info.total_steps
        if total and every == DEFAULT_EVERY_N_STEPS:
            patience = max(
                (getattr(c, "patience", 0) for c in self.monitor.checks if Signal.LAYER_STATS in c.signals()),
                default=0,
            )
            window = 2 * ((patience or self.LAYER_PATIENCE) - 1)  # intervals in a patience window, twice
            every = min(every, max(self.MIN_LAYER_EVERY, total // window))
        self.layer_every = every
        return every

    def layer_step_due(self, step: int) -> bool:
        """True when the adapter records layer statistics on this optimizer step: every
        `layer_every` (`plan_layer_steps`), while a check consumes them."""
        return self.layers_active and step % self.layer_every == 0

    def watch_loss(self, on_cpu: bool) -> bool:
        """True when the adapter checks each step's loss for NaN/Inf at once (to re-run the batch
        while the weights that produced it still exist): `nonfinite_origin`, by default only where
        the loss lives on the CPU, while the origin is still unknown."""
        wanted = self.options.nonfinite_origin
        if wanted is False or (wanted is None and not on_cpu) or not self.layers_active:
            return False
        return self._origin_attempts < self.ORIGIN_ATTEMPTS

    def observe_layers(self, layers: LayerObservation) -> list[Finding]:
        """Hands one sampled step's layer statistics to the checks that consume them."""
        return self.monitor.log_layers(layers)

    def observe_nonfinite_loss(
        self, step: int, epoch: int | None, locate: Callable[[], NonfiniteOrigin | None]
    ) -> list[Finding]:
        """A step's loss is non-finite: `locate()` re-runs its batch on a copy of the model and
        names the module that produced it; the finding goes through the layer checks."""
        self._origin_attempts += 1
        origin = self.guard("nonfinite origin", locate)
        if origin is None:
            return []
        self._origin_attempts = self.ORIGIN_ATTEMPTS  # found: once per run
        return self.monitor.log_layers(LayerObservation(step=step, epoch=epoch, layers=(), origin=origin))

    # -- the adapters' own observations --------------------------------------------------------

    def guard(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Runs one of an adapter's observations (`what`: "weights", "lr", "batches"); a failure
        switches that observation off for the run, reported once, instead of stopping training
        (unless `strict`). Returns None when it failed or is off."""
        if what in self.broken:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            if self.options.strict:
                raise
            self.broken.add(what)
            text = (
                f"mlcheck: observing {what} failed ({type(exc).__name__}: {exc}) and is "
                "switched off for this run; training is unaffected. Pass strict=True to raise."
            )
            internal_notice(text, exc, stacklevel=3)
            return None

    # -- control -------------------------------------------------------------------------------

    def sync(self, disabled: Iterable[str] = ()) -> None:
        """Applies check ids switched off elsewhere (rank zero, under distributed training) and
        settles whether batches are observed at all. Call it only at points every rank reaches
        together: under DDP the answer drives collectives."""
        monitor = self.monitor
        for check_id in disabled:
            if check_id not in monitor.disabled:
                monitor.disable(check_id)
        if self._synced == monitor.disabled:
            return  # the same checks on as at the last sync (each epoch end): the same answers
        self._synced = set(monitor.disabled)

        def wanted(signal: Signal) -> bool:
            """Whether a check that is on declares `signal`."""
            return any(signal in c.signals() and c.id not in monitor.disabled for c in monitor.checks)

        self.data_active = wanted(Signal.SAMPLED_BATCHES)
        self.layers_active = wanted(Signal.LAYER_STATS)
        self.samples_active = wanted(Signal.SAMPLE_OUTPUTS)
        self.val_losses_active = wanted(Signal.VAL_LOSSES)

    @property
    def should_stop(self) -> bool:
        """True once a finding at or above `stop_on` was raised; the first time it is, the
        finding that stopped the run is logged."""
        monitor = self.monitor
        if not monitor.should_stop:
            return False
        if not self._stop_logged and monitor.stop_reason is not None:
            self._stop_logged = True
            logger.warning(
                "mlcheck: stopping training (stop_on=%r) because of %s",
                self.options.stop_on,
                monitor.stop_reason.format(),
            )
        return True

    def close(self) -> list[Finding]:
        """Ends the run: the end-of-run checks, then a one-line summary (logged, and as text in
        TensorBoard) of what was found and where to read it; a clean run says it was checked
        (on stderr when nothing configured logging)."""
        monitor = self.monitor
        try:
            self.release_held()
            out = monitor.close_checks()
            if not self._speaks:
                return out
            text = self.summary()
            worst = max((f.severity for f in monitor.findings), default=None)
            level = logging.WARNING if worst is not None and worst >= Severity.WARNING else logging.INFO
            logger.log(level, text)
            if level < logging.WARNING and not logger.hasHandlers():
                # logging is not configured, so Python drops INFO records (it prints WARNING and
                # above by itself): without this line a clean run would end with no word from mlcheck
                print(text, file=sys.stderr)
            monitor.summarise(text)
            if self.artefact_dir is not None and monitor.run.samples:
                self.guard("samples.csv", write_run_csv, monitor, self.artefact_dir)
        finally:  # the files are closed even when a user's warnings filter raises a finding
            monitor.close()
        return out

    def summary(self) -> str:
        """One line: how much was checked, what was found, where the details are."""
        monitor, run = self.monitor, self.monitor.run
        counted = ((run.train_loss.total, "step"), (self.passes["train"], "epoch"), (len(monitor.checks), "check"))
        checked = ", ".join(_count(n, what) for n, what in counted)
        if monitor.disabled:
            checked += f" ({len(monitor.disabled)} switched off: {', '.join(sorted(monitor.disabled))})"
        jsonl = self._findings_file()
        where = f"; details in {jsonl} and TensorBoard" if jsonl is not None else ""
        earlier, new = self.resumed_findings, len(monitor.findings) - self.resumed_findings
        if earlier and self.resumed_file is not None and self.resumed_file != jsonl:
            # resumed into another folder (a new Trainer logs to a new `version_N`): the findings
            # raised before the checkpoint are in the first fit's file, not this one
            before = f"{_count(earlier, 'finding')} raised before the resume in {self.resumed_file}"
            where = f"; details in {jsonl} and TensorBoard, and for the {before}" if new else f"; {before}"
        config = f"; configured by {self.config_source}" if self.config_source else ""
        if not monitor.checks:  # checks=[]: "no problems found" would read as a clean bill
            return f"mlcheck: {checked}: no check ran (checks=[]), so nothing was judged{config}."
        if not monitor.findings and not run.train_loss.total and not self.passes["train"]:
            # fit(epochs=0), Trainer(max_epochs=0), a fit stopped before its first step: "no
            # problems found" would read as a clean bill for a run nothing judged
            return f"mlcheck: checked {checked}: no training step was seen, so nothing was judged{config}."
        if not monitor.findings:
            return f"mlcheck: checked {checked}: no problems found{self._too_short()}{config}."
        counts = {s: sum(f.severity is s for f in monitor.findings) for s in Severity}
        found = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items(), key=lambda x: -x[0].rank) if n)
        ids = ", ".join(dict.fromkeys(f.check for f in monitor.findings))
        findings = _count(len(monitor.findings), "finding")
        return f"mlcheck: checked {checked}: {findings} ({found}: {ids}){where}{config}."

    def _too_short(self) -> str:
        """For a clean run shorter than some checks need before they can judge at all (a
        `fast_dev_run`, a fit of a few batches): which checks, and what each needs, read from
        their own settings: `min_steps`; a layer check's `patience` sampled steps (at
        `layer_every`); another check's `patience` epochs. "" when every check could judge."""
        steps, epochs = self.monitor.run.train_loss.total, self.passes["train"]
        needs: dict[str, list[str]] = {}
        for check in self.monitor.checks:
            least, patience = getattr(check, "min_steps", None), getattr(check, "patience", None)
            need = None
            if isinstance(least, int) and least > steps:
                need = _count(least, "step")
            elif isinstance(patience, int) and Signal.LAYER_STATS in check.signals():
                least = (patience - 1) * self.layer_every + 1
                need = f"{patience} sampled steps ({least} at every {self.layer_every})" if least > steps else None
            elif isinstance(patience, int) and patience > epochs:
                need = _count(patience, "epoch")
            if need is not None:
                needs.setdefault(need, []).append(check.id)
        if not needs:
            return ""
        short = sum(len(ids) for ids in needs.values())
        listed = "; ".join(f"{', '.join(ids)} {need}" for need, ids in needs.items())
        cut = f" ({self.cut_short_by})" if self.cut_short_by else ""
        return (
            f", but this run{cut} was too short for {short} of the {len(self.monitor.checks)} checks to judge "
            f"anything ({listed}): train longer for their verdict"
        )

    def _findings_file(self) -> Path | None:
        """The findings file: the monitor's own, or one a callback gave it (Keras: `log_dir`)."""
        return next((s.path for s in self.monitor.sinks if isinstance(s, JsonlSink)), None)

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        info = self.monitor.run.info
        jsonl = self._findings_file()
        return {
            "monitor": self.monitor.state_dict(),
            "findings_file": str(jsonl) if jsonl is not None else None,
            "passes": dict(self.passes),
            "count": dict(self.count),
            "info": {"task": info.task, "num_classes": info.num_classes, "output_width": self.output_width},
        }

    def load_state_dict(self, state: Mapping[str, Any], *, checks_too: bool = True) -> None:
        """Restores a checkpoint's state; `checks_too=False` (ranks other than zero) restores
        only which checks were switched off."""
        if checks_too:
            self.monitor.load_state_dict(state["monitor"])
            self.resumed_findings = len(self.monitor.findings)
            saved_in = state.get("findings_file")  # None from a checkpoint of an older mlcheck
            self.resumed_file = Path(saved_in) if saved_in else None
        self.sync(state["monitor"].get("disabled", []))
        self.passes.update(state.get("passes", {}))
        self.count.update(state.get("count", {}))
        self.skip_below = {"train": 0, "val": 0}
        info = state.get("info", {})
        run_info = self.monitor.run.info
        run_info.task = run_info.task or info.get("task")
        run_info.num_classes = run_info.num_classes or info.get("num_classes")
        self.output_width = self.output_width or info.get("output_width")
        self.task_inferred = run_info.task is not None


class LiveCallback:
    """What every callback shows its user, read from its `LiveRun` (`live`) and `HookTimer`
    (`timer`): a base class of the framework callbacks, beside the framework's own."""

    live: LiveRun | None
    timer: HookTimer

    @property
    def monitor(self) -> Monitor | None:
        return self.live.monitor if self.live is not None else None

    @property
    def findings(self) -> list[Finding]:
        """Findings of the last (or current) run, in the order raised (empty on ranks other
        than zero)."""
        return list(self.live.monitor.findings) if self.live is not None else []

    @property
    def timings(self) -> dict[str, float] | None:
        """Seconds spent per hook in the last run (see benchmarks/); None when not timed."""
        return self.timer.table if self.timer.enabled else None

    @property
    def resolved_log_dir(self) -> Path | None:
        """Where the run's TensorBoard events and findings.jsonl go (None before a run or when off)."""
        live = self.live
        if live is None:
            return None
        if live.monitor.log_dir is not None:
            return live.monitor.log_dir
        # an adapter that brings its own sinks (Keras: train/ and validation/ sub-runs) gives
        # the Monitor no log_dir; its folder is the run's artefact folder (a rank that writes
        # nothing has no sinks: None there, as before)
        if live.artefact_dir is None or not live.monitor.sinks:
            return None
        return Path(live.artefact_dir)

    def _warn_unmatched_allow(self, allow: Sequence[str], named: Iterable[tuple[str, Any]], separator: str) -> None:
        """At fit start: one warning for the names of `nonfinite_allow` (`allow`) that match none
        of the model's (path, module or layer) pairs `named`: a typo would allow nothing."""
        if allow:
            named = list(named)
            paths, kinds = [p for p, _ in named], {type(m).__name__ for _, m in named}
            text = opt.unmatched_module_names("nonfinite_allow", allow, paths, kinds, separator)
            if text:
                internal_notice(text)


def _count(n: int, noun: str) -> str:
    """ "1 step", "3 steps"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _loss_error(trainable: Trainable) -> BaseException | None:
    """What the model's own loss raises on the first training batch, on the train-start copy
    (None: it runs). A train-start check that fails with the same error was stopped by the
    model, not by a fault of its own."""
    try:
        batches = trainable.batches("train", 1)
        if batches:
            trainable.loss(batches[0])
    except Exception as exc:
        return exc
    return None


def _same_error(exc: BaseException, loss_error: BaseException | None) -> bool:
    return loss_error is not None and type(exc) is type(loss_error) and str(exc) == str(loss_error)


#: Modules whose frames mean "inside a model's call": torch's and Keras' layer call machinery.
_MODEL_CALL_MODULES = ("torch.nn.modules.module", "keras.src.layers.layer", "keras.src.ops.operation")


def _raised_in_model(exc: BaseException) -> bool:
    """Whether `exc` rose inside a model (or layer) that mlcheck's code called: a frame of the
    frameworks' call machinery after the last frame of mlcheck's own. An error of mlcheck's own
    code (outside any model call) stays an internal error."""
    names = []
    tb = exc.__traceback__
    while tb is not None:
        names.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    last_own = max((i for i, name in enumerate(names) if name.split(".")[0] == "mlcheck"), default=-1)
    return any(name in _MODEL_CALL_MODULES for name in names[last_own + 1 :])


def _train_start_skipped(
    checks: Sequence[Check],
    reason: str,
    hint: str,
    *,
    step: int | None,
    epoch: int | None,
    also: str = " did not run either",
) -> Finding:
    """One INFO finding for train-start checks that did not run (`reason`, and `hint`: how to
    run them): under `overfit-batch` (the check users look for when it is on, else the first of
    them), naming the others, followed by `also`."""
    from mlcheck.checks.preflight.harness import skipped
    from mlcheck.checks.preflight.overfit_batch import OverfitBatch

    lead = next((c for c in checks if isinstance(c, OverfitBatch)), checks[0])
    others = ", ".join(c.id for c in checks if c is not lead)
    message = f"{lead.id} did not run: {reason}" + (f"; {others}{also}" if others else "")
    return dataclasses.replace(skipped(lead, message, hint), step=step, epoch=epoch)


def _error_text(error: BaseException | None) -> str:
    """ "TypeError: the message", on one line."""
    return " ".join(f"{type(error).__name__}: {error}".split())


def _inputs_refused(
    unfed: Sequence[tuple[Check, Exception]], *, step: int | None, epoch: int | None, note: str | None = None
) -> Finding:
    """The INFO finding for train-start checks that could not run because the model refused
    the first batch's inputs as the loader yields them, while its training step runs (a
    `training_step` that casts or reassembles the batch before calling the model). `note`: the
    adapter's word on how it called the model (`Trainable.call_convention`), which leads the hint."""
    return _train_start_skipped(
        [check for check, _ in unfed],
        f"the model raised {_error_text(unfed[0][1])} when given the first training batch's inputs as "
        "the loader yields them (on a copy of the model); the training step, which may prepare them "
        "first, runs",
        (f"{note} " if note else "")
        + "To run these checks, let the model take the batch's inputs as the loader yields them (move "
        "the casting or reassembling from training_step into forward or the dataset), or check the "
        "model before training with `mlcheck sanity` and a `mlcheck_target()` that gives them "
        "ready (docs/sanity.md).",
        step=step,
        epoch=epoch,
    )


def _not_run(
    refused: Sequence[Check],
    loss_error: Sequence[BaseException | None],
    unfed: Sequence[tuple[Check, Exception]],
    uncopied: Sequence[tuple[Check, Exception]],
    *,
    step: int | None,
    epoch: int | None,
    note: str | None = None,
    own_step: str | None = None,
) -> list[Finding]:
    """The INFO findings for train-start checks that could not run, one per reason."""
    notes = []
    if refused:
        notes.append(_loss_failed(refused, loss_error[0], step=step, epoch=epoch, own_step=own_step))
    if unfed:
        notes.append(_inputs_refused(unfed, step=step, epoch=epoch, note=note))
    if uncopied:
        notes.append(_not_copied(uncopied, step=step, epoch=epoch))
    return notes


def _not_copied(uncopied: Sequence[tuple[Check, Exception]], *, step: int | None, epoch: int | None) -> Finding:
    """The INFO finding for train-start checks that could not run because the adapter cannot copy
    the model (`CloneRefused`: a subclassed Keras model its config does not rebuild); they only
    ever train a copy, so the run itself is untouched and nothing is wrong with it."""
    exc = uncopied[0][1]
    hint = getattr(exc, "hint", None)
    return _train_start_skipped(
        [check for check, _ in uncopied],
        f"the model could not be copied to train on the side: {exc}" if hint is None else str(exc),
        hint
        or "To run these checks, make the model rebuildable from its config: give __init__ **kwargs passed "
        "on to super().__init__(**kwargs) and a get_config() that returns the constructor's own "
        "arguments (Keras' guide to subclassed models), or use a Sequential or functional model.",
        step=step,
        epoch=epoch,
    )


def _loss_failed(
    refused: Sequence[Check],
    error: BaseException | None,
    *,
    step: int | None,
    epoch: int | None,
    own_step: str | None = None,
) -> Finding:
    """The INFO finding for train-start checks that could not run because the model's loss
    raises on the first batch (labels out of range, NaN fed to a loss that refuses it): the
    training step meets the same error, so it is no fault of mlcheck's to warn about. Where the
    model trains with a step of its own (`own_step`, `Trainable.own_training_step`), that step
    need not use the loss these checks compute (a Keras `train_step` with a loss of its own and
    `compile()` given none): the finding says so, not that the run will fail."""
    if own_step is not None:
        return _train_start_skipped(
            refused,
            f"the model trains with its own step ({own_step}), and the compiled loss this check computes "
            f"raised {_error_text(error)} on the first training batch (on a copy of the model)",
            "If your train_step computes its loss itself, the run is not affected by this. To run these "
            "checks, give compile() that loss too (model.compile(optimizer=..., loss=...)): they train "
            "and judge a copy of the model through the compiled loss.",
            step=step,
            epoch=epoch,
            also=" need that loss too and did not run either",
        )
    return _train_start_skipped(
        refused,
        f"the model's loss raised {_error_text(error)} on the first training batch (on a copy of the "
        "model), so the training step will very likely raise it too",
        "Fix what makes the loss fail on that batch (the label range or non-finite inputs: see the "
        "ERROR findings at this step, if any); the train-start checks run again on the next fit.",
        step=step,
        epoch=epoch,
    )
