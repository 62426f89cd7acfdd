"""The class prior as a baseline: what a model that ignores its inputs scores on validation.

A classifier whose predictions do not depend on the label (labels shuffled apart from the inputs,
a wrong label column) learns the training label shares at best. On a validation set its expected
loss is then at least the entropy of the validation labels (Jensen's and Gibbs' inequalities: no
prediction independent of the label scores a lower log-loss), and its expected accuracy at most
the share of the most frequent validation class. `loss-plateau` compares a run's validation
curves with these numbers, allowing for what chance adds on a finite validation set
(`prior_beaten`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.task import BINARY_LOSSES, chance_loss, loss_family

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mlcheck.run import BatchObservation, RunState

#: Losses whose value for a prediction of the class shares is their cross-entropy with the labels
#: (log-losses without focusing or margins): a validation loss of these can be set against the prior.
LOG_LOSSES = frozenset(
    {
        "cross_entropy",
        "nll",
        "sparse_categorical_crossentropy",
        "categorical_crossentropy",
        "bce",
        "bce_with_logits",
        "binary_crossentropy",
    }
)

# plain accuracy (the share of samples right), as Keras and users name it; balanced or top-k
# accuracies have other baselines
_ACCURACY = re.compile(r"^(?:val[_/.\-])?(?:binary_|categorical_|sparse_categorical_)?acc(?:uracy)?$", re.IGNORECASE)


def is_plain_accuracy(name: str) -> bool:
    """True for "val_accuracy", "val_acc", "val_binary_accuracy", ...; False for balanced or
    top-k accuracies, whose chance level is not the majority rate."""
    return bool(_ACCURACY.match(name))


class FirstPass:
    """One split's first epoch: which batches belong to it, and whether they were seen without a
    gap (batch indices 0, 1, 2, ... in order: a full pass, not a sample of batches). What a
    check counts over that pass (`PassCounts`, `train-val-gap`'s validation rows) builds on it."""

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.next_index = 0
        self.contiguous = True

    def take(self, batch: BatchObservation) -> bool:
        """Whether `batch` belongs to the first epoch (its indices then extend the pass)."""
        if self.epoch is None:
            self.epoch = batch.epoch
        if batch.epoch != self.epoch:
            return False  # the first epoch's pass only: later epochs see the same data again
        indices = [index for _, index, _ in batch.parts] or [batch.index]
        for index in indices:
            self.contiguous &= index == self.next_index
            self.next_index = index + 1
        return True

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "next": self.next_index, "ok": self.contiguous}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.next_index, self.contiguous = state["epoch"], int(state["next"]), bool(state["ok"])


class PassCounts(FirstPass):
    """Class counts of one split's first epoch (`FirstPass`)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[int, int] = {}

    def add(self, batch: BatchObservation, classes: np.ndarray, counts: np.ndarray) -> None:
        """Adds a batch's class counts (`BatchObservation.class_counts`)."""
        if not self.take(batch):
            return
        for v, c in zip(classes.tolist(), counts.tolist()):
            self.counts[v] = self.counts.get(v, 0) + c

    def state_dict(self) -> dict:
        return {**super().state_dict(), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.counts = {int(k): int(v) for k, v in state["counts"].items()}

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class PassMoments(FirstPass):
    """The count, sum and sum of squares of one split's regression targets over its first
    epoch (`FirstPass`), their range, and whether they came in ascending or descending order
    (`label-shift`'s `target-sorted`: a split of data sorted by its target)."""

    def __init__(self) -> None:
        super().__init__()
        self.n, self.total, self.squares = 0, 0.0, 0.0
        self.low, self.high = math.inf, -math.inf
        self.rising = self.falling = True  # every value so far >= (<=) the one before, in pass order
        self._previous: float | None = None

    def add(self, batch: BatchObservation, values: np.ndarray) -> None:
        if not self.take(batch):
            return
        self.n += int(values.size)
        self.total += float(values.sum())
        self.squares += float(np.square(values).sum())
        if values.size:
            self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))
            if self.rising or self.falling:
                steps = np.diff(values if self._previous is None else np.concatenate(([self._previous], values)))
                self.rising = self.rising and bool(np.all(steps >= 0))
                self.falling = self.falling and bool(np.all(steps <= 0))
            self._previous = float(values[-1])

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def std(self) -> float:
        return math.sqrt(max(self.squares / self.n - self.mean**2, 0.0))

    def state_dict(self) -> dict:
        order = {"low": self.low, "high": self.high, "rising": self.rising, "falling": self.falling}
        return {**super().state_dict(), "n": self.n, "total": self.total, "squares": self.squares, **order}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.n, self.total, self.squares = int(state["n"]), float(state["total"]), float(state["squares"])
        # a state saved before the range was kept: unknown order, so `target-sorted` stays silent
        self.low, self.high = float(state.get("low", math.inf)), float(state.get("high", -math.inf))
        self.rising, self.falling = bool(state.get("rising", False)), bool(state.get("falling", False))


