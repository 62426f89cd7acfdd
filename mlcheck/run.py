"""`RunState`: what the monitor knows about a run, shared read-only with the checks."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck.layers import LayerHistory
from mlcheck.metrics import strip_split
from mlcheck.samples import SampleStore
from mlcheck.series import Series

logger = logging.getLogger("mlcheck")


@dataclass(frozen=True)
class EarlyStop:
    """The run's own early stopping, as the adapter found it configured (Keras' and Lightning's
    `EarlyStopping` share these semantics): after each validation it compares `monitor` with
    its best so far; a value better by more than `min_delta` is the new best, and once
    `patience` validations in a row bring none, training stops.

    Attributes:
        monitor: the logged name it watches ("val_loss").
        patience: validations without improvement before it stops.
        mode: "min" or "max" ("auto" as Keras infers it: "max" for accuracy-like names).
        min_delta: the least change that counts as an improvement (absolute).
        start_from: validations it ignores at the start (Keras' `start_from_epoch`).
        keeps_best: what keeps the weights of its best epoch, in the user's words
            ("EarlyStopping(restore_best_weights=True)", "ModelCheckpoint(monitor='val_loss')");
            None when nothing does: the run stops late, with the weights of its last epoch.
    """

    monitor: str
    patience: int
    mode: str = "min"
    min_delta: float = 0.0
    start_from: int = 0
    keeps_best: str | None = None

    @property
    def watches_val_loss(self) -> bool:
        """True when it stops on the validation loss ("val_loss", "val/loss", "loss/val",
        "val_loss_epoch"), lower being better."""
        return self.mode in ("min", "auto") and strip_split(self.monitor.removesuffix("_epoch")) == ("val", "loss")

    def replay(self, values: Sequence[float], counts: Sequence[int] | None = None) -> tuple[int, int] | None:
        """(index of the best value, validations since then without improvement) after `values`,
        the monitored value at each validation, by the rule both frameworks apply; None before
        any value counts. Training stops once the second number reaches `patience`: a run that
        shows more has gone on past it, so this early stopping is not stopping it. `counts`: how
        many validations each value stands for, where a long run's values are means of several
        (`Series` buckets); the replay is then approximate."""
        best_at, best, wait, seen = None, math.nan, 0, 0
        sign = -1.0 if self.mode == "max" else 1.0
        for i, value in enumerate(values):
            count = int(counts[i]) if counts is not None else 1
            seen += count
            if seen <= self.start_from or not math.isfinite(value):
                continue
            if best_at is None or sign * value < sign * best - abs(self.min_delta):
                best_at, best, wait = i, value, 0
            else:
                wait += count
        return None if best_at is None else (best_at, wait)


@dataclass(frozen=True)
class RowLosses:
    """The loss of each row of one validation pass, summed: what the validation loss's own
    standard error over its rows needs (`train-val-gap`'s small-validation-set guard). For a
    classifier, each row's loss is -log of the probability the model gave the row's class,
    computed by the adapter from the validation outputs and targets it already sees and reduced
    on the device (`Signal.VAL_LOSSES`).

    Attributes:
        epoch: the epoch whose validation pass this is (as `Monitor.log_epoch` numbers them).
        rows: the rows of the pass.
        total: the sum of their losses.
        total_sq: the sum of their squares.
        losses: each row's loss, in the pass's order, where the pass had at most
            `PAIRED_MAX_ROWS` rows (what a paired error between two epochs needs); else None.
        labels: each row's class, in the same order (two passes pair their rows only where
            these are equal: an unshuffled validation set); else None.
    """

    #: the largest validation pass whose rows' own losses are kept, per epoch (4 bytes a row and
    #: 8 for its label): the sets small enough for one row to move their mean
    PAIRED_MAX_ROWS = 1024

    epoch: int | None
    rows: int
    total: float
    total_sq: float
    losses: np.ndarray | None = field(default=None, compare=False, repr=False)
    labels: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def mean(self) -> float:
        return self.total / self.rows if self.rows else math.nan

    @property
    def std(self) -> float:
        """The sample standard deviation of the rows' losses (nan under 2 rows)."""
        if self.rows < 2:
            return math.nan
        spread = self.total_sq - self.total * self.total / self.rows  # float32 sums: not below 0
        return math.sqrt(max(spread, 0.0) / (self.rows - 1))


@dataclass(frozen=True)
class InputRescale:
    """The affine map a model's first layer applies to each input value, broadcast over the
    last axis (`RunInfo.input_rescale`): `x * scale + offset`.

    Attributes:
        scale: the factor, one value or one per feature (last axis).
        offset: the term added after it, the same shape rules.
        layer: the layer in the user's words, for messages ("Normalization layer 'norm'").
        over_every_value: True for one mean and variance computed over every value (Keras'
            `Normalization(axis=None)`), which leaves the columns' relative scales as they were.
        adapted: False for a `Normalization` never adapted (mean 0, variance 1: the inputs pass
            through unchanged).
    """

    scale: np.ndarray
    offset: np.ndarray
    layer: str
    over_every_value: bool = False
    adapted: bool = True


@dataclass
class RunInfo:
    """Facts about the run that observations alone do not give. All optional.

    Attributes:
        task: "classification", "regression" or None (inferred where possible).
        num_classes: number of classes for classification, if known.
        total_steps: the number of optimizer steps the run is configured for, if known.
        max_epochs: the number of epochs the run is configured for, if known.
        has_scheduler: True when a learning-rate schedule is configured that moves the rate by
            the count of steps or epochs, False when there is certainly none, None when unknown
            or when the only schedule is one that moves the rate when a metric stalls
            (ReduceLROnPlateau), which a healthy run may never see move.
        higher_is_better: overrides for metric direction, by metric name.
        loss: the loss's short name as `mlcheck.task` spells it ("cross_entropy", "bce_with_logits",
            "mse", ...), when an adapter or the log tells it: Keras from the compiled loss,
            Lightning from the train-start checks' `Trainable.loss_config()` (its one loss module, or
            the common loss its value matches on the first batch), `mlcheck analyze` from an
            unambiguous tag name ("bce_loss"). Its family: `mlcheck.task.loss_family(info.loss)`.
        early_stop: the run's own early stopping on the validation loss, when the adapter saw
            one (`LiveRun.note_early_stopping` chooses it); None when there is none or it is
            unknown (`mlcheck analyze`, a hand-written loop).
        zeroes_gradients: True when the framework zeroes the gradients between optimizer steps
            itself, so they cannot add up across steps: Lightning's automatic optimization with
            its own `optimizer_zero_grad`, Keras (each step computes fresh gradients), the
            Hugging Face `Trainer`. None when unknown: a hand-written loop, Lightning's manual
            optimization or an `optimizer_zero_grad` override, `mlcheck analyze`.
        grad_clip: the gradient clipping threshold the framework applies before each step
            (Lightning's `gradient_clip_val`; Keras' `clipnorm`, `global_clipnorm` or
            `clipvalue`), None when there is none or it is unknown.
        class_weights: the loss's weight per class label, when the adapter saw one: Keras
            hands `fit(class_weight=...)` to each step as per-sample weights, from which the
            callback reads the weight of each class (constant within a class); Lightning reads
            the `weight` of the `CrossEntropyLoss` / `NLLLoss` module the LightningModule holds.
            None when there is none or it is unknown.
        ignored_class: the class label the loss skips, where it is one a class can have: the
            `ignore_index` of the `CrossEntropyLoss` / `NLLLoss` module a LightningModule holds
            (torch's default -100 is no class, so None), Keras' `ignore_class` of a sparse
            cross-entropy. Meant for padding; on one label per sample it drops a whole class.
            None when there is none or it is unknown.
        train_mode_at_validation: the module paths of the layers that act differently in
            training (dropout, BatchNorm) found in training mode during a validation batch: a
            `validation_step` that calls `.train()`, a `train()` override that ignores
            `mode=False`, a Keras `call` that hands its layers `training=True`. Lightning reads
            the layers' modes at the first validation batch of the run; Keras calls the model for
            inference on that batch and names what moved. Empty when there are none; None when
            unknown.
        eval_mode_at_training: the module paths of the layers that act differently in training
            (dropout, BatchNorm) found in evaluation mode at a training batch of a model that is
            itself in evaluation mode: a `self.eval()` after a manual evaluation (in
            `on_train_epoch_end`, in `training_step`) never undone by `self.train()`. Lightning
            reads the module's `training` flag at the end of each training batch and the layers
            once it is False at two in a row. None when unknown or not seen.
        eval_mode_since: the (epoch, step) of the first training batch that ran so.
        pretrained: True when the run starts from trained weights (fine-tuning a pretrained
            model, or a run resumed from a checkpoint), whose loss starts near its floor: how
            little it fell then says nothing about a stall or a small learning rate, so the rules
            that judge the loss by its fall from the first value (`loss-plateau` away from the
            chance level, `lr-too-low`'s slow fall) stand down. `mlcheck analyze` sets it for
            Hugging Face `Trainer` logs (`trainer_state.json`, or the Trainer's TensorBoard tags;
            the Trainer is documented and used for fine-tuning `from_pretrained` models), for an
            Ultralytics YOLO `results.csv` unless the `args.yaml`/`opt.yaml` beside it says the
            model was built from its architecture file (`yolov8n.yaml`, `--weights ''`), and for
            a log that starts far from step 0 (a resumed run). The Lightning and Transformers
            callbacks set it for a model holding a Hugging Face model whose config names a
            checkpoint (loaded with `from_pretrained`), or a run resumed from a checkpoint that
            brought no mlcheck state back. None when unknown. Those rules also take a
            classification loss that starts far below chance for such a start
            (`mlcheck.checks.class_prior.starts_trained`: weights restored with
            `load_state_dict` leave no other trace).
        augmented_train: True when the training loss is taken on inputs augmented far harder
            than the validation inputs: Ultralytics YOLO trains on mosaics of 4 images with
            scale, translation and colour jitter (mixup, copy-paste where set) and validates on
            the clean images, so its validation loss sits well below its training loss as a
            rule (3-5x below it in public runs). `suspicious-val` then reports a validation loss
            far below the training loss as INFO, not as a likely leak. `mlcheck analyze` sets it
            for YOLO's `results.csv`. None when unknown.
        several_objectives: True when the training loss mlcheck reads is one of several
            optimizers' objectives: Lightning's manual optimization stepping two or more
            optimizers, its `training_step` returning no loss (mlcheck then reads the loss of the
            step's last `backward`). A rise or a stall of that one loss may be another
            objective's progress (a GAN's generator loss rises as its discriminator learns), so
            `loss-divergence` and `loss-plateau` report what they see there as INFO (a loss 100x
            its start or below zero stays an ERROR). None when unknown or not so.
        plateau_scheduler: True when the only learning-rate schedule the adapter saw moves the
            rate when a metric stops improving (Lightning's `ReduceLROnPlateau`, a scheduler
            config with `reduce_on_plateau`; a Keras `ReduceLROnPlateau` callback beside no
            `LearningRateScheduler` and no schedule in the optimizer): a rate it cut to ~0
            followed the metric's stall, so
            `lr-schedule` tells that decay as INFO. None when unknown or not so.
        plateau_monitors: (metric name, mode) of each ReduceLROnPlateau the adapter saw whose
            mode was given ("min" or "max": Lightning's `ReduceLROnPlateau(mode=...)` with its
            config's `monitor`, Keras' callback's `monitor` and `mode`); "auto" is left out, as
            the framework then reads the direction from the metric itself. None when unknown.
        stop_monitors: (callback, metric name, mode) of each EarlyStopping and best-weights
            ModelCheckpoint the adapter saw whose mode was given ("min" or "max"), the callback in
            the user's words ("EarlyStopping(restore_best_weights=True)"); "auto" is left out, as
            the framework then reads the direction from the metric. `train-val-gap` names one
            whose mode reads its metric the wrong way round. None when unknown.
        lr_logged_every: the steps between two learning rates of the log, where the log holds
            one rate an epoch (`mlcheck analyze` of a Keras `CSVLogger`'s `learning_rate`
            column, an `lr` column of a hand-written CSV, a rate wandb or TensorBoard got once an
            epoch; not Lightning's `LearningRateMonitor`, which logs each rate at the start of
            the epoch it rules): such a rate,
            written at an epoch's end, is the rate that epoch used (Keras' `LearningRateScheduler`)
            or the one set for the next (logged after `scheduler.step()`, a Keras schedule read
            after the epoch's steps), and the log does not say which; so `lr-schedule` counts a
            rate's fall to ~0 from one such interval later (a cosine or linear schedule whose
            last logged rate is 0 ends where it was designed to). None when the rate is known at
            every step (the callbacks read it from the optimizer) or unknown.
        loss_unmatched: True when the train-start trainable measured the training loss on the
            first batch and it is none of the common losses of the outputs and targets, nor a
            multiple of one (`LossConfig.unmatched`): the run trains another objective (a
            cross-entropy on a teacher's softened outputs, a penalty added inside the step, a
            focal loss), whose level a validation loss of the usual kind need not share
            (`suspicious-val` then tells a validation loss far below it as INFO). None when
            unknown or named.
        target_is_input: True when the train-start trainable found the loss to compare the
            outputs with the inputs themselves, the batch holding no targets apart from them
            (`LossConfig.target_is_input`: an autoencoder fed `x` alone or `(x,)`): a binary
            cross-entropy's floor is then the inputs' own entropy. None when unknown.
        loss_summed_over: the rows a training loss is summed over (`reduction="sum"`), when the
            train-start trainable found its value on the first batch to be that many times the
            mean loss (`LossConfig.summed_over`): the loss levels the checks compare with a
            per-sample one (the chance level ln(C), `chance_level`) are that many times it. None
            for a mean or when unknown.
        embedding_rows: the rows of the embedding table the inputs index directly (Keras: the
            `input_dim` of an `Embedding` the inputs go straight into); an id at or beyond it has
            no row (the torch backend raises "index out of range", others may read garbage).
            None when unknown or the inputs are no ids.
        input_rescale: the affine map the model's first layer applies to each input value
            (`InputRescale`; a (scale, offset, layer) tuple is read as one), where the adapter can read it
            (Keras: a `Rescaling` layer's scale and offset; a `Normalization` layer's
            1/sqrt(variance) and -mean/sqrt(variance), mean 0 and variance 1 when it was never
            adapted); `layer` describes it for messages. With it, `unnormalized-input` judges the
            values that layer hands on instead of leaving inputs marked `"rescaled"` unjudged.
            None when unknown.
        conv_input: (layer, per-sample input shape, data format) of the model's first 2-D
            convolution, where the adapter can read it (Keras: the first `Conv2D` whose input
            shape is known, with its `data_format`; Lightning: the input of the module's first
            `nn.Conv2d` at the first training step, always `channels_first`):
            `unnormalized-input` reads images fed in the other layout from it (key
            `channels-first`). None when unknown or when there is none.
        rate_held_at_zero: the module paths whose parameters sit, now, in an optimizer parameter
            group that a scheduler holds at a learning rate of 0 (its rate 0, the rate it was
            built with, torch's `initial_lr`, above 0): a deliberate pause such as a backbone
            kept still while a new head warms up. `frozen-parameters` leaves them unnamed; a
            group built with a rate of 0 is not in it. None when unknown.
        symmetric_units: (module path, units) of each trainable layer whose output units were
            copies of each other when training started (every row of its weight equal: a
            constant initialisation) and still were after its first training epoch moved them:
            the symmetry was never broken, so the layer computes one unit (the Lightning and
            Keras callbacks read it at the first training epoch's end). `dead-units` names them (key `symmetric`).
            None when unknown or none.
        group_rates_moved: True once a scheduler has moved the rate of some parameter group
            between two epochs' starts, where the adapter reads every group (Lightning): the
            rate curve judged (the highest group's) may stay flat while another group's moves,
            so `lr-schedule` does not call that scheduler idle. None when unknown.
        base_lr: the peak learning rate the optimizer is configured with, where the adapter can
            read it (Lightning: the highest parameter group's `initial_lr`, the rate torch's
            schedulers scale, else its `lr`, read at each training epoch's start; Keras: at train
            start, a plain rate's value or the highest rate a `LearningRateSchedule` gives from
            there on, a warm-up's target). `lr-schedule` compares a warm-up's rate with it (key
            `warmup-unfinished`). None when unknown.
        built_lr: the plain rate the optimizer was built with, where a callback sets the rate
            from the first epoch on (Keras: a `LearningRateScheduler` beside the callback, read at
            train start, before it sets its first rate). `lr-schedule` compares the first rate
            trained at with it (key `set-far-above`). None otherwise.
        adam_eps: the largest `eps` of an Adam-family optimizer (torch's Adam, AdamW, NAdam,
            RAdam; Keras' Adam, AdamW, Nadam), read at the first training epoch's end beside
            `adam_step_share`. None when unknown or not an Adam.
        adam_step_share: the median over the weights (those with a gradient so far; sampled)
            of sqrt(v) / (sqrt(v) + eps), v Adam's running mean of squared gradients (bias-
            corrected as each framework applies eps): the share of Adam's normalised step the
            weights take. Near 1 at the defaults (eps 1e-8 torch, 1e-7 Keras, against gradients
            of ~1e-4-1); an eps far above the gradients' size shrinks every step to ~lr x g /
            eps. `lr-too-low` names it (key `eps`). None when unknown.
        adam_betas: the (beta_1, beta_2) pairs of the Adam-family optimizers (torch's Adam,
            AdamW, NAdam, RAdam, one per parameter group; Keras' Adam, AdamW, Nadam), read at
            train start. `lr-too-high` judges them (key `betas`). None when unknown or not an Adam.
        steps_are_updates: True where each step of the run is one optimizer update the adapter
            counted (the live callbacks), so a run of one update an epoch (Lightning's
            `limit_train_batches=0.1` on a small set, `overfit_batches=1`) is told apart from a
            log whose x axis counts epochs, where the epochs stand for the updates. None when
            unknown (a log read back, a hand-written loop's `Monitor`).
    """

    task: str | None = None
    num_classes: int | None = None
    total_steps: int | None = None
    max_epochs: int | None = None
    has_scheduler: bool | None = None
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    loss: str | None = None
    early_stop: EarlyStop | None = None
    zeroes_gradients: bool | None = None
    grad_clip: float | None = None
    class_weights: dict[int, float] | None = None
    ignored_class: int | None = None
    train_mode_at_validation: tuple[str, ...] | None = None
    eval_mode_at_training: tuple[str, ...] | None = None
    eval_mode_since: tuple[int, int] | None = None
    pretrained: bool | None = None
    augmented_train: bool | None = None
    several_objectives: bool | None = None
    loss_summed_over: int | None = None
    plateau_scheduler: bool | None = None
    plateau_monitors: tuple[tuple[str, str], ...] | None = None
    stop_monitors: tuple[tuple[str, str, str], ...] | None = None
    loss_unmatched: bool | None = None
    target_is_input: bool | None = None
    embedding_rows: int | None = None
    input_rescale: InputRescale | None = None
    lr_logged_every: int | None = None
    conv_input: tuple[str, tuple[int, ...], str] | None = None
    rate_held_at_zero: tuple[str, ...] | None = None
    group_rates_moved: bool | None = None
    symmetric_units: tuple[tuple[str, int], ...] | None = None
    base_lr: float | None = None
    built_lr: float | None = None
    adam_eps: float | None = None
    adam_step_share: float | None = None
    adam_betas: tuple[tuple[float, float], ...] | None = None
    steps_are_updates: bool | None = None

    def __post_init__(self) -> None:
        """A wrong value is refused here, naming the field: a check reading it would otherwise
        fail and be switched off mid-run. Integers are stored as `int`."""
        from mlcheck import options as opt

        self.task = opt.task(self.task)
        self.num_classes = opt.optional_integer("RunInfo.num_classes", self.num_classes, minimum=1)
        self.total_steps = opt.optional_integer("RunInfo.total_steps", self.total_steps, minimum=0)
        self.max_epochs = opt.optional_integer("RunInfo.max_epochs", self.max_epochs, minimum=0)
        self.embedding_rows = opt.optional_integer("RunInfo.embedding_rows", self.embedding_rows, minimum=1)
        self.lr_logged_every = opt.optional_integer("RunInfo.lr_logged_every", self.lr_logged_every, minimum=1)
        self.has_scheduler = opt.flag("RunInfo.has_scheduler", self.has_scheduler, optional=True)
        self.zeroes_gradients = opt.flag("RunInfo.zeroes_gradients", self.zeroes_gradients, optional=True)
        self.pretrained = opt.flag("RunInfo.pretrained", self.pretrained, optional=True)
        self.augmented_train = opt.flag("RunInfo.augmented_train", self.augmented_train, optional=True)
        self.several_objectives = opt.flag("RunInfo.several_objectives", self.several_objectives, optional=True)
        self.loss_unmatched = opt.flag("RunInfo.loss_unmatched", self.loss_unmatched, optional=True)
        self.target_is_input = opt.flag("RunInfo.target_is_input", self.target_is_input, optional=True)
        self.plateau_scheduler = opt.flag("RunInfo.plateau_scheduler", self.plateau_scheduler, optional=True)
        self.group_rates_moved = opt.flag("RunInfo.group_rates_moved", self.group_rates_moved, optional=True)
        self.steps_are_updates = opt.flag("RunInfo.steps_are_updates", self.steps_are_updates, optional=True)
        if self.rate_held_at_zero is not None and not (
            isinstance(self.rate_held_at_zero, tuple) and all(isinstance(p, str) for p in self.rate_held_at_zero)
        ):
            raise TypeError(
                f"RunInfo.rate_held_at_zero must be None or a tuple of module paths, got {self.rate_held_at_zero!r}"
            )
        self.loss_summed_over = opt.optional_integer("RunInfo.loss_summed_over", self.loss_summed_over, minimum=1)
        if not isinstance(self.higher_is_better, dict) or not all(
            isinstance(k, str) and isinstance(v, (bool, np.bool_)) for k, v in self.higher_is_better.items()
        ):
            raise TypeError(
                f"RunInfo.higher_is_better must map metric names to True or False, got {self.higher_is_better!r}"
            )
        opt.optional_text("RunInfo.loss", self.loss)
        if isinstance(self.input_rescale, tuple) and len(self.input_rescale) == 3:
            self.input_rescale = InputRescale(*self.input_rescale)
        if self.input_rescale is not None and not (
            isinstance(self.input_rescale, InputRescale) and isinstance(self.input_rescale.layer, str)
        ):
            raise TypeError(
                "RunInfo.input_rescale must be None, an InputRescale or (scale, offset, layer description), "
                f"got {self.input_rescale!r}"
            )
        if self.conv_input is not None and not (
            isinstance(self.conv_input, tuple)
            and len(self.conv_input) == 3
            and isinstance(self.conv_input[0], str)
            and isinstance(self.conv_input[1], tuple)
            and self.conv_input[2] in ("channels_last", "channels_first")
        ):
            raise TypeError(
                "RunInfo.conv_input must be None or (layer description, per-sample input shape, "
                f"'channels_last' or 'channels_first'), got {self.conv_input!r}"
            )
        if self.symmetric_units is not None and not (
            isinstance(self.symmetric_units, tuple)
            and all(
                isinstance(u, tuple) and len(u) == 2 and isinstance(u[0], str) and isinstance(u[1], int)
                for u in self.symmetric_units
            )
        ):
            raise TypeError(
                f"RunInfo.symmetric_units must be None or a tuple of (module path, units), got {self.symmetric_units!r}"
            )
        if self.stop_monitors is not None and not (
            isinstance(self.stop_monitors, tuple)
            and all(
                isinstance(m, tuple) and len(m) == 3 and all(isinstance(part, str) for part in m)
                for m in self.stop_monitors
            )
        ):
            raise TypeError(
                "RunInfo.stop_monitors must be None or a tuple of (callback, metric name, mode) strings, "
                f"got {self.stop_monitors!r}"
            )
        opt.instance("RunInfo.early_stop", self.early_stop, EarlyStop, optional=True)
        self.grad_clip = opt.optional_number("RunInfo.grad_clip", self.grad_clip)
        self.base_lr = opt.optional_number("RunInfo.base_lr", self.base_lr)
        self.built_lr = opt.optional_number("RunInfo.built_lr", self.built_lr)
        self.adam_eps = opt.optional_number("RunInfo.adam_eps", self.adam_eps)
        self.adam_step_share = opt.optional_number("RunInfo.adam_step_share", self.adam_step_share)
        if self.adam_betas is not None and not (
            isinstance(self.adam_betas, tuple)
            and all(
                isinstance(b, tuple) and len(b) == 2 and all(isinstance(x, float) for x in b) for b in self.adam_betas
            )
        ):
            raise TypeError(
                f"RunInfo.adam_betas must be None or a tuple of (beta_1, beta_2) floats, got {self.adam_betas!r}"
            )
        if self.ignored_class is not None and (
            isinstance(self.ignored_class, bool) or not isinstance(self.ignored_class, (int, np.integer))
        ):
            raise TypeError(f"RunInfo.ignored_class must be None or an int, got {self.ignored_class!r}")
        if self.class_weights is not None and not (
            isinstance(self.class_weights, dict)
            and all(
                isinstance(k, (int, np.integer)) and isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                for k, v in self.class_weights.items()
            )
        ):
            raise TypeError(
                f"RunInfo.class_weights must map class labels (int) to weights (numbers), got {self.class_weights!r}"
            )

    def chance_level(self) -> tuple[float, str] | None:
        """(the training loss of a uniform guess in the loss's own units, how it was got) for a
        classification with C known classes: ln(C), times `loss_summed_over` for a loss summed
        over the batch's rows (a summed loss's level is that many times a per-sample one: set
        against ln(C) alone, a well-trained model would look confidently wrong). None otherwise
        (`mlcheck.task.chance_loss`)."""
        from mlcheck.task import chance_loss

        chance = chance_loss(self.task, self.num_classes, self.loss)
        if chance is None:
            return None
        rows = self.loss_summed_over
        if rows is not None and rows > 1:
            return chance * rows, f"ln({self.num_classes}) x {rows} rows summed = {chance * rows:.4g}"
        return chance, f"ln({self.num_classes}) = {chance:.4g}"


@dataclass
class BatchObservation:
    """A (sampled) batch of inputs and targets as numpy arrays.

    Attributes:
        inputs: array of shape (batch, ...); None when the inputs are not arrays.
        targets: array of shape (batch, ...) or None.
        split: "train" or "val".
        step: global step, or None.
        epoch: epoch, or None.
        index: running number of this batch within its split and epoch (0 for the first).
        input_kind: "embedding_ids" when the model feeds inputs to an embedding lookup,
            "rescaled" when the model rescales them itself (e.g. a Rescaling layer), else None.
        parts: for consecutive batches merged into one observation (`Monitor.log_batch(...,
            defer=True)`): (first row, index, step) of each; empty for a single batch, whose
            `index` and `step` are its own (merged: the first batch's index, the last's step).
        full_pass: handed over by a full pass over the data (`Monitor.log_batch(defer=True)`),
            whose per-sample cost must not grow with a sample's size: checks look at the
            `input_probe` of large samples there, not at every value.
        probe: in a full pass over large samples, for the checks that read no more of them
            (`Check.reads_probe`): the inputs' probe rows, `inputs` being None.
        sample_values: with `probe`: how many values each whole sample holds (a probe's
            fingerprint covers the sample's length).
    """

    inputs: np.ndarray | None
    targets: np.ndarray | None
    split: str = "train"
    step: int | None = None
    epoch: int | None = None
    index: int = 0
    input_kind: str | None = None
    parts: tuple[tuple[int, int, int | None], ...] = ()
    full_pass: bool = False
    probe: np.ndarray | None = None
    sample_values: int | None = None
    _probes: dict = field(default_factory=dict, repr=False, compare=False)  # probes, fingerprints

    def input_probe(self, probe_values: int | None, probe_above: int = 0) -> np.ndarray:
        """The inputs as one row per sample, narrowed to `probe_values` seeded positions when a
        sample holds more than `probe_values` and `probe_above` values
        (`mlcheck.checks.hashing.probe_rows`); gathered once per observation and shared by
        the checks that ask for the same probe. The `probe` itself where the inputs are not
        kept."""
        if self.inputs is None:
            return self.probe
        probe = self._probes.get((probe_values, probe_above))
        if probe is None:  # the first check to ask (full-pass batches: the monitor) gathers it
            from mlcheck.checks.hashing import probe_rows

            probe = self._probes[probe_values, probe_above] = probe_rows(self.inputs, probe_values, probe_above)[0]
        return probe

    def class_counts(self, run: RunState | None, max_classes: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The targets' class labels (`mlcheck.checks.data.class_labels`) as (classes, counts),
        None when they are no class labels or none are left; counted once per observation and
        shared by the checks that count labels (`loss-plateau`, `label-shift`)."""
        key = ("class_counts", run.info.task if run is not None else None, max_classes)
        if key not in self._probes:
            from mlcheck.checks.data import class_labels

            labels = class_labels(self.targets, run, max_classes)
            counted = None if labels is None or not labels.size else np.unique(labels, return_counts=True)
            self._probes[key] = counted
        return self._probes[key]

    def target_entropy(self, target_is_input: bool = False) -> tuple[float, int] | None:
        """(sum over the target values of their binary entropy, the values' count), None where the
        targets are not floats in [0, 1]: a binary cross-entropy's floor (`soft_target_entropy`)
        over a pass is the first summed over the second; 0 for hard 0/1 labels. Where
        `target_is_input` (`RunInfo.target_is_input`: an autoencoder's batch of inputs alone), the
        inputs (or their probe, a seeded sample of their positions) are the targets. Computed once
        per observation and shared by the checks that ask (`FirstPassLabels`)."""
        if "target_entropy" not in self._probes:
            from mlcheck.task import soft_target_entropy

            y = self.targets
            if y is None and target_is_input:
                y = self.inputs if self.inputs is not None else self.probe
            mean = soft_target_entropy(y) if y is not None and y.dtype.kind == "f" else None
            hard = mean is None and y is not None and y.dtype.kind == "f" and y.size and _zero_one(y)
            self._probes["target_entropy"] = (
                (mean * y.size, int(y.size)) if mean is not None else (0.0, int(y.size)) if hard else None
            )
        return self._probes["target_entropy"]

    def input_fingerprints(self) -> np.ndarray:
        """`fingerprints(inputs)`: one per sample, of every value (`mlcheck.checks.hashing`);
        computed once per observation and shared by the checks that ask."""
        from mlcheck.checks.hashing import fingerprints

        if "fingerprints" not in self._probes:
            self._probes["fingerprints"] = fingerprints(self.inputs)
        return self._probes["fingerprints"]

    def computed_fingerprints(self) -> np.ndarray | None:
        """`input_fingerprints()` where a check has asked for them already, else None (nothing
        is hashed here)."""
        return self._probes.get("fingerprints")

    def part_at(self, row: int) -> BatchObservation:
        """The original batch that holds `row` of a merged observation (itself when single)."""
        if not self.parts:
            return self
        starts = [start for start, _, _ in self.parts]
        k = int(np.searchsorted(starts, row, side="right")) - 1
        start, index, step = self.parts[k]
        end = self.parts[k + 1][0] if k + 1 < len(self.parts) else None
        return BatchObservation(
            inputs=None if self.inputs is None else self.inputs[start:end],
            targets=None if self.targets is None else self.targets[start:end],
            probe=None if self.probe is None else self.probe[start:end],
            sample_values=self.sample_values,
            split=self.split,
            step=step,
            epoch=self.epoch,
            index=index,
            input_kind=self.input_kind,
            full_pass=self.full_pass,
        )


class RunState:
    """The curves of one run as bounded `Series`, plus where the run is now.

    Step-level series use the global step as x; epoch-level series use the epoch.
    Metric series are created on first use and keyed by name as logged ("val_accuracy"), at most
    `MAX_METRICS` per split: memory stays bounded when a name changes every epoch.
    """

    #: Metric series kept per split (~16 KB each); later new names are ignored, with one log
    #: record. Far above the few dozen metrics a real run logs.
    MAX_METRICS = 256
    #: epochs whose validation rows' own losses are kept (`val_rows_by_epoch`): at most
    #: `RowLosses.PAIRED_MAX_ROWS` rows each, so no more than 12 MB
    VAL_ROW_EPOCHS = 1000

    def __init__(self, info: RunInfo | None = None, capacity: int = 256) -> None:
        self.info = info or RunInfo()
        self._capacity = capacity
        self.train_loss = Series(capacity)  # per step
        self.lr = Series(capacity)  # per step
        self.update_ratio = Series(capacity)  # per step it was measured, log10(|dW|/|W|)
        self.grad_norm = Series(capacity)  # per step it was measured (the step after a scan)
        self.grad_cosine = Series(capacity)  # cosine of that step's gradient with the previous step's
        # gradients found in .grad at the first backward after an optimizer step (sampled steps),
        # and the fresh gradient that backward added: a leftover means nothing zeroed them
        self.leftover_grad_norm = Series(capacity)
        self.fresh_grad_norm = Series(capacity)
        self.epoch_train_loss = Series(capacity)  # per epoch
        self.val_loss = Series(capacity)  # per epoch
        self.train_metrics: dict[str, Series] = {}
        self.val_metrics: dict[str, Series] = {}
        self.epoch_step: dict[int, int] = {}  # last step of each recent epoch (bounded)
        self.step: int | None = None
        self.epoch: int | None = None
        self.extras: dict[str, Any] = {}  # latest adapter-provided facts
        self._metrics_full: set[str] = set()  # splits whose cap was reported
        self.layers = LayerHistory()  # recent per-layer statistics (sampled steps)
        self.samples: SampleStore | None = None  # per-sample outputs (`Monitor.log_samples`)
        #: the latest validation pass's per-row losses (`RowLosses`), where an adapter took them
        self.val_row_losses: RowLosses | None = None
        #: the passes whose rows' own losses were kept (`RowLosses.losses`), by epoch, the
        #: latest `VAL_ROW_EPOCHS`: what pairs the best epoch's rows with the latest's
        self.val_rows_by_epoch: dict[int, RowLosses] = {}
        #: the run's samples.csv: where the live core writes it at the end, or the one analyze
        #: read; None where no file is written (a plain `Monitor`)
        self.samples_csv: Path | None = None

    def metric(self, split: str, name: str) -> Series | None:
        """The series of metric `name` in `split`, created on first use; None for a new name
        once the split holds `MAX_METRICS`."""
        table = self.val_metrics if split == "val" else self.train_metrics
        series = table.get(name)
        if series is None:
            if len(table) >= self.MAX_METRICS:
                if split not in self._metrics_full:
                    self._metrics_full.add(split)
                    logger.warning(
                        "mlcheck: %s metric %r and any later new metric names are ignored: %d %s metrics are "
                        "watched already (a name that changes every epoch?)",
                        split,
                        name,
                        self.MAX_METRICS,
                        split,
                    )
                return None
            series = table[name] = Series(self._capacity)
        return series

    def note_epoch_step(self, epoch: int, step: int | None) -> None:
        if step is None:
            return
        self.epoch_step[epoch] = step
        if len(self.epoch_step) > 4 * self._capacity:
            for old in sorted(self.epoch_step)[: len(self.epoch_step) // 2]:
                del self.epoch_step[old]

    def state_dict(self) -> dict:
        return {
            "series": {
                name: getattr(self, name).state_dict()
                for name in (
                    "train_loss",
                    "lr",
                    "update_ratio",
                    "grad_norm",
                    "grad_cosine",
                    "leftover_grad_norm",
                    "fresh_grad_norm",
                    "epoch_train_loss",
                    "val_loss",
                )
            },
            "train_metrics": {k: s.state_dict() for k, s in self.train_metrics.items()},
            "val_metrics": {k: s.state_dict() for k, s in self.val_metrics.items()},
            "epoch_step": dict(self.epoch_step),
            "step": self.step,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        for name, s in state["series"].items():
            getattr(self, name).load_state_dict(s)
        for split, table in (("train", state["train_metrics"]), ("val", state["val_metrics"])):
            for k, s in table.items():
                series = self.metric(split, k)
                if series is not None:
                    series.load_state_dict(s)
        self.epoch_step = {int(k): v for k, v in state["epoch_step"].items()}
        self.step = state["step"]
        self.epoch = state["epoch"]


def _zero_one(y: np.ndarray) -> bool:
    """Whether every value is exactly 0 or 1 (hard binary labels: a cross-entropy floor of 0)."""
    return bool(np.all((y == 0) | (y == 1)))
