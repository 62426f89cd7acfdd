"""Turning a run's logged curves into the observations a `Monitor` takes, and replaying them.

Step-level training loss (with the learning rate aligned to it by forward fill) goes in through
the vectorised `Monitor.log_steps`, interleaved in step order with one `Monitor.log_epoch` per
epoch, so the checks run at the same points as they would have during training.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlcheck.analyze.csvlogs import ULTRALYTICS_FORMAT
from mlcheck.analyze.events import KERAS_SUBRUNS, Scalars
from mlcheck.analyze.hindsight import contradicted_demoted, demoted
from mlcheck.analyze.tags import (
    ERROR_LOSSES,
    QUALIFIED_PRIORITY,
    Role,
    classify,
    error_loss_role,
    test_as_validation_role,
)
from mlcheck.analyze.trainer_state import EPOCH_TAG as TRAINER_EPOCH_TAG
from mlcheck.analyze.trainer_state import FORMATS as TRAINER_FORMATS
from mlcheck.checks.base import Check
from mlcheck.findings import Finding, Severity
from mlcheck.monitor import Monitor
from mlcheck.run import RunInfo
from mlcheck.task import from_metric_names, loss_from_tag

#: Log formats whose x is the epoch (or the row), never the step
EPOCH_ROW_FORMATS = (
    "keras-csv",
    "keras-history",
    "json-epoch-records",
    "test-tube-csv",
    "ultralytics-csv",
    "fastai-csv",
)

# a curve logged at most this many times per epoch (plus a little) counts as per-epoch: Lightning
# logs `train_loss` once per epoch when on_epoch=True, and many times when on_step=True
_PER_EPOCH_MAX = 2


#: The tags the Hugging Face `Trainer`'s `TensorBoardCallback` writes at every logging step
#: (`transformers.integrations.TensorBoardCallback`: the logs, rewritten with a `train/` prefix).
HF_TRAINER_TAGS = frozenset({"train/loss", "train/learning_rate", "train/epoch"})
#: Tags the same callback writes whether or not a logging step came (a run shorter than
#: `logging_steps`, default 500, logs no `train/loss`): its end-of-run summary and the timings of
#: each evaluation, beside `train/epoch`
HF_TRAINER_SUMMARY_TAGS = frozenset(
    {"train/train_runtime", "train/train_loss", "train/total_flos", "eval/runtime", "eval/samples_per_second"}
)
#: `RunLog.writer` of event files the Hugging Face Trainer wrote (`is_hf_trainer_events`)
HF_TRAINER_WRITER = "hf-trainer"


def is_hf_trainer_events(tags: Collection[str]) -> bool:
    """Whether a run's scalar tags are those of the Hugging Face Trainer's `TensorBoardCallback`:
    its logging steps' three tags, or `train/epoch` beside one of its summary or evaluation tags."""
    keys = set(tags)
    return HF_TRAINER_TAGS <= keys or ("train/epoch" in keys and bool(keys & HF_TRAINER_SUMMARY_TAGS))


@dataclass
class RunLog:
    """The scalar curves of one run, as read from its files.

    Attributes:
        name: the run's name (its folder relative to the analysed path, or the file name).
        path: where it was read from.
        format: "tensorboard", "keras-csv", "keras-history", "test-tube-csv" (Lightning 0.x's
            `TestTubeLogger`: one row per log call, no step, read as a Keras CSV) or
            "lightning-csv".
        scalars: curves by tag (or CSV column); x is the step, or the epoch for Keras CSVs.
        columns: a CSV's header, all of it (some columns may hold no numbers).
        writer: what wrote a TensorBoard log, where its files tell: "mlcheck" (every event
            file is mlcheck's own), "keras" (Keras' `TensorBoard` callback: other event files
            in `train/` or `validation/` sub-runs), "hf-trainer" (the Hugging Face Trainer's
            tags, `is_hf_trainer_events`); None otherwise.
        info: lines worth knowing about how it was read (a Keras CSV that several fits
            appended to, read as one run per fit).
        others: a TensorBoard log's summaries that are not scalars, counted by kind
            ("images", "hparams", ...).
        started: when the fit began (Unix seconds: its first event file's first event), where
            one folder of event files was read as several fits; None otherwise.
        pretrained: whether the run started from trained weights, where the files of the tool
            that wrote it say (`RunInfo.pretrained`; Ultralytics' `args.yaml`); None elsewhere.
        fit: "fit 2 of 3" where one file or folder held several fits, read as one run each; None
            otherwise.
        augmented: whether the training inputs were augmented far harder than validation's, where
            the settings of the tool that wrote it say (`RunInfo.augmented_train`; Ultralytics'
            `mosaic:` and `close_mosaic:`); None elsewhere.
    """

    name: str
    path: Path
    format: str
    scalars: dict[str, Scalars]
    columns: list[str] | None = None
    writer: str | None = None
    info: list[str] = field(default_factory=list)
    others: dict[str, int] = field(default_factory=dict)
    started: float | None = None
    pretrained: bool | None = None
    fit: str | None = None
    augmented: bool | None = None

    @property
    def from_hf_trainer(self) -> bool:
        """Whether a Hugging Face Trainer wrote it (its trainer_state.json, LLaMA-Factory's log of
        one, or its TensorBoard tags): rows are evaluations, the loss logged every `logging_steps`."""
        return self.format in TRAINER_FORMATS or self.writer == HF_TRAINER_WRITER

    @property
    def where(self) -> str:
        """Its path as a note names it: with "(fit 2 of 3)" where one file or folder held several fits,
        whose notes would otherwise read alike."""
        return str(self.path) if self.fit is None else f"{self.path} ({self.fit})"