#: Target values whose entropy makes a binary cross-entropy's floor (`FirstPassLabels.soft_floor`):
#: the first 1,000,000 of the training pass (40 MNIST batches of 32). The mean's standard error is
#: then under 1e-3 of ln 2, far below `loss-plateau`'s `min_drop`; counted with callgrind at ~183
#: instructions a value (fa26), a whole MNIST epoch's 47M values would cost ~8.6e9 once.
SOFT_FLOOR_VALUES = 1_000_000


class FirstPassLabels:
    """The class counts of the first pass over the training and the validation data
    (`PassCounts` of each), as `loss-plateau` and `label-shift` both need them; a batch's labels
    are counted once however many checks ask (`BatchObservation.class_counts`).

    Args:
        max_classes: targets with more distinct labels than this are not class labels.
    """

    def __init__(self, max_classes: int) -> None:
        self.max_classes = max_classes
        self.train = PassCounts()
        self.val = PassCounts()
        # a binary cross-entropy's targets over the training pass: (sum of their entropies, values)
        self.target_entropy = (0.0, 0)

    def add(self, batch: BatchObservation, run: RunState) -> bool:
        """Counts a batch's class labels into its split's pass; False when it held none. For a
        binary cross-entropy, also sums the training targets' entropy (`soft_floor`)."""
        if batch.split == "train" and run.info.loss in BINARY_LOSSES and self.target_entropy[1] < SOFT_FLOOR_VALUES:
            got = batch.target_entropy(run.info.target_is_input is True)
            if got is not None:
                self.target_entropy = (self.target_entropy[0] + got[0], self.target_entropy[1] + got[1])
        counted = batch.class_counts(run, self.max_classes)
        if counted is None:
            return False
        (self.val if batch.split == "val" else self.train).add(batch, *counted)
        return True

    def soft_floor(self) -> float | None:
        """The least mean loss a binary cross-entropy can reach on the training targets seen:
        their mean binary entropy (`soft_target_entropy`: BCE(y, p) >= H(y)); None where no
        target lay strictly between 0 and 1 (hard labels: floor 0) or none was seen."""
        total, n = self.target_entropy
        return total / n if n and total > 0 else None

    def state_dict(self) -> dict:
        return {
            "train": self.train.state_dict(),
            "val": self.val.state_dict(),
            "target_entropy": list(self.target_entropy),
        }

    def load_state_dict(self, state: dict) -> None:
        self.train.load_state_dict(state["train"])
        self.val.load_state_dict(state["val"])
        total, n = state.get("target_entropy", (0.0, 0))  # states saved before fa26 have none
        self.target_entropy = (float(total), int(n))


def fall_above_floor(initial: float, level: float, floor: float | None) -> float:
    """How far the loss fell from `initial` to `level`, as a fraction of the fall it had room
    for: (initial - level) / (initial - floor), `floor` the least loss the targets allow (a
    binary cross-entropy's on soft targets: `FirstPassLabels.soft_floor`), 0 where unknown. NaN
    where the loss started at or below its floor (nothing to measure)."""
    base = initial - (floor or 0.0)
    return (initial - level) / base if base > 0 else math.nan


def label_entropy(counts: Iterable[int]) -> float:
    """The entropy (nats) of the label shares that `counts` give: the loss of predicting them."""
    c = np.fromiter(counts, dtype=np.float64)
    p = c[c > 0] / c.sum()
    return float(-(p * np.log(p)).sum())


#: A classification loss that starts below this fraction of the loss an untrained classifier
#: starts at comes from trained weights. A freshly initialised classifier predicts about
#: uniformly, so its loss starts at about ln(C) (Karpathy, "A Recipe for Training Neural
#: Networks", 2019: "verify loss @ init"), at or above the entropy of the training labels; half
#: of the smaller is no untrained network's start, and a run that got there within its first 10
#: steps has fallen a lot anyway.
TRAINED_START_FRACTION = 0.5


#: Standard errors by which the first steps' mean loss must sit below the floor of an untrained
#: classifier to show trained weights: the curve checks' `z` (3).
TRAINED_START_Z = 3.0


