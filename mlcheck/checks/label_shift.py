"""Label shift: the validation labels are not distributed like the training labels."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.class_prior import FirstPass, FirstPassLabels, PassCounts, PassMoments
from mlcheck.checks.data import chi2_z
from mlcheck.findings import Finding, Severity
from mlcheck.samples import wilson_interval
from mlcheck.task import scale_sensitive_regression

if TYPE_CHECKING:
    from mlcheck.run import BatchObservation, RunState
    from mlcheck.samples import SplitSamples

#: The most over-represented validation classes the message names.
_SHOWN_CLASSES = 5
#: Validation samples of a class needed to judge what it is predicted as (`class-imbalance`'s
#: `min_val`: a rate over fewer is too coarse).
_MIN_CLASS_SAMPLES = 10


@register
class LabelShift(Check):
    """The validation labels are distributed very differently from the training labels.

    What it does:
        Counts the class labels of every batch of the first pass over the training and the
        validation data (integer labels, 0/1 targets or one-hot rows; regression targets are
        ignored) and, once both passes are complete, compares the two class distributions: it
        fires when they differ far beyond sampling noise (a chi-square test of homogeneity, as
        a z score above `z`) and by a large amount (total variation distance above
        `min_distance`: at least that share of the validation labels would have to change class
        to match training). A smaller shift beyond noise fires too where its cause is plain:
        validation classes no training label has (key `unseen-classes`, see `min_expected`).
        A large shift where the training labels are the validation ones moved towards equal
        class shares (over- or undersampling applied to the training split, as it should be;
        see `max_rebalanced_ratio`) is told as INFO, key `rebalanced`.
        Judged only on passes seen batch by batch from the first batch without a gap, so a
        sample of batches from sorted data never raises it.
        Regression targets (a regression loss named, or a run declared a regression): the
        mean and standard deviation of each split's first pass are compared; validation
        targets whose spread differs from training's by `max_target_scale` times or more, or
        whose mean lies that many training standard deviations away, are on another scale
        (key `target-scale`): one split standardised and the other not, or in other units.
        Every validation target beyond every training target (all above its maximum or all
        below its minimum) while the validation targets also came in sorted order (key
        `target-sorted`): the rows were sorted by their target and split by position, as
        `fit(validation_split=0.2)` on sorted data does. Under a split at random the
        validation targets would all land beyond the training range with probability
        1 / C(n_train + n_val, n_val) and in sorted order with 1 / n_val! (below 1e-29 and
        1e-64 with `min_samples`, 50, in each split): no threshold is tuned; either one alone
        (a time split of a trending quantity is beyond the range, not sorted) is not judged.
        Where per-sample outputs are recorded (`noisy-labels` or `weak-slice` on; nothing is
        recorded for this check alone), at the end of the run: a validation class whose samples
        the model predicts as one other class, that class's share above `min_confusion` with 95%
        confidence, while the model fits at least `min_train_accuracy` of its training labels
        (key `mapping-differs`): the two splits' labels went through different mappings.

    Why it matters:
        A validation split that does not look like the training data measures something else:
        with `validation_split=0.2` on data sorted by label, validation holds only the last
        classes, the validation loss rises from the first epoch and the run looks like it is
        overfitting, while the model is simply judged on classes it hardly saw. Early stopping,
        checkpoint selection and tuning then all follow a wrong signal.

    How to fix:
        Split at random, stratified by label: shuffle before splitting
        (`train_test_split(x, y, test_size=0.2, stratify=y)`); Keras' `validation_split`
        takes the last rows before any shuffling, so shuffle the arrays first.

    Example:
        order = np.argsort(y)  # data sorted by label, e.g. read class by class
        x, y = x[order], y[order]
        model.fit(x, y, validation_split=0.2, epochs=20)  # validation: only classes 8 and 9

    Use instead:
        from sklearn.model_selection import train_test_split

        x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, stratify=y)
        model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=20)

    Args:
        min_distance: total variation distance between the two class distributions above
            which the shift is large. Default 0.3: Cohen's effect size w of 0.5 ("large") for
            a two-class table corresponds to a difference of about 0.25 in class shares; a
            random 80/20 split of a few hundred labels stays under ~0.1.
        z: the chi-square test's z score (Wilson-Hilferty) above which the difference is
            beyond sampling noise. Default 5.0, as `class-imbalance`'s and
            `unshuffled-data`'s tests (about p < 3e-7).
        min_samples: labels each split must have before judging. Default 50: Cochran's rule
            of expected counts of about 5 per cell for up to ten classes.
        max_classes: more distinct labels than this are not judged. Default 1000.
        min_confusion: the `mapping-differs` test: the share of a validation class's samples
            predicted as one other class whose Wilson lower bound (95%) must pass this. Default
            0.5: most of the class is read as one other, beyond what confusing two similar
            classes does to a model that generalises (it splits its errors, below half).
        min_train_accuracy: and the training accuracy of the latest epoch must reach this.
            Default 0.9: the model has learned its training labels, so validation's contrary
            answers are consistent reading, not underfitting.
        min_expected: a smaller shift (beyond sampling noise, under `min_distance`) still
            fires, key `unseen-classes`, where a validation class has no training label
            although training, drawn like validation, would hold at least this many of it.
            Default 10: no label where 10 are expected has a Poisson probability of e^-10,
            about 5e-5. A wrong label mapping applied to the training labels only (5-9 ->
            6-9, 0) drops a class from training this way.
        max_target_scale: the `target-scale` ratio of the two splits' regression target
            spreads (or the distance of their means in training standard deviations) at which
            they are on different scales. Default 10: an order of magnitude, as units (cm and
            m) or a standardisation applied to one split give (a diabetes target standardised
            for training and raw for validation: 77x, 152 standard deviations); a random or
            time split of one quantity moves them by a few at most.
        max_rebalanced_ratio: a large shift is INFO, key `rebalanced`, not a WARNING, where the
            training labels are the validation ones resampled towards balance: every class in
            both splits, each training share between its validation share and an equal share,
            and training's distance from equal shares (total variation) at most this times
            validation's. Default 0.5: imbalanced-learn's samplers, which its docs say to apply
            to the training split only, move the classes to equal shares by default
            (`sampling_strategy="auto"`: distance 0) and to a minority at half the majority with
            `sampling_strategy=0.5` (a 9:1 validation mix, distance 0.40, against 0.17);
            a split of sorted data leaves a class out of validation and keeps the WARNING.
    """

    id = "label-shift"
    family = "data"
    severity = Severity.WARNING
    reads_probe = True  # the labels only
    #: the class counts of a whole pass; a sample of batches from sorted data would mislead
    consumes = frozenset({Signal.EVERY_BATCH})
    #: a loader that repeats its first batch shows only that batch's classes
    explained_by = frozenset({"train-val-overlap:one-batch"})

    def __init__(
        self,
        min_distance: float = 0.3,
        z: float = 5.0,
        min_samples: int = 50,
        max_classes: int = 1000,
        min_expected: float = 10.0,
        min_confusion: float = 0.5,
        min_train_accuracy: float = 0.9,
        max_target_scale: float = 10.0,
        max_rebalanced_ratio: float = 0.5,
    ):
        self.max_rebalanced_ratio = max_rebalanced_ratio
        self.max_target_scale = max_target_scale
        self.min_confusion = min_confusion
        self.min_train_accuracy = min_train_accuracy
        self.min_expected = min_expected
        self.min_distance = min_distance
        self.z = z
        self.min_samples = min_samples
        self.max_classes = max_classes
        super().__init__()

    def reset(self) -> None:
        self._labels = FirstPassLabels(self.max_classes)
        # regression targets of each split's first pass (two attributes: each saves itself)
        self._train_targets, self._val_targets = PassMoments(), PassMoments()
        self._judged = False
        self._last: tuple[int | None, int | None] = (None, None)

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        if self._judged:
            return ()
        y = batch.targets
        regression = scale_sensitive_regression(run.info.loss, run.info.task)
        if regression and y is not None and y.size and y.dtype.kind in "fiu":
            values = np.asarray(y, dtype=np.float64).reshape(-1)
            moments = self._val_targets if batch.split == "val" else self._train_targets
            moments.add(batch, values[np.isfinite(values)])
            if batch.split == "val":
                self._last = (batch.step, batch.epoch)
        if self._labels.add(batch, run) and batch.split == "val":
            self._last = (batch.step, batch.epoch)
        return ()

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        # the first epoch's passes over both splits are complete here
        if self._judged or run.epoch is None:
            return ()
        found: list[Finding] = []
        train, val, labels = self._train_targets, self._val_targets, self._labels
        if _pass_over(train, val, run.epoch):
            self._judged = True
            found += self._target_scale(train, val)
            if not found:  # targets on another scale are beyond the training range too: one finding
                found += self._target_sorted(train, val)
        if _pass_over(labels.train, labels.val, run.epoch):
            self._judged = True
            found += self._judge(labels.train, labels.val)
        return found

    def _target_scale(self, train: PassMoments, val: PassMoments) -> Iterable[Finding]:
        """Regression targets of the two splits on different scales (`target-scale`)."""
        if not (train.contiguous and val.contiguous) or min(train.n, val.n) < self.min_samples:
            return
        spread_t, spread_v = train.std, val.std
        if not (spread_t > 0 and spread_v > 0):
            return  # a constant split: nothing to compare scales by
        ratio = max(spread_v / spread_t, spread_t / spread_v)
        distance = abs(val.mean - train.mean) / spread_t
        if ratio < self.max_target_scale and distance < self.max_target_scale:
            return
        step, epoch = self._last
        yield self.finding(
            f"The validation targets are on another scale than the training targets: validation mean "
            f"{val.mean:.4g}, standard deviation {spread_v:.4g}; training mean {train.mean:.4g}, standard deviation "
            f"{spread_t:.4g} ({ratio:.0f}x the spread, the means {distance:.0f} training standard deviations apart): "
            "one split's targets were standardised or converted and the other's not, so the validation loss "
            "measures the wrong units.",
            evidence={
                "train_mean": train.mean,
                "train_std": spread_t,
                "val_mean": val.mean,
                "val_std": spread_v,
                "spread_ratio": ratio,
                "mean_distance_in_train_std": distance,
                "train_targets": train.n,
                "val_targets": val.n,
                "threshold": self.max_target_scale,
            },
            hint="Transform the targets of every split the same way: fit the scaler on the training targets and "
            "apply it to training and validation alike ((y - mean) / std with the training mean and std), and "
            "invert it before reporting errors in the original units.",
            step=step,
            epoch=epoch,
            key="target-scale",
        )

    def _target_sorted(self, train: PassMoments, val: PassMoments) -> Iterable[Finding]:
        """Validation targets all beyond the training range, in sorted order (`target-sorted`):
        data sorted by its target, then split by position (Keras' `validation_split`)."""
        if not (train.contiguous and val.contiguous) or min(train.n, val.n) < self.min_samples:
            return
        if not (train.high > train.low and val.high > val.low):
            return  # a constant split: no order or range to read
        above, below = val.low >= train.high and val.rising, val.high <= train.low and val.falling
        if not (above or below):
            return
        side, order = ("above", "ascending") if above else ("below", "descending")
        step, epoch = self._last
        yield self.finding(
            f"Every validation target lies {side} every training target (validation {val.low:.4g} to "
            f"{val.high:.4g}, training {train.low:.4g} to {train.high:.4g}) and the validation targets come "
            f"in {order} order: the rows were sorted by their target before the split, so the model is "
            "judged only on values it never trained on and the validation loss says nothing of how it "
            "generalises.",
            evidence={
                "train_min": train.low,
                "train_max": train.high,
                "val_min": val.low,
                "val_max": val.high,
                "val_order": order,
                "train_targets": train.n,
                "val_targets": val.n,
                "min_samples": self.min_samples,
            },
            hint="Shuffle the rows before splitting (train_test_split(x, y, test_size=0.2) shuffles; with "
            "fit(validation_split=...) permute x and y together first: Keras takes the last rows unshuffled). "
            "If this is a time split of a quantity that only grows, the model must extrapolate: predict its "
            "change from the last value instead of its level.",
            step=step,
            epoch=epoch,
            key="target-sorted",
        )

    def on_end(self, run: RunState) -> Iterable[Finding]:
        samples = run.samples
        if samples is None:
            return ()  # per-sample outputs not recorded in this run: no confusion to read
        return self._mapping(samples.get("train"), samples.get("val"), run)

    def _mapping(self, train: SplitSamples | None, val: SplitSamples | None, run: RunState) -> Iterable[Finding]:
        """Validation classes read as one other class by a model that fits its training labels."""
        if train is None or val is None or not train.size or not val.size:
            return
        last = train.column("last_epoch")
        latest = last == last.max()
        train_accuracy = float(np.mean(train.column("last_pred")[latest] == train.column("labels")[latest]))
        if train_accuracy < self.min_train_accuracy:
            return  # the model does not fit its own labels: its validation errors say nothing of them
        last = val.column("last_epoch")
        latest = last == last.max()
        labels, predicted = val.column("labels")[latest].astype(np.int64), val.column("last_pred")[latest]
        read_as = []
        for label in np.unique(labels):
            answers = predicted[labels == label]
            others, counts = np.unique(answers[answers != label], return_counts=True)
            if len(answers) < _MIN_CLASS_SAMPLES or not len(counts):
                continue
            k = int(counts.max())
            lower, _ = wilson_interval(k, len(answers))
            if lower > self.min_confusion:
                read_as.append((int(label), int(others[counts.argmax()]), k, len(answers)))
        if not read_as:
            return
        named = ", ".join(f"class {c} as {m} ({k} of {n})" for c, m, k, n in read_as[:_SHOWN_CLASSES])
        yield self.finding(
            f"The model fits {train_accuracy:.0%} of its training labels but predicts the validation samples of "
            f"{named}: the training and validation labels likely went through different mappings (a wrong "
            "dict, an off-by-one, a LabelEncoder fitted twice), so the same number means different classes.",
            evidence={
                "read_as": [{"class": c, "predicted": m, "count": k, "samples": n} for c, m, k, n in read_as],
                "train_accuracy": train_accuracy,
                "min_confusion": self.min_confusion,
            },
            hint="Encode training and validation labels with one mapping, fitted once and applied to both; "
            "print a few (input, label) pairs of each split to see which one is off.",
            step=self._last[0],
            epoch=run.epoch,
            key="mapping-differs",
        )

    def _judge(self, train: PassCounts, val: PassCounts) -> Iterable[Finding]:
        if not (train.contiguous and val.contiguous):
            return  # only a sample of the batches was seen: the counts may not show the split
        if min(train.total, val.total) < self.min_samples:
            return  # too few labels to compare
        classes = sorted(set(train.counts) | set(val.counts))
        if len(classes) < 2 or len(classes) > self.max_classes:
            return
        table = np.array([[split.counts.get(c, 0) for c in classes] for split in (train, val)], dtype=np.float64)
        shares = table / table.sum(axis=1, keepdims=True)
        distance = 0.5 * float(np.abs(shares[0] - shares[1]).sum())
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
        statistic = float(((table - expected) ** 2 / expected).sum())
        z = chi2_z(statistic, len(classes) - 1)
        if not z > self.z:
            return
        if distance <= self.min_distance:
            yield from self._unseen(train, val, classes, z)
            return
        if _rebalanced(shares[0], shares[1], self.max_rebalanced_ratio):
            yield self._rebalanced_info(train, val, classes, shares, distance, z)
            return
        # the classes validation over-represents most, for the message
        excess = shares[1] - shares[0]
        over = sorted(classes[i] for i in np.argsort(-excess)[:_SHOWN_CLASSES] if excess[i] > 0)
        share_val = float(sum(shares[1][classes.index(c)] for c in over))
        share_train = float(sum(shares[0][classes.index(c)] for c in over))
        named = ", ".join(str(c) for c in over)
        step, epoch = self._last
        yield self.finding(
            f"Validation labels are distributed unlike the training labels: class"
            f"{'es' if len(over) > 1 else ''} {named} make up {share_val:.0%} of the validation "
            f"labels but {share_train:.0%} of the training labels (total variation distance "
            f"{distance:.2f}).",
            evidence={
                "total_variation_distance": distance,
                "chi2_z": z if math.isfinite(z) else "inf",
                "train_counts": {str(c): int(train.counts.get(c, 0)) for c in classes},
                "val_counts": {str(c): int(val.counts.get(c, 0)) for c in classes},
                "overrepresented_in_val": over,
                "threshold": self.min_distance,
            },
            hint="Split train and validation at random, stratified by label (train_test_split(..., "
            "stratify=y)); Keras' validation_split takes the last rows unshuffled, so shuffle x and "
            "y before fit.",
            step=step,
            epoch=epoch,
            key="label-shift",
        )

    def _rebalanced_info(
        self, train: PassCounts, val: PassCounts, classes: list[int], shares: np.ndarray, distance: float, z: float
    ) -> Finding:
        """The shift of a training split resampled towards balance: told, as INFO."""
        rare = classes[int(np.argmin(shares[1]))]
        step, epoch = self._last
        return self.finding(
            f"The training labels are more balanced than the validation labels (class {rare}: "
            f"{shares[0][classes.index(rare)]:.0%} of training, {shares[1][classes.index(rare)]:.0%} of "
            f"validation; total variation distance {distance:.2f}), every class moved towards an equal "
            "share: this looks like training data resampled on purpose (over- or undersampling), with "
            "validation kept at the natural class mix, as it should be.",
            evidence={
                "total_variation_distance": distance,
                "chi2_z": z if math.isfinite(z) else "inf",
                "train_counts": {str(c): int(train.counts.get(c, 0)) for c in classes},
                "val_counts": {str(c): int(val.counts.get(c, 0)) for c in classes},
                "max_rebalanced_ratio": self.max_rebalanced_ratio,
            },
            hint="If the resampling is meant, nothing to do; judge the model with metrics that do not "
            "depend on the class mix (per-class recall, AUC), as its probabilities follow the training "
            "mix. Resample after the split, the training part only, so that no copy of a training row "
            "reaches validation.",
            step=step,
            epoch=epoch,
            severity=Severity.INFO,
            key="rebalanced",
        )

    def _unseen(self, train: PassCounts, val: PassCounts, classes: list[int], z: float) -> Iterable[Finding]:
        """A smaller shift whose cause is plain: validation classes that no training label has,
        although the training pass should hold `min_expected` of each."""
        unseen = [
            c
            for c in classes
            if not train.counts.get(c) and train.total * val.counts.get(c, 0) / val.total >= self.min_expected
        ]
        if not unseen:
            return
        named = ", ".join(f"{c} ({val.counts[c]} labels)" for c in unseen)
        step, epoch = self._last
        yield self.finding(
            f"Validation holds class{'es' if len(unseen) > 1 else ''} {named} that none of the {train.total} "
            "training labels has: the model never learns to answer it, and where the training labels went "
            "through a mapping validation did not (a wrong dict, an off-by-one), the same number means "
            "different classes in the two splits, so the validation loss rises as if the model overfitted.",
            evidence={
                "unseen_in_train": unseen,
                "chi2_z": z if math.isfinite(z) else "inf",
                "train_counts": {str(c): int(train.counts.get(c, 0)) for c in classes},
                "val_counts": {str(c): int(val.counts.get(c, 0)) for c in classes},
                "min_expected": self.min_expected,
            },
            hint="Check that training and validation labels go through the same encoding (one label "
            "mapping or LabelEncoder, fitted once and applied to both) and that the split or a filter "
            "did not drop the class from training.",
            step=step,
            epoch=epoch,
            key="unseen-classes",
        )


def _rebalanced(train: np.ndarray, val: np.ndarray, max_ratio: float) -> bool:
    """Whether the training class shares are the validation ones moved towards an equal share:
    every class in both splits, each training share between its validation share and 1/K, and
    training at most `max_ratio` as far from the equal shares as validation (total variation)."""
    if not (train > 0).all() or not (val > 0).all():
        return False  # a class missing from one split is not a resampling of the same classes
    equal = 1.0 / len(train)
    tolerance = 0.02  # a stratified split's rounding of small classes
    towards = (np.minimum(val, equal) - tolerance <= train) & (train <= np.maximum(val, equal) + tolerance)
    far_train = 0.5 * float(np.abs(train - equal).sum())
    far_val = 0.5 * float(np.abs(val - equal).sum())
    return bool(towards.all()) and far_train <= max_ratio * far_val


def _pass_over(train: FirstPass, val: FirstPass, epoch: int) -> bool:
    """Both splits' first passes were seen and are complete by `epoch`'s end."""
    return train.epoch is not None and val.epoch is not None and epoch >= max(train.epoch, val.epoch)