@dataclass
class EpochRow:
    epoch: int
    step: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    train_metrics: dict[str, float] = field(default_factory=dict)
    val_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Curves:
    """What a run's log says, in the Monitor's terms.

    Attributes:
        steps / train_loss / lr: the step stream (lr aligned to it by forward fill), or None.
        epochs: one row per epoch, in order.
        info: facts for end-of-run checks (total steps, epochs, task).
        used: the tag used for each role, e.g. {"train_loss": "train_loss_step"}.
        by_step: the log names no epoch (a metrics.csv with a `step` column and no `epoch`, an
            event file with no epoch tag whose curves are logged at steps): `epochs` are its
            validation points in order, each known by its step alone.
        step_epochs: for a `by_step` run, the fractional epoch at each logged step where the log
            holds it (a Hugging Face Trainer's `epoch`, tag `train/epoch`), else None.
        steps_are_epochs: the log holds no step at all (every x is the epoch: a Keras
            `CSVLogger` file, Keras' `epoch_loss` event tags): each row's step was set to its epoch
            for the replay, and the findings it gives name the epoch alone (their `step` None).
    """

    steps: np.ndarray | None
    train_loss: np.ndarray | None
    lr: np.ndarray | None
    epochs: list[EpochRow]
    info: RunInfo
    used: dict[str, str]
    by_step: bool = False
    step_epochs: Scalars | None = None
    validations: int | None = None
    steps_are_epochs: bool = False
    #: validation losses logged at step 0 before the fit trained (`trainer.validate()` before `fit`)
    validated_before_fit: int = 0

    @property
    def validations_per_epoch_dropped(self) -> bool:
        """Whether the log holds more validation losses than epochs that have one (Lightning's
        `val_check_interval=0.25`: four an epoch), of which each epoch's last is judged."""
        with_val = sum(r.val_loss is not None for r in self.epochs)
        return not self.by_step and self.validations is not None and self.validations > with_val > 0

    @property
    def has_loss(self) -> bool:
        return self.train_loss is not None or any(
            r.train_loss is not None or r.val_loss is not None for r in self.epochs
        )


def build_curves(log: RunLog, mapping: Mapping[str, str] | None = None) -> Curves:
    """Classifies the run's tags (see `mlcheck.analyze.tags`) and lines their curves up."""
    roles = _single_output_losses({tag: classify(tag, mapping) for tag in log.scalars})
    axes = _Axes.of(log, _test_as_validation(log, _error_losses(roles)))
    resolved = _without_summaries(log, axes.roles, {tag: axes.resolve(tag, role) for tag, role in axes.roles.items()})
    resolved = _qualified_losses(resolved)

    used: dict[str, str] = {}
    stream_tag = _pick(log, resolved, "train_loss")
    stream = log.scalars[stream_tag] if stream_tag else None
    if stream_tag:
        used["train_loss"] = stream_tag
    if stream is not None and len(stream):
        axes.last_step = int(stream.steps[-1])

    wanted = _epoch_curves(log, resolved, used)
    rows = _epoch_rows(axes, wanted)
    ordered = _without_validate_after_fit(rows, stream)
    # `trainer.validate()` after `fit`: its loss is no validation of the run's (nor a second one in an epoch)
    validated_after_fit = sum(r.val_loss is not None for r in rows[len(ordered) :])
    steps_are_epochs = _fill_missing_steps(ordered, stream)

    lr_tag = _pick(log, resolved, "lr")
    lr_steps = lr_values = None
    if lr_tag:
        used["lr"] = lr_tag
        lr_steps, lr_values = _lr_on_steps(axes, log.scalars[lr_tag], ordered, stream)

    steps, loss, lr = _step_stream(stream, lr_steps, lr_values)
    info = _run_info(steps, ordered, lr)
    # the loss by its tags' names ("bce_loss"), when those that name one all name the same
    named = {loss_from_tag(used.get(role)) for role in ("train_loss", "epoch_train_loss", "val_loss")} - {None}
    info.loss = named.pop() if len(named) == 1 else None
    if log.format in TRAINER_FORMATS or HF_TRAINER_TAGS <= log.scalars.keys() or _resumed(steps, ordered):
        info.pretrained = True  # from trained weights: the loss starts near its floor (RunInfo.pretrained)
    elif log.pretrained is not None:
        info.pretrained = log.pretrained  # as its tool's own settings say (a YOLO run's args.yaml)
    # YOLO trains on mosaic-augmented images and validates on clean ones (RunInfo.augmented_train),
    # unless its settings turned the mosaics off (`mosaic: 0`, `close_mosaic` = `epochs`)
    yolo = log.format == ULTRALYTICS_FORMAT
    info.augmented_train = (log.augmented is not False) if yolo else None
    # a Trainer state's rows are its evaluations, which it may run many times an epoch (or once in
    # several): told by their steps, not as epochs; so are the ranks of a log without epochs
    by_step = (log.format in TRAINER_FORMATS or (axes.epoch_curve is None and _ranked(log, axes, wanted))) and bool(
        ordered
    )
    step_epochs = None
    if lr_steps is not None and not by_step and not lr_tag.startswith(LR_MONITOR_PREFIX):
        info.lr_logged_every = _epoch_rate_interval(lr_steps, lr_values, ordered)
    if by_step:
        info.max_epochs = None  # the rows' count is no epoch count
        step_epochs = _fractional_epochs(log.scalars.get(TRAINER_EPOCH_TAG))
    validations = None
    validated_before_fit = 0
    if axes.epoch_curve is not None and "val_loss" in used:
        val = log.scalars[used["val_loss"]]
        finite = np.isfinite(val.values)
        validations = int(finite.sum()) - validated_after_fit
        # `trainer.validate()` before `fit`: a loss at step 0, of the untrained model, beside the
        # epochs' own (a fit validates after a training step; one more than the epochs hold)
        if validations > sum(r.val_loss is not None for r in ordered) and axes.last_step:
            validated_before_fit = int((finite & (val.steps == 0)).sum())
            validations -= validated_before_fit
    return Curves(
        steps,
        loss,
        lr,
        ordered,
        info,
        used,
        by_step,
        step_epochs,
        validations,
        steps_are_epochs,
        validated_before_fit,
    )


def _fractional_epochs(curve: Scalars | None) -> Scalars | None:
    """The Trainer's epoch against the step (`train/epoch`: 0.5, 1.0, 2.4, ...) where it is finite
    and never falls as the step grows (one run's count); None otherwise: an epoch that falls back
    (two runs' entries in one history) would name the wrong one."""
    if curve is None or not len(curve) or not bool(np.all(np.isfinite(curve.values))):
        return None
    return curve if bool(np.all(np.diff(curve.values) >= 0)) else None


def _ranked(log: RunLog, axes: _Axes, wanted: list[tuple[str, str | None, str]]) -> bool:
    """Whether the rows' epochs are only the ranks of their steps (`_epoch_rows` without an epoch
    curve): the k-th validation, which is epoch k only where the run validated once an epoch from
    epoch 0. A `metrics.csv` with no `epoch` column, or an event file with no epoch tag from a
    hand-written loop (a `SummaryWriter` loop that validates every 25 steps), says no such thing;
    Lightning's `TensorBoardLogger` (its `hp_metric` tag) validates once an epoch by default."""
    if log.format == "lightning-csv":
        return True
    if log.format != "tensorboard" or "hp_metric" in log.scalars:
        return False
    return any(not axes.x_is_epoch(log.scalars[t]) for _, _, t in wanted)