def starts_trained(
    run: RunState,
    initial: float,
    train_entropy: float | None = None,
    fraction: float = TRAINED_START_FRACTION,
    start: tuple[float, float] | None = None,
) -> bool:
    """Whether the run starts from trained weights, whose loss starts near its floor: how little
    it fell from there says nothing about a stall or a small learning rate. The one fact behind
    every rule that judges a loss by its fall from its first value (`loss-plateau` away from the
    chance level, `lr-too-low`'s slow fall).

    True when `RunInfo.pretrained` says so, or, since weights restored with `load_state_dict`
    leave no other trace, for a classification run whose `initial` loss (the first 10 steps, or
    the first epoch) sits below `fraction` x the smaller of ln(C) (C known) and `train_entropy`,
    the entropy of the training labels (the loss of predicting the class shares), whichever are
    known.

    Also True where `start` (the mean loss of the first 10 steps, from the first, and its
    standard error: `TrainCurve.start`) sits below that floor by more than `TRAINED_START_Z`
    standard errors and 2% of the floor: a prediction that ignores the labels scores at least
    the labels' entropy in expectation (Gibbs' inequality), whatever its weights, so only
    weights that know the task start clearly below it (a fine-tune from weights trained
    part-way: 0.58 x ln(4)), or a run that learned it within 10 steps, whose rate is no
    small one. `lr-too-low` passes it; `loss-plateau`, which judges a stall after such a fast
    start, does not."""
    if run.info.pretrained:
        return True
    if run.info.task != "classification" or not math.isfinite(initial):
        return False
    chance = chance_loss(run.info.task, run.info.num_classes, run.info.loss)
    floors = [v for v in (chance, train_entropy) if v is not None and v > 0]
    if not floors:
        return False
    floor = min(floors)
    if initial < fraction * floor:
        return True
    if start is None or not all(math.isfinite(v) for v in start):
        return False
    short = floor - start[0]
    return short > TRAINED_START_Z * start[1] and short > 0.02 * floor


def weighted_prior_loss(counts: dict[int, int], weights: dict[int, float]) -> float | None:
    """The least training loss a prediction that ignores the inputs can reach under a log-loss
    weighted per class (`weights`, by class label) on labels counted as `counts`: the best
    constant prediction gives class c the weighted share s_c = n_c w_c / sum(n w), and scores the
    entropy H(s) of those shares, times the mean weight per row where the loss is divided by the
    rows (Keras' `class_weight=`, `sum_over_batch_size`) rather than by the weights' sum
    (torch's `CrossEntropyLoss(weight=)`). The larger of the two is returned: a stall below it
    learned something, under either convention. Balanced weights give ln(C) under both. None
    where a counted class has no weight (the weights cannot be for these labels)."""
    if not counts or any(c not in weights for c in counts):
        return None
    n = np.array([counts[c] for c in counts], dtype=np.float64)
    w = np.array([float(weights[c]) for c in counts], dtype=np.float64)
    mass = n * w
    if not np.all(np.isfinite(mass)) or mass.sum() <= 0:
        return None
    shares = mass[mass > 0] / mass.sum()
    entropy = float(-(shares * np.log(shares)).sum())
    return entropy * max(1.0, float(mass.sum() / n.sum()))


#: An unnamed loss whose first steps sit above this multiple of ln(C) is on another scale than
#: a cross-entropy over the C outputs. A default-initialised classifier's cross-entropy starts
#: within a few percent of ln(C) (Karpathy, "verify loss @ init"; `loss-at-init`: an MLP on
#: digits starts at 2.38 against 2.30), and a loss weighted per class inside the step stalls
#: up to `PRIOR_CEILING` (1.25) x the labels' entropy: the same margin.
UNNAMED_SCALE_FACTOR = 1.25


def unnamed_off_scale(run: RunState, start: tuple[float, float] | None) -> bool:
    """Whether ln(C) (and the labels' entropy) is not the level this run's loss takes when the
    model ignores its inputs: the adapter could name no loss of a known family (the training loss
    is none of the common losses of the outputs and targets, nor a multiple: a contrastive
    InfoNCE over the batch, a triplet or metric-learning loss), and `start` (the mean loss of the
    first 10 steps, from the first, and its standard error: `TrainCurve.start`) sits above
    `UNNAMED_SCALE_FACTOR` x ln(C) by more than `TRAINED_START_Z` standard errors. A cross-entropy
    the adapter named keeps its chance level whatever its start (a confidently wrong
    initialisation is `loss-at-init`'s business), and so does an unnamed loss that starts near
    ln(C) (a hand-written or label-smoothed cross-entropy)."""
    if loss_family(run.info.loss) is not None or start is None or not all(math.isfinite(v) for v in start):
        return False
    level = run.info.chance_level()
    if level is None:
        return False
    excess = start[0] - UNNAMED_SCALE_FACTOR * level[0]
    return excess > TRAINED_START_Z * start[1]


#: A classifier's cross-entropy before any update sits near ln(C) (Karpathy, "verify loss @ init");
#: twice that at the first step is no such start: the same factor as `lr-too-high`'s
#: `chance_factor`, the level no working classifier stays above.
OFF_CHANCE_FACTOR = 2.0


def starts_off_chance(run: RunState, factor: float = OFF_CHANCE_FACTOR) -> float | None:
    """The training loss at the run's first step (before any update), in multiples of ln(C),
    when that is above `factor`; None otherwise, and None where no C or no first step is known.

    A loss that starts there before any update is not the plain cross-entropy over C classes
    that the chance level describes (distillation's KL scaled by T^2, several summed terms,
    an auxiliary loss added), or comes from a confidently wrong initialisation (`loss-at-init`).
    Either way no learning rate put it there, and it is on another scale than a validation
    cross-entropy: the rules that read the training loss against ln(C) or against the
    validation loss stand down. A loss summed over the batch's rows is judged against ln(C) times
    those rows (`RunInfo.chance_level`), its own scale."""
    level = run.info.chance_level()
    first = run.train_loss.first_value
    if level is None or first is None or not run.train_loss.finite_count:
        return None
    chance = level[0]
    if run.train_loss.buckets(include_open=True)["x0"][0] > 1:
        return None  # logged from a later step (a log replayed): not the loss before any update
    ratio = first / chance
    return ratio if ratio > factor else None


@dataclass(frozen=True)
class ClassPrior:
    """The scores of predicting the training label shares for every validation sample.

    Attributes:
        loss: the validation loss of that prediction: the cross-entropy of the validation labels
            under the training shares (the training labels' entropy when both splits are alike).
        entropy: the entropy of the training labels (nats): the training loss of the prediction.
        val_entropy: the entropy of the validation labels: the least validation loss of any
            prediction that ignores the inputs (at most `loss`; they differ by the splits'
            sampling difference).
        majority_class: the most frequent validation class.
        majority_rate: its validation share: the accuracy of always predicting it.
        n_val: validation samples counted.
    """

    loss: float
    entropy: float
    val_entropy: float
    majority_class: int
    majority_rate: float
    n_val: int

    @classmethod
    def of(cls, train: dict[int, int], val: dict[int, int]) -> ClassPrior | None:
        """From class counts; None with fewer than two training classes, no validation labels,
        or a validation class training never saw (its prior share is 0: `label-shift`'s case)."""
        n_train, n_val = sum(train.values()), sum(val.values())
        if len(train) < 2 or n_train <= 0 or n_val <= 0 or any(c not in train for c in val):
            return None
        q = np.array([val[c] / n_val for c in val])
        loss = float(-(q * np.log([train[c] / n_train for c in val])).sum())
        majority = max(val, key=lambda c: (val[c], -c))
        return cls(
            loss, label_entropy(train.values()), label_entropy(val.values()), majority, val[majority] / n_val, n_val
        )

    def loss_bound(self, z: float) -> float:
        """The lowest validation loss a model that ignores its inputs reaches by chance on these
        `n_val` samples (z standard errors): `val_entropy` less z^2 / (2n). The validation labels
        are fixed, so only outputs that vary from sample to sample at random move its loss: by a
        second-order expansion of the log-loss around its mean output, output noise of variance
        u (in that output's Fisher metric) raises the mean loss by u / 2 and lets it fall by
        z sqrt(u / n) at z standard errors; the fall beats the rise by at most z^2 / (2n), at
        u = z^2 / n."""
        return self.val_entropy - z * z / (2 * self.n_val)

    def accuracy_margin(self, z: float) -> float:
        """z binomial standard errors of the majority rate over `n_val` samples."""
        m = self.majority_rate
        return z * math.sqrt(m * (1 - m) / self.n_val)


@dataclass(frozen=True)
class PriorComparison:
    """A run's best validation scores against the class prior's (`prior_beaten`)."""

    best_loss: float
    loss_bound: float  # the prior's loss less its noise margin: a loss below it beats the prior
    best_accuracy: float | None
    accuracy_bound: float | None  # the majority rate plus its noise margin
    loss_beaten: bool
    accuracy_beaten: bool

    @property
    def beaten(self) -> bool:
        return self.loss_beaten or self.accuracy_beaten


def prior_beaten(prior: ClassPrior, best_loss: float, best_accuracy: float | None, z: float) -> PriorComparison:
    """Whether a run's best validation loss (or accuracy, when logged) beat the class prior by
    more than a model that ignores its inputs can by chance on `prior.n_val` samples. A
    non-finite loss counts as not beating it; an accuracy logged in percent is read as such."""
    bound = prior.loss_bound(z)
    acc_bound = acc = None
    acc_beaten = False
    if best_accuracy is not None and math.isfinite(best_accuracy):
        acc = best_accuracy / 100.0 if best_accuracy > 1.5 else best_accuracy
        acc_bound = prior.majority_rate + prior.accuracy_margin(z)
        acc_beaten = acc > acc_bound
    loss_beaten = math.isfinite(best_loss) and best_loss < bound
    return PriorComparison(best_loss, bound, acc, acc_bound, loss_beaten, acc_beaten)