#: A log whose first step (or epoch) lies further from 0 than this many logging intervals, and
#: beyond `RESUMED_SHARE` of the span it covers, continues a run from a checkpoint (Lightning's
#: `fit(ckpt_path=...)` writes its new version's steps on from the checkpoint's; Keras'
#: `initial_epoch`): its first loss is a trained model's. A logger that skips a few warm-up
#: steps stays well inside both bounds.
RESUMED_INTERVALS = 10
RESUMED_SHARE = 0.1


def _resumed(steps: np.ndarray | None, ordered: list[EpochRow]) -> bool:
    """The log starts far from step (or epoch) 0: a run resumed from a checkpoint."""
    for axis in (steps, np.array([r.epoch for r in ordered], dtype=np.int64)):
        if axis is None or len(axis) < 3:
            continue
        first, span = int(axis[0]), int(axis[-1] - axis[0])
        gap = float(np.median(np.diff(axis)))
        return gap > 0 and first > RESUMED_INTERVALS * gap and first > RESUMED_SHARE * span
    return False


@dataclass
class _Axes:
    """How a run's curves are indexed: by step or by epoch, and where the epochs fall."""

    log: RunLog
    roles: dict[str, Role]
    by_epoch_x: bool  # every x is an epoch (Keras CSVs)
    epoch_curve: Scalars | None  # the logged epoch number against the step, if any
    n_epochs: int | None
    # steps where curves known to be per epoch were logged (Lightning logs every epoch-level
    # value at the epoch's last step)
    epoch_steps: np.ndarray | None
    last_step: int | None = None  # the last step of the training-loss stream, once known

    @classmethod
    def of(cls, log: RunLog, roles: dict[str, Role]) -> _Axes:
        epoch_tag = _pick(log, roles, "epoch")
        epoch_curve = log.scalars[epoch_tag] if epoch_tag else None
        known = [
            log.scalars[t].steps
            for t, r in roles.items()
            if r.role == "val_loss" or (r.level == "epoch" and r.role != "ignore")
        ]
        return cls(
            log=log,
            roles=roles,
            by_epoch_x=log.format in EPOCH_ROW_FORMATS,
            epoch_curve=epoch_curve,
            n_epochs=_epoch_count(log, roles, epoch_curve),
            epoch_steps=np.unique(np.concatenate(known)) if known else None,
        )

    def per_epoch(self, tag: str, role: Role) -> bool:
        """Whether the curve under `tag` holds one point per epoch."""
        if self.by_epoch_x or role.level == "epoch":
            return True
        if role.level == "step" or (self.log.format in TRAINER_FORMATS and tag.startswith("train/")):
            # a Trainer logs its training values every `logging_steps`, not once an epoch
            return False
        curve = self.log.scalars[tag]
        if self.epoch_curve is not None:
            epochs = _lookup(self.epoch_curve, curve.steps)
            if len(np.unique(epochs)) < len(epochs):
                return False  # two points in one epoch
            if _steps_across_epochs(curve.steps, epochs):
                return False  # logged every n steps, fewer than once an epoch
            if self.epoch_steps is not None:
                return bool(np.isin(curve.steps, self.epoch_steps).all())
        return self.n_epochs is not None and len(curve) <= _PER_EPOCH_MAX * self.n_epochs + 1

    def resolve(self, tag: str, role: Role) -> Role:
        """The role with its level settled, for names that do not state it."""
        if role.role == "loss":
            kind = "epoch_train_loss" if self.per_epoch(tag, role) else "train_loss"
            return Role(kind, metric=role.metric, level=None, priority=role.priority)
        if role.role in ("train_metric", "val_metric") and not self.per_epoch(tag, role) and role.priority:
            return Role("ignore")
        if role.role == "train_loss" and self.by_epoch_x:
            return Role("epoch_train_loss", metric=role.metric, priority=role.priority)
        return role

    def x_is_epoch(self, curve: Scalars) -> bool:
        """Whether the curve's x is the epoch (0 or 1, 2, 3, ... well short of the last step)."""
        if self.by_epoch_x:
            return True
        # a column named `step` holds steps, 0, 1, 2, ... included (a metrics.csv without `epoch`)
        if self.epoch_curve is not None or len(curve) == 0 or self.log.format == "lightning-csv":
            return False
        x = curve.steps
        consecutive = x[0] in (0, 1) and bool(np.all(np.diff(x) == 1))
        keras = self._keras_epoch_curves()
        if consecutive and keras:
            # Keras' TensorBoard callback and mlcheck's Keras callback write every `epoch_*` value
            # at its epoch's index: the loss stream's last logged step says nothing here (logged
            # every 25 steps, a fit of 12 steps has only step 0)
            return True
        if any(curve is c for c in keras):
            # `fit(validation_freq=2)`: the `validation/epoch_*` values at epochs 1, 3, 5, ...,
            # each an epoch that the consecutive training `epoch_*` curves hold (was read as steps)
            epochs = [c.steps for c in keras if _consecutive_epochs(c.steps)]
            if any(np.isin(x, e).all() for e in epochs) and bool(np.all(np.diff(x) > 0)):
                return True
        return consecutive and (self.last_step is None or x[-1] < 0.5 * self.last_step)

    def _keras_epoch_curves(self) -> list[Scalars]:
        """The `train/epoch_*` and `validation/epoch_*` curves of event files that Keras'
        `TensorBoard` or mlcheck's Keras callback wrote (a Keras-layout log); [] for any other log."""
        if self.log.writer not in ("keras", "mlcheck"):
            return []
        return [
            c
            for tag, c in self.log.scalars.items()
            if tag.partition("/")[0] in KERAS_SUBRUNS and tag.partition("/")[2].startswith("epoch_")
        ]


def _steps_across_epochs(steps: np.ndarray, epochs: np.ndarray) -> bool:
    """Whether a curve's points, at `steps` in `epochs` (the log's own epoch column or tag beside
    them), are a stream logged every n steps with n longer than an epoch, not one point per epoch:
    at least 3 points, the steps evenly spaced and the epochs not (Lightning's
    `log_every_n_steps=50` over 30-batch epochs: steps 49, 99, 149 in epochs 1, 3, 4). A value
    logged once an epoch, or every k epochs, at the epoch's end is spaced in steps as its epochs
    are, and a curve whose epochs skip unevenly because some epochs are missing (a crash, a value
    not logged) has uneven steps too: both stay per epoch."""
    if len(steps) < 3:
        return False
    step_gaps, epoch_gaps = np.diff(steps), np.diff(epochs)
    even_steps = bool(np.all(step_gaps > 0)) and bool(np.all(step_gaps == step_gaps[0]))
    return even_steps and bool(np.any(epoch_gaps != epoch_gaps[0]))


def _consecutive_epochs(x: np.ndarray) -> bool:
    """Whether `x` is 0, 1, 2, ... (or 1, 2, 3, ...): an epoch index, two points at least."""
    return len(x) >= 2 and x[0] in (0, 1) and bool(np.all(np.diff(x) == 1))


def _epoch_curves(log: RunLog, resolved: Mapping[str, Role], used: dict[str, str]) -> list[tuple[str, str | None, str]]:
    """The epoch-level curves to read, as (EpochRow field, metric name, tag); records them in `used`."""
    wanted: list[tuple[str, str | None, str]] = []
    for field_name, role_name in (("train_loss", "epoch_train_loss"), ("val_loss", "val_loss")):
        tag = _pick(log, resolved, role_name)
        if tag:
            wanted.append((field_name, None, tag))
            used[role_name] = tag
    for split in ("train", "val"):
        names = sorted({r.metric for r in resolved.values() if r.role == f"{split}_metric" and r.metric})
        for name in names:
            tag = _pick(log, resolved, f"{split}_metric", metric=name)
            if tag:
                wanted.append((f"{split}_metrics", name, tag))
                used[f"{split}_metric:{name}"] = tag
    return wanted


def _epoch_rows(axes: _Axes, wanted: list[tuple[str, str | None, str]]) -> list[EpochRow]:
    """One row per epoch, in order, with the epoch (and step) of each point worked out."""
    scalars = axes.log.scalars
    step_x = [scalars[t].steps for _, _, t in wanted if not axes.x_is_epoch(scalars[t])]
    ranks = np.unique(np.concatenate(step_x)) if step_x else np.zeros(0, dtype=np.int64)
    rows: dict[int, EpochRow] = {}
    for field_name, name, tag in wanted:
        curve = scalars[tag]
        if axes.x_is_epoch(curve):
            epochs, steps = curve.steps, None
        elif axes.epoch_curve is not None:
            epochs = _lookup(axes.epoch_curve, curve.steps).astype(np.int64)
            steps = curve.steps
        else:
            epochs, steps = np.searchsorted(ranks, curve.steps), curve.steps
        for k, (epoch, value) in enumerate(zip(epochs.tolist(), curve.values.tolist())):
            row = rows.setdefault(int(epoch), EpochRow(int(epoch)))
            if steps is not None:
                row.step = max(row.step or 0, int(steps[k]))
            if name is None:
                setattr(row, field_name, value)
            else:
                getattr(row, field_name)[name] = value
    return [rows[e] for e in sorted(rows)]


def _without_validate_after_fit(ordered: list[EpochRow], stream: Scalars | None) -> list[EpochRow]:
    """`ordered` less its last rows that hold validation values alone, logged in a later epoch
    but within one step of the validation before them, while validations during the run lie
    further apart: Lightning's `trainer.validate()` after `fit` logs its metrics at the fit's
    final step (one past the last epoch end's) in epoch `max_epochs`, where no training ran. It
    is an evaluation of the final weights, not a point of the run's curve."""
    steps = [r.step for r in ordered]
    while len(ordered) >= 4 and None not in steps:
        last, before = ordered[-1], ordered[-2]
        spacing = float(np.median(np.diff(steps[:-1])))
        trained = last.train_loss is not None or last.train_metrics
        after = stream is not None and len(stream) and int(stream.steps[-1]) > before.step + 1
        if trained or after or last.epoch <= before.epoch or not (last.step - before.step <= 1 < spacing):
            break
        ordered, steps = ordered[:-1], steps[:-1]
    return ordered


def _fill_missing_steps(ordered: list[EpochRow], stream: Scalars | None) -> bool:
    """Rows without a step: spread over the step stream, or one step per epoch. True when the
    log holds no step at all (no stream, no row with one): every step is then its epoch."""
    if not ordered or all(r.step is not None for r in ordered):
        return False
    if stream is None or not len(stream):
        none = all(r.step is None for r in ordered)
        for r in ordered:
            if r.step is None:
                r.step = r.epoch
        return none
    first, last = int(stream.steps[0]), int(stream.steps[-1])
    e0, e1 = ordered[0].epoch, ordered[-1].epoch
    per = (last - first + 1) / (e1 - e0 + 1)
    for r in ordered:
        if r.step is None:
            r.step = first + int(round((r.epoch - e0 + 1) * per)) - 1


def _lr_on_steps(
    axes: _Axes, curve: Scalars, ordered: list[EpochRow], stream: Scalars | None
) -> tuple[np.ndarray, np.ndarray]:
    """The learning rate on the step axis: (steps, values)."""
    if not (axes.x_is_epoch(curve) and ordered):
        return curve.steps, curve.values
    # the rate of epoch e applies from the first step of epoch e
    ends = {r.epoch: r.step for r in ordered}
    first = int(stream.steps[0]) if stream is not None and len(stream) else None
    lr_steps = np.array(
        [
            ends[e - 1] + 1 if e - 1 in ends else (first if first is not None else ends.get(e, e))
            for e in curve.steps.tolist()
        ],
        dtype=np.int64,
    )
    return lr_steps, curve.values


#: How Lightning's `LearningRateMonitor` names its rates (`lr-SGD`, `lr-Adam/pg1`): it logs each at
#: the start of the epoch or step it rules (`on_train_epoch_start`, `on_train_batch_start`), so its
#: last rate is one the run used, never one set for after it.
LR_MONITOR_PREFIX = "lr-"


def _epoch_rate_interval(lr_steps: np.ndarray, lr_values: np.ndarray, ordered: list[EpochRow]) -> int | None:
    """The steps between two logged rates (`RunInfo.lr_logged_every`) where the log holds at most
    one rate an epoch (a `learning_rate` column of epoch rows, a wandb run's rate logged once an
    epoch), over two epochs or more; None for a rate logged more often, whose last value is
    within a few steps of the rate that was used."""
    logged = lr_steps[np.isfinite(lr_values)]
    if len(ordered) < 2 or len(logged) < 2 or len(logged) > len(ordered) + 1:
        return None
    spacing = int(np.median(np.diff(logged)))
    return spacing if spacing >= 1 else None


def _step_stream(
    stream: Scalars | None, lr_steps: np.ndarray | None, lr_values: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(steps, train loss, lr) of the step stream; lr forward-filled onto the loss's steps."""
    has_lr = lr_steps is not None and len(lr_steps) > 0
    if stream is not None:
        lr = None
        if has_lr:
            lr = lr_values[np.clip(np.searchsorted(lr_steps, stream.steps, "right") - 1, 0, None)]
        return stream.steps, stream.values, lr
    if has_lr:
        return lr_steps, None, lr_values
    return None, None, None


def _run_info(steps: np.ndarray | None, ordered: list[EpochRow], lr: np.ndarray | None) -> RunInfo:
    """Facts for end-of-run checks: total steps, epochs, task, whether a schedule was set."""
    info = RunInfo()
    step_axis = steps if steps is not None else np.array([r.step for r in ordered], dtype=np.int64)
    if len(step_axis):
        info.total_steps = int(step_axis[-1]) + (1 if int(step_axis[0]) == 0 else 0)
    if ordered:  # epochs count from 0 (CSVLogger, Lightning) or, in printouts, from 1
        info.max_epochs = ordered[-1].epoch + (1 if ordered[0].epoch == 0 else 0)
    metric_names = {n for r in ordered for n in (*r.train_metrics, *r.val_metrics)}
    info.task = from_metric_names(metric_names).task
    if info.task in (None, "classification"):
        classes = chance_classes(ordered)
        if classes is not None:
            info.task, info.num_classes = "classification", classes
    if lr is not None and len(lr):
        finite = lr[np.isfinite(lr)]
        if len(finite) and finite.max() > finite.min() * (1 + 1e-6):
            info.has_scheduler = True
    return info


#: The share of the run's last epochs whose losses and accuracies `chance_classes` reads.
CHANCE_TAIL = 0.2
#: The most classes `chance_classes` tells apart (ln C changes by 0.1% from C = 1,000 to 1,001).
CHANCE_MAX_CLASSES = 1000


def chance_classes(ordered: list[EpochRow], tolerance: float = 0.05) -> int | None:
    """The number of classes C a log's own numbers give away where they sit at chance: over the
    last epochs, a loss within `tolerance` of ln(C), the cross-entropy of a uniform guess, while
    the accuracy of the same split is within 0.25 / C of 1 / C (a quarter of it: at ten classes
    0.025, two standard errors of a guess's accuracy on about 580 samples). A log does not say C,
    and without it a loss stuck at chance after falling from a blown-up first epoch reads as
    progress; the two numbers agree on C by chance alone only for a model that guesses. None
    when no split's loss and accuracy agree on one C."""
    tail = ordered[-max(3, math.ceil(CHANCE_TAIL * len(ordered))) :]
    if len(ordered) < 3:
        return None
    for loss_of, metrics_of in (
        (lambda r: r.train_loss, lambda r: r.train_metrics),
        (lambda r: r.val_loss, lambda r: r.val_metrics),
    ):
        losses = [loss_of(r) for r in tail]
        names = {n for r in tail for n in metrics_of(r) if "acc" in n.lower()}
        if any(v is None or not math.isfinite(v) for v in losses) or len(names) != 1:
            continue
        (name,) = names
        accs = [metrics_of(r).get(name) for r in tail]
        if any(v is None or not math.isfinite(v) for v in accs):
            continue
        loss, acc = float(np.median(losses)), float(np.median(accs))
        if 1.5 < acc <= 100:
            acc /= 100.0  # logged in percent (a script's `100 * correct / total`)
        if acc > 1 or loss <= 0:
            continue  # no share, or no cross-entropy
        if loss * (1 - tolerance) > math.log(CHANCE_MAX_CLASSES):
            continue  # above chance at any C counted (and exp() of a loss of 710+ overflows)
        best: tuple[float, int] | None = None
        low, high = math.floor(math.exp(loss * (1 - tolerance))), math.ceil(math.exp(loss * (1 + tolerance)))
        for classes in range(max(2, low), min(high, CHANCE_MAX_CLASSES) + 1):
            off_loss = abs(loss - math.log(classes)) / (tolerance * math.log(classes))
            off_acc = abs(acc - 1 / classes) / (0.25 / classes)
            if off_loss <= 1 and off_acc <= 1 and (best is None or off_loss + off_acc < best[0]):
                best = (off_loss + off_acc, classes)  # the C both numbers agree on best
        if best is not None:
            return best[1]
    return None


#: Epochs replayed between two calls of `replay_curves`' progress function: a call costs less
#: than a thousandth of what 256 epochs do, and a long log still reports many times a second.
PROGRESS_EVERY = 256


def replay_curves(
    curves: Curves,
    checks: Sequence[Check],
    run_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Finding], dict[str, str]]:
    """Feeds the curves through a silent Monitor (no warnings, no files) and closes it.
    `progress(epochs_done, epochs_total)` is called every `PROGRESS_EVERY` epochs and at the end.
    Returns (findings, {check id: error} for checks that failed and were switched off)."""
    if not checks:  # only per-sample checks selected (`--select noisy-labels`): nothing to replay
        return [], {}
    monitor = Monitor(checks=list(checks), warn=False, default_sinks=False, info=curves.info, run_name=run_name)
    steps, loss, lr = curves.steps, curves.train_loss, curves.lr
    pos = 0
    total = len(curves.epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a failing check is reported through monitor.errors
        for k, row in enumerate(curves.epochs):
            if progress is not None and k % PROGRESS_EVERY == 0:
                progress(k, total)
            if steps is not None and row.step is not None:
                end = int(np.searchsorted(steps, row.step, "right"))
                if end > pos:
                    _feed(monitor, steps, loss, lr, pos, end, row.epoch)
                    pos = end
            monitor.log_epoch(
                row.epoch,
                step=row.step,
                train_loss=row.train_loss,
                val_loss=row.val_loss,
                train_metrics=row.train_metrics or None,
                val_metrics=row.val_metrics or None,
            )
        if steps is not None and pos < len(steps):
            epoch = curves.epochs[-1].epoch + 1 if curves.epochs else None
            _feed(monitor, steps, loss, lr, pos, len(steps), epoch)
        monitor.close()
    if progress is not None:
        progress(total, total)
    findings = passed_rises_demoted(list(monitor.findings))
    findings = contradicted_demoted(_rises_ended_at_best_demoted(findings, curves, checks), curves)
    if curves.steps is None or curves.steps_are_epochs:
        findings = [_slow_fall_from_epochs_alone(f) for f in findings]
    if curves.steps_are_epochs:
        # the replay's step was the epoch (`_fill_missing_steps`): "step 13, epoch 13" on a log
        # indexed by epochs names one index twice, as if a step were known
        findings = [dataclasses.replace(f, step=None) if f.step is not None else f for f in findings]
    return findings, dict(monitor.errors)


def _slow_fall_from_epochs_alone(f: Finding) -> Finding:
    """`lr-too-low`'s slow-fall WARNING (key `lr`, judged on epochs) read from a log that holds
    epoch points only, with no update size measured, as an INFO that says so. A rate too small
    moves the weights so little that the loss falls at a steady pace (CS231n: "linear"
    improvements); a run stopped long before its model converged falls at a steady pace too, at a
    good rate. Only the size of the weights' updates against the weights tells the two apart (the
    live callback measures it: about 10^-3 per step at a usual rate, Karpathy's rule, the check's
    `min_log_ratio` rule), and an epoch log has none: held-out-3's c74-5 (SGD 1e-3, 140 steps in
    all) and held-out-11's kuangxiaok fit4 (a ViT-B/16 from scratch at DeiT's rate scaled to its
    batch, 10 epochs of a 300-epoch recipe) both fall in a straight line."""
    if not (
        f.check == "lr-too-low"
        and f.key == "lr"
        and f.severity == Severity.WARNING
        and "epochs" in f.evidence
        and "log10_update_ratio" not in f.evidence
    ):
        return f
    return dataclasses.replace(
        f,
        severity=Severity.INFO,
        message=(
            f"{f.message} Read from epoch points alone, with no record of the weights' updates, a rate too "
            "low and a run stopped long before its model converged give the same straight fall: this log "
            "cannot tell them apart."
        ),
        evidence={**f.evidence, "epoch_points_only": True},
        hint=(
            "If the run was meant to converge, train it longer or at a 3-10x larger rate; with mlcheck's "
            "callback on the next run, the weights' update/weight ratio (about 10^-3 per step at a usual "
            f"rate) tells which. {f.hint or ''}".rstrip()
        ),
    )


def passed_rises_demoted(findings: list[Finding]) -> list[Finding]:
    """The findings, with each `train-val-gap` overfitting WARNING whose rise the rest of the log
    shows passed (the check's `overfit-passed` INFO followed it: the validation loss came back
    below the best level it named) as an INFO that says so. A live run could not know; a log
    read whole does, and a run that went on to learn did not overfit there.

    Also used on the findings a run recorded live (`findings.jsonl`): the INFO names the rise's
    epoch (`told_at_epoch`) and must come after the WARNING. Both are known by their key; in a
    file written before `findings.jsonl` kept the key, by their evidence (`best_val_loss` and
    `epochs_since_best`; `told_at_epoch` and `below`)."""
    out = list(findings)
    for i, f in enumerate(findings):
        if not _rise_told(f):
            continue
        later = (p for p in findings[i + 1 :] if _rise_passed(p))
        back = next((p for p in later if p.evidence.get("told_at_epoch") == f.epoch), None)
        if back is None:
            continue
        out[i] = demoted(
            f,
            f"Later the validation loss came back below that best level (epoch {back.epoch}: "
            f"{back.evidence.get('val_loss')}): the rise passed.",
        )
    return out


def _rise_told(f: Finding) -> bool:
    """A `train-val-gap` overfitting WARNING (or worse): by its key, or, read back from a
    findings file written without keys, by its evidence."""
    if f.check != "train-val-gap" or not f.severity > Severity.INFO:
        return False
    if f.key:
        return f.key.startswith("overfit") and not f.key.startswith("overfit-passed")
    return "best_val_loss" in f.evidence and "epochs_since_best" in f.evidence


def _rise_passed(f: Finding) -> bool:
    """`train-val-gap`'s INFO that a rise passed: by its key, or, read back from a findings file
    written without keys, by its evidence."""
    if f.check != "train-val-gap":
        return False
    if f.key:
        return f.key.startswith("overfit-passed")
    return f.severity == Severity.INFO and "told_at_epoch" in f.evidence and "below" in f.evidence


def _rises_ended_at_best_demoted(findings: list[Finding], curves: Curves, checks: Sequence[Check]) -> list[Finding]:
    """The findings, with each `train-val-gap` overfitting WARNING still standing as an INFO where
    the log ends at its best: the mean of its last `patience` validation losses is the lowest such
    mean of the whole log, and below the best level the WARNING named. The rise it told did not
    last: the run ends at its best level (README rule 5 of benchmarks/reallogs calls such a run
    healthy), and the WARNING's hint to keep an earlier checkpoint points to one no better than
    the end. Stricter than `overfit-passed` at the end of a log (no margin asked, but the
    lowest level of the run, measured as the check measures a level: a mean of `patience`
    validations); or where the single lowest validation loss of the log lies among its last
    `patience` validations, below both the best level and the best epoch's own loss the WARNING
    named (README rule 5's "the minimum among the last 3 epochs": on a noisy curve the last mean
    carries the noise of the epochs around that minimum; held-out-8's `aryan-82` and held-out-9's
    `elisonsher` end at or 2 epochs after their single lowest epoch). A live run could not know;
    a log read whole does. held-out-6's
    `apinxd-celldetectio` `exp` (a 30% spike at epochs 7-12 of 50, back to 0.851 against a best
    level of 0.863) and `1wangxt-pipeline_def` `exp3` (ends at its minimum, 0.0898)."""
    told = [f for f in findings if _standing_rise(f)]
    if not told:
        return findings
    patience = next((int(getattr(c, "patience", 3)) for c in checks if c.id == "train-val-gap"), 3)
    p = max(1, patience)
    val = np.array([r.val_loss for r in curves.epochs if r.val_loss is not None], dtype=float)
    val = val[np.isfinite(val)]
    if len(val) < 2 * p:
        return findings
    levels = np.convolve(val, np.ones(p) / p, mode="valid")  # every mean of p validations in a row
    end = float(levels[-1])
    ends_at_lowest_level = end <= float(levels.min())
    # the single lowest validation of the log among its last p: the checkpoint the WARNING's hint
    # points to is no better than one at the end (README rule 5's "m among the last 3 epochs")
    lowest = float(val.min())
    ends_at_lowest_epoch = int(np.argmin(val)) >= len(val) - p
    if not ends_at_lowest_level and not ends_at_lowest_epoch:
        return findings
    out = []
    for f in findings:
        best = f.evidence.get("best_val_loss") if _standing_rise(f) else None
        if not isinstance(best, (int, float)):
            out.append(f)
        elif ends_at_lowest_level and end < best:
            out.append(
                demoted(
                    f,
                    f"By the end of the log the validation loss was back to {end:.4g} (mean of its last {p} "
                    f"validations), its lowest level of the run and below the best level {best:.4g} named here: "
                    "the rise did not last, and the run ends at its best level.",
                )
            )
        elif ends_at_lowest_epoch and lowest < _named_floor(f, best):
            out.append(
                demoted(
                    f,
                    f"Within its last {p} validations the log reached {lowest:.4g}, the lowest validation loss "
                    f"of the run and below the best level {best:.4g} named here: the rise did not last, and the "
                    "run ends at its best epoch.",
                )
            )
        else:
            out.append(f)
    return out


def _named_floor(f: Finding, best: float) -> float:
    """The lower of a rise's best level and its best epoch's own validation loss."""
    at_best = f.evidence.get("val_loss_at_best")
    return min(best, at_best) if isinstance(at_best, (int, float)) else best


def _standing_rise(f: Finding) -> bool:
    """A `train-val-gap` overfitting WARNING (not an INFO, not the note that a rise passed)."""
    return (
        f.check == "train-val-gap"
        and f.severity > Severity.INFO
        and f.key.startswith("overfit")
        and not f.key.startswith("overfit-passed")
    )


#: "epoch 19" and "over 3 epochs" in a finding of a run whose epochs are its validation points
_EPOCH_WORDS = re.compile(r"\bepochs? (\d+)\b|\b(\d+) epochs\b")


def on_steps(finding: Finding, rows: Sequence[EpochRow], step_epochs: Scalars | None = None) -> Finding:
    """`finding` of a `Curves.by_step` run, told in steps: its k-th validation point was replayed
    as "epoch k", which the log never said (a metrics.csv of 40 step rows read as "40 epochs",
    "Keep the checkpoint from epoch 19"). "epoch k" becomes "step S" (the point's step), or "step S
    (epoch 2.4)" where the log holds the fractional epoch at S (`step_epochs`: a Hugging Face
    Trainer's), "N epochs" "N validations", and the evidence's epochs the steps of those points
    (and, where known, their fractional epochs beside them)."""
    step_of = {r.epoch: r.step for r in rows if r.step is not None}

    def epoch_at(step: int) -> float | None:
        if step_epochs is None:
            return None
        k = int(np.searchsorted(step_epochs.steps, step, "right")) - 1
        return float(step_epochs.values[k]) if k >= 0 else None

    def words(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            if match[2] is not None:
                return f"{match[2]} validation{'s' if match[2] != '1' else ''}"
            k = int(match[1])
            if k not in step_of:
                return match[0]
            epoch = epoch_at(step_of[k])
            return f"step {step_of[k]}" + (f" (epoch {_fraction(epoch)})" if epoch is not None else "")

        return _EPOCH_WORDS.sub(one, text)

    evidence: dict[str, object] = {}
    for key, value in finding.evidence.items():
        if key.startswith("epochs_"):
            evidence["validations_" + key[len("epochs_") :]] = value
        elif key.endswith("epoch") and isinstance(value, int) and value in step_of:
            evidence[key[: -len("epoch")] + "step"] = step_of[value]
            epoch = epoch_at(step_of[value])
            if epoch is not None:
                evidence[key] = round(epoch, 2)
        else:
            evidence[key] = value
    return dataclasses.replace(
        finding,
        epoch=None,
        message=words(finding.message),
        hint=words(finding.hint) if finding.hint else finding.hint,
        evidence=evidence,
    )


def _fraction(epoch: float) -> str:
    """A Trainer's fractional epoch as it reads: 2.4, 9.99, 3 (two decimals at most)."""
    return f"{epoch:.2f}".rstrip("0").rstrip(".")


def _feed(monitor: Monitor, steps, loss, lr, start: int, end: int, epoch: int | None) -> None:
    monitor.log_steps(
        steps[start:end],
        loss=None if loss is None else loss[start:end],
        lr=None if lr is None else lr[start:end],
        epoch=epoch,
    )


def _without_summaries(log: RunLog, roles: Mapping[str, Role], resolved: dict[str, Role]) -> dict[str, Role]:
    """`resolved`, less a training loss logged once beside a training-loss curve: a run's
    summary, not an epoch (Hugging Face's Trainer logs `train/train_loss`, the mean loss of the
    whole run, once at its end, beside `train/loss` every `logging_steps`)."""
    train = ("train_loss", "epoch_train_loss")
    # the Trainer's own `train/train_loss` is that summary even alone (a run shorter than its
    # `logging_steps` logs no `train/loss`): one point, the whole run's mean, is no curve
    hf_summary = log.writer == HF_TRAINER_WRITER and len(log.scalars.get("train/train_loss", ())) == 1
    if not hf_summary and not any(r.role in train and len(log.scalars[t]) > 1 for t, r in resolved.items()):
        return resolved
    return {
        t: Role("ignore") if r.role in train and roles[t].role == "loss" and len(log.scalars[t]) == 1 else r
        for t, r in resolved.items()
    }


_LOSS_ROLES = frozenset({"loss", "train_loss", "epoch_train_loss", "val_loss"})
#: pytorch_tabular's loss of output k, `{split}_loss_{k}` (logged per epoch beside `{split}_loss`)
_OUTPUT_LOSS = re.compile(r"^(?P<base>.*loss)_(?P<k>\d+)$")


def _single_output_losses(roles: dict[str, Role]) -> dict[str, Role]:
    """`roles`, with `<loss>_0` read as that loss where no `<loss>_1` is logged: pytorch_tabular
    logs the loss of each output k as `{split}_loss_{k}` (`on_epoch=True, on_step=False`) beside
    their sum `{split}_loss`, so with one output `train_loss_0` is the training loss per epoch
    (RaduTuodr's forest-cover metrics.csv, held-out-4: `train_loss` every 50 steps, `train_loss_0`
    once an epoch). Below the plain name (a lower priority), so `valid_loss` stays the validation
    loss; a user's own mapping of the tag is kept; an output of several is one term of a sum, not
    the loss, and stays unread."""
    out = dict(roles)
    for tag, role in roles.items():
        m = _OUTPUT_LOSS.match(tag)
        if m is None or m["k"] != "0" or role.priority == 0 or f"{m['base']}_1" in roles:
            continue
        base = classify(m["base"])
        if base.role in _LOSS_ROLES:
            out[tag] = dataclasses.replace(base, priority=base.priority + 1)
    return out


def _error_losses(roles: dict[str, Role]) -> dict[str, Role]:
    """`roles`, where no tag is a loss, with the curves of one error measure that is also a
    common training objective (`tags.ERROR_LOSSES`: `train_mse` and `val_mse`, the first of them
    logged for training) read as the losses; a user's own mapping (priority 0) is kept."""
    if any(r.role in _LOSS_ROLES for r in roles.values()):
        return roles
    candidates = {tag: error_loss_role(tag) for tag, r in roles.items() if r.priority}
    trained = {c.metric for c in candidates.values() if c is not None and c.role != "val_loss"}
    name = next((n for n in ERROR_LOSSES if n in trained), None)
    if name is None:
        return roles
    return {tag: c if (c := candidates.get(tag)) is not None and c.metric == name else r for tag, r in roles.items()}


def _test_as_validation(log: RunLog, roles: dict[str, Role]) -> dict[str, Role]:
    """`roles`, where no tag is a validation loss and a `test` loss is logged more than once, with
    the `test` curves read as the validation curves (`tags.test_as_validation_role`): a training
    loop that evaluates its held-out split every epoch and calls it test (`epoch,train_loss,
    train_acc,test_loss,test_acc`). A test logged once (Lightning's `trainer.test()` after the
    fit) stays ignored, and so does every test curve beside a validation one."""
    if any(r.role == "val_loss" for r in roles.values()):
        return roles
    held = {
        tag: role
        for tag in roles
        if roles[tag].role == "ignore" and roles[tag].priority and len(log.scalars[tag]) > 1
        if (role := test_as_validation_role(tag)) is not None
    }
    losses = sorted(tag for tag, role in held.items() if role.role == "val_loss")
    if not losses:
        return roles
    log.info.append(
        f"{log.where} has no validation curve; its {', '.join(repr(t) for t in losses)}, logged at "
        f"{len(log.scalars[losses[0]])} points, is read as the validation loss (a held-out split evaluated "
        "during training; mlcheck ignores a test curve beside a validation one, or logged once)"
    )
    return {tag: held.get(tag, role) for tag, role in roles.items()}


def _qualified_losses(resolved: dict[str, Role]) -> dict[str, Role]:
    """`resolved`, keeping a qualified loss (`train/nll_loss`, `tags.QUALIFIED_PRIORITY`) only
    where it cannot be misread: as the training loss where no `loss` is logged and the run names
    one such loss (`recon_loss` beside `kl_loss` are terms of a sum, either of which may rise in a
    healthy run), and as the validation loss where no `val_loss` is logged and it names the same
    loss as the training loss (`val/rmse_loss` beside `train/nll_loss` is another quantity, and
    the checks compare the two curves)."""
    train = ("train_loss", "epoch_train_loss")

    def qualified(r: Role) -> bool:
        return r.priority == QUALIFIED_PRIORITY and r.metric is not None

    plain_train = any(r.role in train and not qualified(r) for r in resolved.values())
    plain_val = any(r.role == "val_loss" and not qualified(r) for r in resolved.values())
    names = {r.metric for r in resolved.values() if r.role in train and qualified(r)}
    train_name = names.pop() if len(names) == 1 and not plain_train else None
    out = {}
    for tag, r in resolved.items():
        if qualified(r) and r.role in train and train_name is None:
            r = Role("ignore")
        elif qualified(r) and r.role == "val_loss" and (plain_val or r.metric != train_name):
            r = Role("ignore")
        out[tag] = r
    return out


def _pick(log: RunLog, roles: Mapping[str, Role], role: str, metric: str | None = None) -> str | None:
    """The tag for a role: the highest priority, then (learning rates) the highest median rate,
    then the most points, then the name."""
    tags = [t for t, r in roles.items() if r.role == role and (metric is None or r.metric == metric)]
    if not tags:
        return None
    if role == "lr":
        return min(tags, key=lambda t: (roles[t].priority, -_median_rate(log.scalars[t]), -len(log.scalars[t]), t))
    return min(tags, key=lambda t: (roles[t].priority, -len(log.scalars[t]), t))


def _median_rate(curve: Scalars) -> float:
    """The median of a learning-rate curve's finite values (-inf where it has none).

    Of several parameter groups' rates (Lightning's `LearningRateMonitor` writes `lr-Adam/pg1`,
    `lr-Adam/pg2`, or `lr-Adam/<group name>`, one per group), the learning-rate checks read the
    group whose rate is highest over the run: the fastest group's updates are the ones that
    diverge or oscillate, and a group held low or at 0 on purpose (a frozen or slowly fine-tuned
    backbone beside a new head, discriminative rates) would read as a rate decayed to nothing.
    A log does not say how many parameters each group holds; the median, not the maximum, so
    that a warm-up or a single spike does not decide it."""
    finite = curve.values[np.isfinite(curve.values)]
    return float(np.median(finite)) if len(finite) else -math.inf


def _epoch_count(log: RunLog, roles: Mapping[str, Role], epoch_curve: Scalars | None) -> int | None:
    if epoch_curve is not None and len(epoch_curve):
        finite = epoch_curve.values[np.isfinite(epoch_curve.values)]
        if len(finite):
            return int(finite.max()) + 1
    counts = [
        len(log.scalars[t])
        for t, r in roles.items()
        if r.role in ("val_loss", "epoch_train_loss") or (r.level == "epoch")
    ]
    return max(counts) if counts else None


def _lookup(curve: Scalars, x: np.ndarray) -> np.ndarray:
    """The curve's value at each x (the last point at or before it; the first before it)."""
    at = np.clip(np.searchsorted(curve.steps, x, "right") - 1, 0, None)
    return curve.values[at]
