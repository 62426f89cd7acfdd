"""leakage checks."""

from __future__ import annotations

# -- suspicious-val ----------------------------------------------------------------------------
import math  # noqa: E402
from collections.abc import Iterable, Mapping  # noqa: E402
from statistics import NormalDist  # noqa: E402
from typing import TYPE_CHECKING

import numpy as np  # noqa: E402

from mlcheck.checks.base import Check, Signal, register  # noqa: E402
from mlcheck.checks.class_prior import starts_off_chance  # noqa: E402
from mlcheck.checks.curve import epoch_judgement_due, epoch_train_levels, sig  # noqa: E402
from mlcheck.findings import Finding, Severity  # noqa: E402
from mlcheck.metrics import higher_is_better, is_bounded_score  # noqa: E402

if TYPE_CHECKING:
    from mlcheck.run import RunState


#: two losses closer than this, relative, are the same float32 value: float32 resolves 1.2e-7
#: (2^-23), and Lightning's epoch mean of one value logged at every validation batch is a few
#: roundings off it; two losses of different batches agree this closely about once in 10^6 epochs
_SAME_FLOAT32 = 1e-6

#: a training loss at least this many times the validation loss in every epoch from the first
#: is on another scale: twice the most that dropout or mixup add to a training loss (2-3x,
#: `max_ratio`'s source), so beyond it even where a healthy run's ratio drifts by the factor 2
#: of `_OTHER_SCALE_BAND`; below the batch count of any epoch of 10 batches or more (a
#: `running_loss += loss.item()` never divided by it) and the size ratio of a split of 86/14
#: or finer where both losses are sums over their sets (held-out-12's tomelf, 8.0-8.3x over
#: 1,000 epochs); an 80/20 split summed both ways (4x) stays a leak WARNING: that close to
#: dropout's 2-3x the curves alone cannot tell the two apart. A leak is no constant multiple
#: from the first epoch: before the model has memorised anything its validation loss is no
#: lower than training's, and the ratio grows from there (temkorsh: 3.2x at epoch 1, 5.8x at
#: 5; it stays a WARNING)
_OTHER_SCALE_RATIO = 6.0
#: below this ratio (sv27's floor, kept as it was above it) a leak's first epochs reach (temkorsh
#: 5.8x at epoch 5; benchmarks/study_other_scale.py's `leak6`, 6-9x at epoch 1), so the ratio must
#: also be no higher at the judged epoch than at the first: a training loss taken over an epoch
#: (sum or mean) while the model improves is at its most inflated against an end-of-epoch
#: validation loss in the first epoch, so a fixed multiple holds or falls from there, and a
#: leak's ratio grows as the model learns the validation rows
_OTHER_SCALE_NEAR_LEAK = 10.0
#: and the ratio stays within this factor over every epoch: a sum over N batches against a mean
#: is N x the per-sample ratio of the two splits, which a healthy run moves within a factor 2
#: (qianqing26's 50 epochs, a sum over ~500 batches: 469-578x, a factor 1.23); a leak's ratio
#: grows as the model learns the leaked validation set
_OTHER_SCALE_BAND = math.log(2.0)


@register
class SuspiciousVal(Check):
    """The validation results are implausibly better than the training results.

    What it does:
        Compares train and validation epoch by epoch, skipping the first `skip_epochs`
        (a first epoch's training loss averages over a model that was still bad at its
        start). It fires when, for `patience` epochs in a row, the validation loss is below
        `max_ratio` x the training loss and also below it by more than `min_gap` of the
        initial training loss; or when a validation accuracy-like metric is at least
        `near_perfect` while the same training metric trails it by more than `metric_gap`.
        Easy data, where train and validation are both near perfect, does not fire: the
        absolute gap is then tiny. For a classification with C known, a training loss that
        started above 2 x ln(C) at its first step, before any update, is not compared: it is no
        cross-entropy over C classes (distillation's T^2-scaled KL, summed terms), so not on the
        validation loss's scale. A training loss the adapter measured on the first batch and found
        to be none of the common losses of the outputs and labels (`RunInfo.loss_unmatched`: a
        cross-entropy on a teacher's softened outputs sits at their entropy, a penalty added in
        the step stays) is another objective with a floor of its own: a validation loss far below
        it is an INFO (key `other-objective`). Key `val-is-train-loss`: the validation loss equals the
        training loss of the epoch's last step (to 1e-6, float32 rounding) for `patience`
        epochs in a row, not all one value: validation logs a training loss (a `self.loss`
        that `training_step` set, logged again in `validation_step`). Where the run is known to
        train on inputs augmented far harder than validation's (`RunInfo.augmented_train`:
        Ultralytics YOLO's mosaics, read from its `results.csv`), the loss gap is an INFO.
        Key `train-broken`: the training loss is at least 1000x the validation loss in every
        epoch from the first, its ratio not fixed (not `other-scale`): a leaked or easier set's
        loss is the model's training-set fit, which dropout or mixup put at most 2-3x below the
        training loss, so three orders of magnitude (`loss-divergence`'s `single_spike_factor`)
        from the start name the training loss as broken (blown-up batches, a term or a reduction
        validation lacks), not the validation data.
        Key `other-scale` (INFO): the training loss is at least 6x the validation loss in every
        epoch from the first, the ratio stays within a factor 2, moves less than either curve
        does (the two fall together, one a fixed multiple of the other), and, where it is under
        10x, is no higher than at the first epoch (a leak's ratio grows): two units, such as a
        training loss summed over the epoch's batches against a mean, a mean validation loss
        divided again by the batch size, or both losses summed over sets of different sizes (a
        training set 8x the validation set), not a leak. The ratio and the training steps of an epoch
        (where steps are logged: the batch count, without gradient accumulation) are in its
        evidence; the losses are not compared again, the metrics are.

    Why it matters:
        A model is almost never much better on data it has not trained on. A validation set
        that is easier than training, overlaps it, or whose labels leak into its inputs makes
        the reported metric meaningless.

    How to fix:
        Check how the split is made (duplicates across train and validation, the
        `train-val-overlap` check), that validation labels are not computed from the inputs
        or predictions, and that the validation loss is reduced like the training loss
        (mean vs sum). Strong regularisation (heavy dropout, mixup) can explain a moderate
        gap: suppress the check then.

    Example:
        loss_fn = nn.CrossEntropyLoss()  # the mean over a batch
        for epoch in range(epochs):
            train_loss = train_one_epoch(model, train_loader, loss_fn)
            model.eval()
            val_loss = 0.0
            with torch.no_grad():
                for x, y in val_loader:
                    val_loss += loss_fn(model(x), y).item()
            val_loss /= len(val_loader.dataset)  # by samples: batch_size x too small
            monitor.log_epoch(epoch, train_loss=train_loss, val_loss=val_loss)

    Use instead:
        loss_fn = nn.CrossEntropyLoss()
        for epoch in range(epochs):
            train_loss = train_one_epoch(model, train_loader, loss_fn)
            model.eval()
            val_loss = 0.0
            with torch.no_grad():
                for x, y in val_loader:
                    val_loss += loss_fn(model(x), y).item()
            val_loss /= len(val_loader)  # by batches, like the training loss
            monitor.log_epoch(epoch, train_loss=train_loss, val_loss=val_loss)

    Args:
        max_ratio: validation loss under this fraction of the training loss is suspicious.
            Default 0.25: dropout or mixup rarely inflate the training loss more than 2-3x.
        min_gap: and the difference must exceed this fraction of the initial training loss.
            Default 0.1, which keeps easy, near-perfect runs silent.
        patience: consecutive epochs it must hold. Default 3 (Lightning's EarlyStopping).
        skip_epochs: first epochs to ignore. Default 1.
        near_perfect: a validation accuracy at least this high is near perfect. Default 0.99.
        metric_gap: training accuracy this far below it is suspicious. Default 0.15.
    """

    id = "suspicious-val"
    family = "leakage"
    severity = Severity.WARNING
    explained_by = frozenset({"label-shift"})  # validation of only the easy classes
    findings_split = "val"

    def __init__(
        self,
        max_ratio: float = 0.25,
        min_gap: float = 0.1,
        patience: int = 3,
        skip_epochs: int = 1,
        near_perfect: float = 0.99,
        metric_gap: float = 0.15,
    ) -> None:
        self.max_ratio = max_ratio
        self.min_gap = min_gap
        self.patience = patience
        self.skip_epochs = skip_epochs
        self.near_perfect = near_perfect
        self.metric_gap = metric_gap
        super().__init__()

    def reset(self) -> None:
        self._fired = False
        self._other_scale = False  # `other-scale` said: the two losses are not compared again
        self._copies: list[tuple[int, float]] = []  # (epoch, value): validation loss == last step's loss
        self._copy_fired = False

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        copied = [] if self._copy_fired else self._train_loss_copied(run)
        if self._fired or not epoch_judgement_due(run.val_loss):
            return copied
        found = [] if self._other_scale else self._losses(run)
        if found and found[0].key == "other-scale":
            self._other_scale = True  # the metrics can still tell a leak
            return [*copied, *found]
        found = found or self._metrics(run)
        self._fired = bool(found)
        return [*copied, *found]

    def _train_loss_copied(self, run: RunState) -> list[Finding]:
        """`val-is-train-loss`: the validation loss of `patience` epochs in a row is the training
        loss of the epoch's last step, to float32 rounding, and not one constant value."""
        val, train = run.val_loss, run.train_loss
        if val.last_x is None or train.last_x is None or run.epoch is None or int(val.last_x) != run.epoch:
            return []  # no validation this epoch, or no step losses (a curve replayed by epochs)
        if self._copies and self._copies[-1][0] == run.epoch:
            return []
        v, t = val.last_value, train.last_value
        if not (math.isfinite(v) and math.isfinite(t) and abs(v - t) <= _SAME_FLOAT32 * max(abs(v), abs(t))):
            self._copies = []
            return []
        self._copies.append((run.epoch, v))
        # a loss stuck at one value in both splits (0, or ln C of a dead model) is not a copy
        if len(self._copies) < self.patience or len({value for _, value in self._copies}) < 2:
            return []
        self._copy_fired = True
        epochs = [e for e, _ in self._copies]
        return [
            self.finding(
                f"The validation loss is the training loss of the epoch's last step, to float32 rounding, in "
                f"{len(epochs)} epochs in a row (epoch {run.epoch}: {v:.6g} and {t:.6g}): validation very likely "
                "logs a training loss, so the validation curve says nothing about unseen data.",
                evidence={"val_loss": sig(v), "last_step_train_loss": sig(t), "epochs": epochs},
                hint=(
                    "Log the loss of the validation batch itself: in Lightning's validation_step, "
                    "`loss = F.cross_entropy(self(x), y); self.log('val_loss', loss)`, not an attribute "
                    "that training_step set (self.loss) or a variable left from the training loop."
                ),
                step=run.step,
                epoch=run.epoch,
                key="val-is-train-loss",
            )
        ]

    def _recent(self, val: dict[int, float], train: dict[int, float]) -> list[int] | None:
        """The last `patience` epochs with both values, after the skipped ones; or None."""
        epochs = sorted(set(val) & set(train))
        first = min(min(val), min(train)) + self.skip_epochs if val and train else 0
        epochs = [e for e in epochs if e >= first]
        if len(epochs) < self.patience:
            return None
        return epochs[-self.patience :]

    def _losses(self, run: RunState) -> list[Finding]:
        if run.val_loss.finite_count < self.patience:
            return []  # fewer validated epochs than `_recent` needs (each holds a value): no curve to read
        b = run.val_loss.buckets(include_open=True)
        val = dict(zip(b["x1"].astype(np.int64).tolist(), b["mean"].tolist()))
        train = epoch_train_levels(run)
        if not val or not train:
            return []
        recent = self._recent(val, train)
        if recent is None:
            return []
        initial = train[min(train)]
        if not initial > 0:
            return []
        for e in recent:
            t, v = train[e], val[e]
            if not (t > 0 and v >= 0 and v < self.max_ratio * t and t - v > self.min_gap * initial):
                return []
        if starts_off_chance(run) is not None:
            return []  # the training loss is no cross-entropy over C classes: not on the validation loss's scale
        e = recent[-1]
        other_scale = _other_scale(train, val, e)
        if other_scale is not None:
            return [self._other_scale_finding(run, other_scale, _steps_per_epoch(run))]
        broken = _broken_train(train, val, e)
        if broken is not None:
            return [self._broken_train_finding(run, broken)]
        if run.info.augmented_train:
            return [self._augmented(run, val[e], train[e], recent)]
        evidence = {
            "val_loss": sig(val[e]),
            "train_loss": sig(train[e]),
            "ratio": sig(val[e] / train[e]),
            "initial_train_loss": sig(initial),
            "epochs": recent,
        }
        if run.info.loss_unmatched:
            # another objective (soft targets, a penalty in the step) has a floor of its own that
            # a validation loss of the usual kind does not share: the ratio proves nothing
            return [
                self.finding(
                    f"Validation loss {val[e]:.4g} is {val[e] / train[e]:.0%} of the training loss "
                    f"{train[e]:.4g} for {len(recent)} epochs, but the training loss is none of the common "
                    "losses of the outputs and labels (another objective, such as a cross-entropy on a "
                    "teacher's softened outputs or a loss with a penalty added), so the two need not share a scale.",
                    evidence={**evidence, "training_loss_unmatched": True},
                    hint=(
                        "Nothing to fix if the training step computes another objective on purpose. To compare "
                        "like with like, also log the validation loss's own function on the training batches."
                    ),
                    severity=Severity.INFO,
                    step=run.step,
                    epoch=run.epoch,
                    key="other-objective",
                )
            ]
        return [
            self.finding(
                f"Validation loss {val[e]:.4g} is {val[e] / train[e]:.0%} of the training loss "
                f"{train[e]:.4g} for {len(recent)} epochs: the validation data looks leaked or easier.",
                evidence=evidence,
                hint=(
                    "Check the split for duplicates (train-val-overlap), that validation labels do not "
                    "leak into inputs, and that both losses are reduced the same way (mean vs sum)."
                ),
                step=run.step,
                epoch=run.epoch,
                key="val",
            )
        ]

    def _other_scale_finding(self, run: RunState, evidence: dict, steps: int | None) -> Finding:
        """`other-scale`: the training loss is a near-constant multiple (6x or more) of the
        validation loss from the first epoch on: two units (a sum over batches against a mean),
        not a validation set easier than training."""
        low, high = evidence["ratio_min"], evidence["ratio_max"]
        near = ""
        if steps is not None:
            evidence = {**evidence, "steps_per_epoch": steps}
            near = f", against {steps} training steps per epoch"
        return self.finding(
            f"The training loss is {low:.3g}-{high:.3g}x the validation loss in every epoch from the first "
            f"(epochs {evidence['epochs'][0]}-{evidence['epochs'][-1]}{near}) while both fall: the two losses "
            "are on different scales (a training loss summed over batches against a mean, a mean divided "
            "again by the batch size, or both summed over sets of different sizes?), which says nothing about "
            "leakage, and the two curves cannot be compared.",
            evidence=evidence,
            hint=(
                "Log both losses the same way, each the mean over its batches of the batch loss: divide a "
                "running training loss by the number of batches (`running_loss / len(train_loader)`), a loss "
                "summed over a whole set by that set's size (`len(loader.dataset)`), do not "
                "divide a mean loss again by the batch or data-set size, and in Lightning keep "
                "`self.log`'s default reduce_fx='mean', not 'sum'."
            ),
            severity=Severity.INFO,
            step=run.step,
            epoch=run.epoch,
            key="other-scale",
        )

    def _broken_train_finding(self, run: RunState, evidence: dict) -> Finding:
        """`train-broken`: the training loss is `_BROKEN_TRAIN_RATIO` x the validation loss or more
        in every epoch from the first, its ratio moving (not `other-scale`'s fixed multiple): the
        training loss is what is wrong, not the validation data."""
        first = evidence["epochs"][0]
        return self.finding(
            f"The training loss is {evidence['ratio_min']:.3g}-{evidence['ratio_max']:.3g}x the validation loss in "
            f"every epoch from the first (epoch {first}: {evidence['first_train_loss']:.4g} against "
            f"{evidence['first_val_loss']:.4g}): no easier or leaked validation set puts its loss three orders of "
            "magnitude below training's from the start, so the training loss itself is broken (values blown up "
            "in some batches, a term or a reduction the validation loss does not have), not the validation data.",
            evidence=evidence,
            hint=(
                "Print the training loss of a few batches and compare it with the validation loss of the same "
                "batches (`model.eval()`, the same loss function): look for batches with huge or unscaled "
                "inputs or targets, a penalty term that grows, or a sum where the validation loss takes a mean."
            ),
            step=run.step,
            epoch=run.epoch,
            key="train-broken",
        )

    def _augmented(self, run: RunState, val: float, train: float, epochs: list[int]) -> Finding:
        """The gap as INFO where the training inputs are augmented far harder than validation's
        (`RunInfo.augmented_train`, YOLO's mosaics): there it is the rule, and a leak would look
        the same, so it is worth a look, not a warning."""
        return self.finding(
            f"Validation loss {val:.4g} is {val / train:.0%} of the training loss {train:.4g} for "
            f"{len(epochs)} epochs; expected where training images are augmented (YOLO's mosaics) "
            "and validation images are clean, so this alone does not mean a leak.",
            evidence={"val_loss": sig(val), "train_loss": sig(train), "ratio": sig(val / train), "epochs": epochs},
            hint=(
                "If the validation mAP is far above what the task allows, check the split for images "
                "shared with training (train-val-overlap); otherwise nothing to do."
            ),
            step=run.step,
            epoch=run.epoch,
            severity=Severity.INFO,
            key="val",
        )

    def _metrics(self, run: RunState) -> list[Finding]:
        for name, series in run.val_metrics.items():
            if name not in run.train_metrics or not is_bounded_score(name):
                continue
            if higher_is_better(name, run.info.higher_is_better) is not True:
                continue
            if series.finite_count < self.patience:
                continue  # fewer epochs than `_recent` needs, as in `_losses`
            vb = series.buckets(include_open=True)
            tb = run.train_metrics[name].buckets(include_open=True)
            val = {int(e): float(v) for e, v in zip(vb["x1"], vb["mean"])}
            train = {int(e): float(v) for e, v in zip(tb["x1"], tb["mean"])}
            recent = self._recent(val, train) if val and train else None
            if recent is None:
                continue
            scale = 100.0 if max(max(val.values()), max(train.values())) > 1.5 else 1.0
            ok = all(
                math.isfinite(val[e])
                and val[e] / scale >= self.near_perfect
                and train[e] / scale <= val[e] / scale - self.metric_gap
                for e in recent
            )
            if not ok:
                continue
            e = recent[-1]
            return [
                self.finding(
                    f"Validation {name} is near perfect ({val[e] / scale:.3g}) while training {name} is "
                    f"only {train[e] / scale:.3g}: the validation data looks leaked or far easier.",
                    evidence={
                        f"val_{name}": sig(val[e] / scale),
                        f"train_{name}": sig(train[e] / scale),
                        "epochs": recent,
                        "mean_gap": sig(float(np.mean([val[k] - train[k] for k in recent])) / scale),
                    },
                    hint=(
                        "Check the split for duplicates (train-val-overlap) and that validation labels "
                        "do not leak into the inputs."
                    ),
                    step=run.step,
                    epoch=run.epoch,
                    key="val",
                )
            ]
        return []


def _other_scale(train: Mapping[int, float], val: Mapping[int, float], last: int) -> dict | None:
    """The evidence that the training loss is on another scale than the validation loss, or
    None: in every epoch up to `last` with both (from the first, none skipped), train/val is at
    least `_OTHER_SCALE_RATIO`, its logarithm spreads by at most `_OTHER_SCALE_BAND`, and by less
    than each curve's own logarithm moves (the two curves fall together, one a multiple of the
    other; a validation loss flat near 0 while training falls is no multiple); where it falls
    below `_OTHER_SCALE_NEAR_LEAK` in some epoch, it has not grown since the first."""
    epochs = [e for e in sorted(set(val) & set(train)) if e <= last]
    t = np.array([train[e] for e in epochs], dtype=np.float64)
    v = np.array([val[e] for e in epochs], dtype=np.float64)
    if not (np.isfinite(t).all() and np.isfinite(v).all() and (t > 0).all() and (v > 0).all()):
        return None  # a zero or non-finite loss has no logarithm: no ratio to read
    log_t, log_v = np.log(t), np.log(v)
    log_ratio = log_t - log_v
    spread = float(np.ptp(log_ratio))
    if float(log_ratio.min()) < math.log(_OTHER_SCALE_RATIO) or spread > _OTHER_SCALE_BAND:
        return None
    if not spread < min(float(np.ptp(log_t)), float(np.ptp(log_v))):
        return None  # the ratio moves as much as a curve does: no fixed multiple
    if float(log_ratio.min()) < math.log(_OTHER_SCALE_NEAR_LEAK) and log_ratio[-1] > log_ratio[0]:
        return None  # near a leak's ratios, and grown since the first epoch: as a leak's does
    ratio = np.exp(log_ratio)
    return {
        "train_loss": sig(float(t[-1])),
        "val_loss": sig(float(v[-1])),
        "ratio_min": sig(float(ratio.min())),
        "ratio_max": sig(float(ratio.max())),
        "log_ratio_spread": sig(spread),
        "epochs": epochs,
    }


#: `train-broken`: a training loss this many times the validation loss in every epoch from the first
#: is no leak (a leaked set's loss is the model's training-set fit: dropout or mixup put the
#: training loss 2-3x above it, `max_ratio`'s source); 1000x is `loss-divergence`'s
#: `single_spike_factor`, three orders of magnitude, the low end of real runs' explosions
_BROKEN_TRAIN_RATIO = 1000.0


def _broken_train(train: Mapping[int, float], val: Mapping[int, float], last: int) -> dict | None:
    """The evidence that the training loss is far off the validation loss's scale in every epoch
    up to `last` with both (from the first, none skipped), or None."""
    epochs = [e for e in sorted(set(val) & set(train)) if e <= last]
    t = np.array([train[e] for e in epochs], dtype=np.float64)
    v = np.array([val[e] for e in epochs], dtype=np.float64)
    if not (np.isfinite(t).all() and np.isfinite(v).all() and (v > 0).all()):
        return None
    ratio = t / v
    if float(ratio.min()) < _BROKEN_TRAIN_RATIO:
        return None
    return {
        "train_loss": sig(float(t[-1])),
        "val_loss": sig(float(v[-1])),
        "first_train_loss": sig(float(t[0])),
        "first_val_loss": sig(float(v[0])),
        "ratio_min": sig(float(ratio.min())),
        "ratio_max": sig(float(ratio.max())),
        "epochs": epochs,
    }


def _steps_per_epoch(run: RunState) -> int | None:
    """The training steps of each epoch where the run's epoch ends are known and all epochs
    but the first agree (a resumed or cut first epoch differs), or None: None too for one step
    an epoch (a log of epochs alone numbers its steps by epoch; a full batch sums nothing)."""
    ends = sorted(run.epoch_step.items())
    counts = {b - a for (_, a), (_, b) in zip(ends, ends[1:])}
    if len(counts) != 1:
        return None
    (count,) = counts
    return count if count > 1 else None


# -- train-val-overlap, feature-leakage --------------------------------------------------------

from mlcheck.checks.data import class_labels  # noqa: E402
from mlcheck.checks.hashing import (  # noqa: E402
    PROBE_ABOVE,
    PROBE_BIT,
    PROBE_VALUES,
    SecondStage,
    SplitOverlap,
    any_constant_row,
    constant_rows,
    fingerprints,
    probe_fingerprints,
)

if TYPE_CHECKING:
    from mlcheck.run import BatchObservation


@register
class TrainValOverlap(Check):
    """Validation samples that are exact copies of training samples.

    What it does:
        Fingerprints every input sample of the first pass over the training and validation
        data (an 8-byte hash, float types compared as float32) and counts the distinct
        validation samples found in training. Samples of up to `probe_above` values (tabular
        rows, MNIST digits) are hashed whole. Larger samples (images) are fingerprinted in two
        stages, so the cost per sample does not grow with its size: first from `probe_values`
        seeded positions, their shape and type; a validation sample whose probe matches a
        training one is then compared in full (a fingerprint of every value of both samples),
        when they come by again (the next pass over each split: the full pass hands this check
        merged blocks of probes, the samples themselves are gone), so such copies are confirmed
        one epoch later. Only confirmed copies count: near-copies (equal on the probe, different
        elsewhere) never do.

        Fires an ERROR when at least `max_share` of the validation samples seen (and
        `min_matches` of them) are in training, unless the training data repeats itself about
        as much (data with few distinct values, such as small categorical tables, overlaps by
        nature; that case is an INFO). At the end of the run a smaller overlap is an INFO, as
        are matches on the probe that could not be confirmed (a one-epoch run).

        Choices: only the inputs are hashed (a validation input seen in training is leaked
        whatever its label); exact duplicates only, so near-duplicates (a resized or re-encoded
        copy) and samples that differ after random augmentation are not matched; samples whose
        values are all equal (all-zero padding rows, blank images) are skipped, since they say
        nothing about a split.

        The same fingerprints count the training data's own repeats in its first epoch: where
        at most `min_distinct_share` of its samples are distinct (1,000 rows holding 20
        distinct ones), an INFO names the counts, since a loader that repeats rows (an index
        that does not advance, a data set built from one batch) trains on a sliver of the
        data while every curve looks normal. Tabular data with a few duplicate rows, random
        augmentation (every sample distinct) and oversampling stay far above it. Samples
        fingerprinted from a probe (larger than `probe_above`) are not counted: equal probes
        are not equal samples. Where every distinct sample of that epoch was already in its
        first batch and each came by at least `min_batch_repeats` times (a DataLoader over a
        list holding one batch, a `__getitem__` that ignores its index), the model trains on
        one batch over and over: a WARNING, key `one-batch` (Lightning's `overfit_batches=1`
        runs one batch per epoch, never a repeat within it).

        The validation data should come again unchanged in the next epoch. The first
        `val_recheck_rows` validation samples of the second pass are compared with the first
        pass: where their labels come in the same order but at most `max_val_recurring` of
        their inputs equal a sample of the first pass, random augmentation or noise is applied
        to the validation data (a WARNING, key `val-changes`). A shuffled validation loader
        (labels in another order) or a validation subset drawn afresh each epoch (other
        labels) is not judged.
        A false match needs two different samples with equal 63-bit fingerprints of every
        value: probability 2**-63 per pair, under 1e-7 for a million training and a million
        validation samples. Memory: 8 bytes per distinct sample and split, up to `capacity` per
        split; beyond it a consistent hash-space sample is kept and the counts become estimates.

    Why it matters:
        A model scores well on samples it has memorised: validation metrics computed on copies
        of training data overstate generalisation, and early stopping, model selection and
        hyperparameter search all follow the inflated number.

    How to fix:
        Remove duplicates before splitting (`df.drop_duplicates()`), split before augmenting or
        oversampling, split by group (`GroupShuffleSplit`) when several rows come from one
        source, and check that the validation loader does not read training files.

    Example:
        df = pd.read_csv("claims.csv")
        fraud = df[df["fraud"] == 1]
        df = pd.concat([df] + [fraud] * 4)  # oversample the rare class, then split:
        train_df, val_df = train_test_split(df, test_size=0.2)  # copies on both sides
        x_train, y_train = train_df[features].values, train_df["fraud"].values
        x_val, y_val = val_df[features].values, val_df["fraud"].values
        model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=10)

    Use instead:
        df = pd.read_csv("claims.csv").drop_duplicates()
        train_df, val_df = train_test_split(df, test_size=0.2, stratify=df["fraud"])
        fraud = train_df[train_df["fraud"] == 1]
        train_df = pd.concat([train_df] + [fraud] * 4)  # the training split only
        x_train, y_train = train_df[features].values, train_df["fraud"].values
        x_val, y_val = val_df[features].values, val_df["fraud"].values
        model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=10)

    Args:
        max_share: share of validation samples found in training that is an ERROR. Default
            0.05, deepchecks' TrainTestSamplesMix condition (`max_ratio=0.05`).
        min_matches: matching samples needed before any verdict. Default 5.
        natural_factor: the overlap must exceed this many times the training data's own
            duplicate share to be an ERROR. Default 3 (with pairs of duplicates split at random
            the overlap is ~2x the duplicate share).
        capacity: distinct fingerprints kept per split. Default 2**21 (16 MiB per split).
        probe_values: seeded positions of the first stage. Default 256: about 1 us per sample
            on one core; two different samples that differ in a share d of their values pass it
            with probability (1 - d) ** 256 (a second-stage comparison, not a match). None:
            one stage, every value of every sample hashed.
        probe_above: samples of at most this many values are hashed whole, in one stage.
            Default 1,024 (a 32x32 single-channel image; MNIST's 784 pixels and tabular rows
            cost no more than the probe would).
        min_distinct_share: the INFO on repeated training samples needs at most this share
            of the first epoch's samples to be distinct. Default 0.1 (each sample ten times on
            average): sampling schemes stay far above it, a bootstrap keeping 63% of the rows
            distinct and oversampling a minority to parity at `class-imbalance`'s 10:1 at
            least half; a loading bug that repeats rows falls far below. 0 turns it off, and
            the `one-batch` WARNING with it.
        min_train_rows: first-epoch training samples needed before that INFO. Default 100:
            ten distinct samples at the default share.
        min_batch_repeats: the `one-batch` WARNING needs each distinct sample seen this many
            times on average in the first epoch. Default 4: four steps on one batch; one batch
            per epoch (`overfit_batches=1`, full-batch training) is never a repeat.
        val_recheck_rows: validation samples of the second pass compared with the first.
            Default 64. 0 turns the `val-changes` test off.
        max_val_recurring: the share of those found in the first pass at or below which
            validation changes between passes. Default 0.5: unchanged validation data
            recurs entirely (100%), a random flip of half the samples leaves about half.
    """

    id = "train-val-overlap"
    family = "leakage"
    severity = Severity.ERROR
    #: an overlap is judged sample by sample: every sample of the first pass is fingerprinted
    consumes = frozenset({Signal.EVERY_BATCH})
    #: the first stage reads the probe of large samples; their full pass comes in merged blocks
    #: of probes, except the batches `probe_suffices` asks to see whole
    reads_probe = True

    def __init__(
        self,
        max_share: float = 0.05,
        min_matches: int = 5,
        natural_factor: float = 3.0,
        capacity: int = 1 << 21,
        probe_values: int | None = PROBE_VALUES,
        probe_above: int = PROBE_ABOVE,
        min_distinct_share: float = 0.1,
        min_train_rows: int = 100,
        min_batch_repeats: float = 4.0,
        val_recheck_rows: int = 64,
        max_val_recurring: float = 0.5,
    ) -> None:
        if probe_values is not None and probe_values < 1:
            raise ValueError(f"probe_values must be None or >= 1, got {probe_values}")
        self.probe_values = probe_values
        self.probe_above = probe_above
        self.max_share = max_share
        self.min_matches = min_matches
        self.natural_factor = natural_factor
        self.capacity = capacity
        self.min_distinct_share = min_distinct_share
        self.min_train_rows = min_train_rows
        self.min_batch_repeats = min_batch_repeats
        self.val_recheck_rows = val_recheck_rows
        self.max_val_recurring = max_val_recurring
        super().__init__()

    def reset(self) -> None:
        self._overlap = SplitOverlap(self.capacity)
        self._second = SecondStage()
        self._first_epoch: object = ()  # the epoch whose training rows count for duplicates
        self._train_rows = 0  # kept training rows of that epoch
        self._train_repeats = 0  # ... already seen in training
        self._train_probed = False  # some of those were fingerprinted from a probe
        self._repeats_said = False  # the INFO on repeated training samples was judged
        self._first_rows: list[np.ndarray] = []  # the first epoch's first rows, see _could_all_differ
        self._first_batch = 0  # distinct samples of the first training batch (`one-batch`)
        self._val_epoch: object = ()  # the epoch of the first validation pass
        # the first validation pass's first labels, in order, and the second pass's: the labels
        # seen, the samples compared and how many of those recurred (`val-changes`); None: judged
        self._val_labels: list[float] | None = []
        self._val_again: list[float] = []
        self._val_compared = [0, 0]
        self._constant = {"train": 0, "val": 0}
        self._last: tuple[int | None, int | None] = (None, None)
        self._held: list[np.ndarray] = []  # probe fingerprints not in the sets yet
        self._held_at: tuple[str, int | None] | None = None  # their (split, epoch)

    #: Probe fingerprints of large samples go into the sets in blocks of about this many: the
    #: set's fixed costs are paid once per block (a verdict waits at most that many samples).
    HOLD = 512

    def awaits_batches(self, split: str) -> bool:
        return self._second.awaiting(split) > 0 or (split == "val" and self._val_recheck_due())

    def _val_recheck_due(self) -> bool:
        """The first validation pass left labels to compare the second pass's samples with."""
        return bool(self._val_labels) and self._val_compared[0] < len(self._val_labels)

    def probe_suffices(self, batch: BatchObservation) -> bool:
        """The probe of a full-pass batch suffices unless candidates wait for a full fingerprint
        from its split (the second stage reads every value of theirs), a sample is constant on
        the probe (its first stage is every value), or the probe is not this check's."""
        if (self.probe_values, self.probe_above) != (PROBE_VALUES, PROBE_ABOVE):
            return False
        if self._second.awaiting(batch.split):
            return False
        return not any_constant_row(batch.input_probe(PROBE_VALUES, PROBE_ABOVE))

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        return self._on_samples(batch) if batch.inputs is not None else self._on_probes(batch)

    def _on_samples(self, batch: BatchObservation) -> Iterable[Finding]:
        """A batch in hand: the first stage, and the second for its samples whose probe matches."""
        x = batch.inputs
        if x.ndim == 0 or len(x) == 0 or x.dtype.kind not in "biuf":
            return ()
        rows = batch.input_probe(self.probe_values, self.probe_above)  # every value, or a probe
        flat = rows if rows.size == x.size else None  # None: a probe of larger samples
        same = constant_rows(rows)
        whole = np.empty(0, dtype=np.int64)
        if not same.any():  # the usual case, in few operations: every sample kept
            keep = None
        else:
            blank = same
            if flat is None:  # constant on the probe: look at every value of those
                blank = np.zeros(len(x), dtype=bool)
                blank[np.flatnonzero(same)[constant_rows(x[same])]] = True
            self._constant[batch.split] += int(blank.sum())
            if blank.all():
                return ()
            keep = np.flatnonzero(~blank)  # row numbers: large samples are not copied
            # mostly blank samples (constant on the probe only) would all share a probe: their
            # first stage is every value
            whole = np.flatnonzero(same[keep])
        if flat is not None:
            prints = batch.input_fingerprints()  # shared with feature-leakage
            if keep is not None:
                prints = prints[keep]
        else:
            prints = probe_fingerprints(rows if keep is None else rows[keep], x[:1].size)
            if len(whole):
                prints[whole] = fingerprints(x[keep[whole]])
        if self._val_again_pass(batch, keep, prints):
            return ()
        self._last = (batch.step, batch.epoch)
        if flat is None:
            self._hold(batch, x, keep, prints)
        else:
            self._keep_first_rows(batch, flat)
            if batch.split == "train" and self._first_epoch == ():
                self._first_batch = len(np.unique(prints))
            self._add(batch.split, batch.epoch, prints)
        return self._judge(final=False)

    def _val_again_pass(self, batch: BatchObservation, keep: np.ndarray | None, prints: np.ndarray) -> bool:
        """`val-changes`: keeps the first validation labels of the first pass, and compares the
        first samples of the second pass with it. True when the batch is the second pass's and
        nothing else waits for it (its samples are not added: they may be new ones)."""
        if batch.split != "val" or self._val_labels is None or batch.epoch is None:
            return False
        if self._val_epoch == ():
            self._val_epoch = batch.epoch
        labels = batch.targets
        if labels is None or len(labels) != len(batch.inputs if batch.inputs is not None else batch.probe):
            self._val_labels = None  # no labels row by row: nothing to line the passes up by
            return False
        if keep is not None:
            labels = labels[keep]
        flat = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
        # one number per label row: the value, or a one-hot or soft row weighted by position
        values = flat @ (1.0 + np.arange(flat.shape[1]) / flat.shape[1])
        first = batch.epoch == self._val_epoch
        room = self.val_recheck_rows - len(self._val_labels if first else self._val_again)
        if room <= 0:
            return False
        if first:
            self._val_labels.extend(values[:room].tolist())
            return False
        self._val_again.extend(values[:room].tolist())
        compared = prints[:room]
        distinct = np.unique(compared)
        recurring = np.isin(compared, distinct[self._overlap.sets["val"].contains(distinct)])
        self._val_compared[0] += len(compared)
        self._val_compared[1] += int(np.count_nonzero(recurring))
        return not self._second.awaiting("val")

    #: Values of the first training rows kept to tell repeats forced by a small value space
    #: (16 possible rows of 4 binary features) from repeated rows: 1 MiB of float32.
    FIRST_ROW_VALUES = 1 << 18

    def _keep_first_rows(self, batch: BatchObservation, rows: np.ndarray) -> None:
        """Copies of the first training rows of the first epoch, up to `FIRST_ROW_VALUES`."""
        later = self._first_epoch != () and batch.epoch != self._first_epoch
        if batch.split != "train" or self._repeats_said or later:
            return
        room = self.FIRST_ROW_VALUES // max(rows.shape[1], 1) - sum(map(len, self._first_rows))
        if room > 0:
            self._first_rows.append(np.array(rows[:room]))

    def _on_probes(self, batch: BatchObservation) -> Iterable[Finding]:
        """A merged block of probes (`Check.reads_probe`), none constant (`probe_suffices`):
        the first stage of a block at once. A probe matching the other split makes a candidate
        whose full fingerprints come when its samples pass again (`awaits_batches`)."""
        probes = batch.probe
        if probes is None or not batch.sample_values or len(probes) == 0 or probes.dtype.kind not in "biuf":
            return ()
        prints = probe_fingerprints(probes, batch.sample_values)
        if self._val_again_pass(batch, None, prints):
            return ()
        self._last = (batch.step, batch.epoch)
        self._hold(batch, None, None, prints)
        return self._judge(final=False)

    def _hold(self, batch: BatchObservation, x: np.ndarray | None, keep: np.ndarray | None, prints: np.ndarray) -> None:
        """Probe fingerprints of one batch or block into the held set of its split and epoch
        (the first stage), released for searching when the split changes or the set is full."""
        if self._held_at != (batch.split, batch.epoch):
            self._release()  # the other split's set is complete before it is searched
        self._second_stage(batch.split, x, keep, prints)
        self._held.append(prints)
        self._held_at = (batch.split, batch.epoch)
        if sum(map(len, self._held)) >= self.HOLD:
            self._release()

    def _add(self, split: str, epoch: int | None, prints: np.ndarray) -> None:
        kept, repeats = self._overlap.add(split, prints)
        if split == "train":
            if self._first_epoch == ():
                self._first_epoch = epoch
            if epoch == self._first_epoch:  # later epochs repeat the data by design
                self._train_rows += kept
                self._train_repeats += repeats
                self._train_probed = self._train_probed or bool((prints & PROBE_BIT).any())

    def _release(self) -> None:
        """Adds the held probe fingerprints to their split's set."""
        if self._held:
            held, self._held = np.concatenate(self._held), []
            self._add(*self._held_at, held)
        self._held_at = None

    def state_dict(self) -> dict:
        self._release()
        return super().state_dict()

    def _second_stage(self, split: str, x: np.ndarray | None, rows: np.ndarray | None, prints: np.ndarray) -> None:
        """Fingerprints of every value of the samples `x[rows]` (None: all) whose probe
        (`prints`) occurs in the other split or is a candidate already: the second stage, paid
        only by those. `x` None (a block of probes): their probes become candidates, compared
        in full when the samples pass again."""
        o = self._overlap
        other = o.sets["val" if split == "train" else "train"]
        if not len(other) and not len(self._second):
            return  # nothing to match yet (the first training pass)
        found = (prints & PROBE_BIT) != 0
        found &= other.contains(prints) | self._second.known(prints)
        if o.level:
            found &= o.kept(prints)
        candidate = np.flatnonzero(found)
        if len(candidate) and x is None:
            self._second.expect(prints[candidate])
        elif len(candidate):
            samples = candidate if rows is None else rows[candidate]
            self._second.add(split, prints[candidate], fingerprints(x[samples]))
        if o.level and len(self._second):
            self._second.keep_where(o.kept)

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        self._release()  # a pass is over: judged on all of it
        if run.epoch is None:
            return ()
        return [*self._train_repeated(run.epoch), *self._val_changed(run), *self._judge(final=False)]

    def on_end(self, run: RunState) -> Iterable[Finding]:
        self._release()
        return [*self._train_repeated(run.epoch), *self._judge(final=True)]

    def _could_all_differ(self, rows: int) -> bool:
        """Whether the column values seen could make `rows` different rows: the product of each
        column's distinct values among the first rows kept exceeds it. Else the repeats are
        the data's own (4 binary features make 16 possible rows), not a loader's."""
        if not self._first_rows:
            return False
        kept = np.concatenate(self._first_rows)
        kinds = [len(np.unique(column)) for column in kept.T]
        return float(np.sum(np.log(np.maximum(kinds, 1)))) > math.log(rows)

    def _val_changed(self, run: RunState) -> Iterable[Finding]:
        """A WARNING, once, when the second validation pass's first samples, their labels in
        the first pass's order, are mostly not the first pass's samples: the inputs change
        between passes (random augmentation or noise on validation)."""
        first, again = self._val_labels, self._val_again
        compared, recurring = self._val_compared
        if first is None or not compared or compared < min(len(first), self.val_recheck_rows):
            return
        self._val_labels = None  # judged once
        if again != first[: len(again)] or len(set(again)) < 2:
            return  # another order or another subset (or one label: nothing to line up by)
        share = recurring / compared
        if share > self.max_val_recurring:
            return
        yield self.finding(
            f"The validation inputs change from one pass to the next: of the first {compared} validation samples "
            f"of the second pass, whose labels come in the same order as in the first, only {recurring} "
            f"({share:.0%}) equal a sample of the first pass: random "
            "augmentation or noise is applied to the validation data, so the validation loss measures altered "
            "samples and moves with chance from epoch to epoch.",
            evidence={
                "compared": compared,
                "recurring": recurring,
                "recurring_share": share,
                "threshold": self.max_val_recurring,
                "first_epoch": self._val_epoch,
            },
            hint="Apply random transforms to the training split only: give validation its own Dataset or "
            "transform without the random flips, crops and noise (torchvision: a val transform of ToTensor and "
            "Normalize alone); Keras' Random* preprocessing layers act in training only. Test-time "
            "augmentation on purpose: TrainValOverlap(val_recheck_rows=0) turns this off.",
            step=self._last[0],
            epoch=run.epoch,
            severity=Severity.WARNING,
            key="val-changes",
        )

    def _train_repeated(self, epoch: int | None) -> Iterable[Finding]:
        """An INFO, once, when the first training epoch (known by its number: without one, the
        later passes would count as repeats) holds few distinct samples for its rows; a WARNING
        (`one-batch`) when they were all in its first batch."""
        rows, first = self._train_rows, self._first_epoch
        if self._repeats_said or rows < self.min_train_rows or not isinstance(first, int) or self._train_probed:
            return
        distinct = rows - self._train_repeats
        share = distinct / rows
        complete = epoch is not None and epoch != first  # the first epoch's counts are final
        one_batch = (
            self.min_distinct_share > 0  # 0: repeats are the data's own, both findings off
            and self._overlap.scale == 1
            and distinct == self._first_batch
            and rows >= self.min_batch_repeats * distinct
        )
        if (share > self.min_distinct_share and not one_batch) or not self._could_all_differ(rows):
            if complete:
                self._repeats_said, self._first_rows = True, []  # judged: nothing to say
            return
        self._repeats_said, self._first_rows = True, []
        if one_batch:
            yield self._one_batch(rows, distinct, epoch)
            return
        scale = self._overlap.scale
        yield self.finding(
            f"The first training epoch held {rows * scale} samples but only {distinct * scale} distinct ones "
            f"({share:.1%}; each seen {rows / max(distinct, 1):.0f} times on average): a loader that repeats "
            "rows trains on a sliver of the data while the curves look normal.",
            evidence={
                "train_rows": rows * scale,
                "train_distinct": distinct * scale,
                "distinct_share": share,
                "threshold": self.min_distinct_share,
                "epoch": first,
                "estimated": scale > 1,
            },
            hint="Check how the training set is built (an index that does not advance, a data set made "
            "from one batch, np.tile or np.repeat over the rows, a Subset of repeated indices). Repeats "
            "on purpose (few possible inputs, an epoch that loops over a small data set): "
            "TrainValOverlap(min_distinct_share=0) turns this note off and keeps the overlap check.",
            step=self._last[0],
            epoch=epoch,
            severity=Severity.INFO,
            key="train-repeats",
        )

    def _one_batch(self, rows: int, distinct: int, epoch: int | None) -> Finding:
        """WARNING `one-batch`: every sample of the first epoch was one of its first batch's."""
        return self.finding(
            f"Every training batch of the first epoch repeats the samples of its first batch: {rows} samples "
            f"went by but only {distinct} distinct ones, all in the first batch (each seen {rows / distinct:.0f} "
            "times), so the model trains on one batch over and over and the rest of the data is never used.",
            evidence={
                "train_rows": rows,
                "train_distinct": distinct,
                "first_batch_distinct": self._first_batch,
                "repeats_per_sample": rows / distinct,
                "min_batch_repeats": self.min_batch_repeats,
                "epoch": self._first_epoch,
            },
            hint="Check how the training loader is built: a DataLoader over a list holding one batch "
            "([batch] * n), a Dataset or keras.utils.PyDataset whose __getitem__ ignores its index "
            "(x[0:bs] instead of x[idx * bs:(idx + 1) * bs]), a cached first batch. To overfit one batch "
            "on purpose, use Trainer(overfit_batches=1); a training set that really is this small, looped "
            "within an epoch: TrainValOverlap(min_distinct_share=0) turns this off.",
            step=self._last[0],
            epoch=epoch,
            severity=Severity.WARNING,
            key="one-batch",
        )

    def _judge(self, final: bool) -> Iterable[Finding]:
        o = self._overlap
        val = o.distinct("val")
        if val == 0 or o.matched == 0:
            return
        matched = o.matched - o.matched_probes + self._second.confirmed
        if matched < self.min_matches and not (final and o.matched_probes):
            return
        second = self._second.counts() if o.matched_probes else {}  # O(candidates): only here
        unconfirmed = second.get("unconfirmed", 0)
        if matched < self.min_matches and not unconfirmed:
            return
        share = matched / val
        natural = self._train_repeats / self._train_rows if self._train_rows else 0.0
        scale = o.scale
        evidence = {
            "val_samples": val * scale,
            "val_in_train": matched * scale,
            "share": share,
            "train_samples": o.distinct("train") * scale,
            "train_duplicate_share": natural,
            "constant_samples_skipped": self._constant["train"] + self._constant["val"],
            "estimated": scale > 1,
            "threshold": self.max_share,
        }
        if o.matched_probes:
            evidence["probe_matches"] = o.matched_probes * scale
            evidence["near_duplicates"] = second.get("near_duplicates", 0) * scale
            evidence["unconfirmed"] = unconfirmed * scale
        step, epoch = self._last
        counts = f"{matched * scale} of {val * scale}" + (" (estimated)" if scale > 1 else "")
        if matched >= self.min_matches and share >= self.max_share and share > self.natural_factor * natural:
            yield self.finding(
                # the training samples compared bound the share: `mlcheck sanity` reads 16 batches
                f"{share:.1%} of the validation samples seen ({counts}) are exact copies of the "
                f"{evidence['train_samples']} training samples seen: validation scores will overstate "
                "generalisation.",
                evidence=evidence,
                hint="De-duplicate before splitting (df.drop_duplicates()), split before "
                "augmenting or oversampling, split by group (GroupShuffleSplit) when rows "
                "share a source, and make sure the validation loader does not read "
                "training files.",
                step=step,
                epoch=epoch,
                key="overlap",
            )
        elif final and matched >= self.min_matches:
            natural_note = (
                f"; the training data itself repeats {natural:.1%} of its samples, "
                f"so much of this overlap is the data's own duplicates"
                if share >= self.max_share
                else ""
            )
            yield self.finding(
                f"{share:.1%} of the validation samples seen ({counts}) also occur in the training data{natural_note}.",
                evidence=evidence,
                hint="Drop exact duplicates before splitting (df.drop_duplicates()) if they "
                "should not count as unseen validation data.",
                step=step,
                epoch=epoch,
                severity=Severity.INFO,
                key="overlap",
            )
        elif final:
            yield self.finding(
                f"{unconfirmed * scale} validation samples equal training samples on "
                f"{self.probe_values} sampled values but could not be compared in full: the "
                f"training samples did not come by again (a single epoch).",
                evidence=evidence,
                hint="Train for a second epoch, or pass TrainValOverlap(probe_values=None) to "
                "hash every value in the first pass (slower on large inputs).",
                step=step,
                epoch=epoch,
                severity=Severity.INFO,
                key="unconfirmed",
            )


def _poisson_cdf(k: int, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(mean)."""
    if mean <= 0:
        return 1.0
    terms = [math.exp(i * math.log(mean) - mean - math.lgamma(i + 1)) for i in range(k + 1)]
    return min(1.0, sum(terms))


def _nearest(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the nearest value in a sorted array, for each query."""
    if len(sorted_values) == 1:
        return np.zeros(len(queries), dtype=np.int64)
    i = np.searchsorted(sorted_values, queries).clip(1, len(sorted_values) - 1)
    left = queries - sorted_values[i - 1] <= sorted_values[i] - queries
    return np.where(left, i - 1, i)


def _two_folds(n: int) -> tuple[np.ndarray, np.ndarray]:
    """`feature-leakage`'s two folds of `n` rows: one seeded permutation cut in half."""
    order = np.random.default_rng(1).permutation(n)
    return order[: n // 2], order[n // 2 :]


def _majority_errors(y: np.ndarray, fit: np.ndarray, test: np.ndarray) -> float:
    """The test rows' errors of always predicting the fit rows' majority class (codes 0..C-1)."""
    return float((y[test] != np.bincount(y[fit]).argmax()).sum())


def _single_feature_predictions(
    fit_x: np.ndarray, fit_y: np.ndarray, test_x: np.ndarray, classification: bool, max_values: int
) -> np.ndarray | None:
    """Predictions for `test_x` from one feature alone: a lookup by value when the feature has
    at most `max_values` distinct values (majority class or mean target per value), else the
    nearest training value's target (1-nearest neighbour in one dimension). Both are exact for
    a copy (or any one-to-one transform) of the target, and noisier than a tuned model for an
    honest feature, which only lowers its score. None when the feature has no finite value."""
    finite = np.isfinite(fit_x)
    if not finite.any():
        return None
    fx, fy = fit_x[finite], fit_y[finite]
    values, inverse = np.unique(fx, return_inverse=True)
    if len(values) <= max_values:
        if classification:
            classes = int(fy.max()) + 1
            table = np.bincount(inverse * classes + fy, minlength=len(values) * classes)
            per_value = table.reshape(len(values), classes).argmax(axis=1)
        else:
            per_value = np.bincount(inverse, weights=fy) / np.bincount(inverse)
        xs, ys = values, per_value
    else:
        order = np.argsort(fx, kind="stable")
        xs, ys = fx[order], fy[order]
    ok = np.isfinite(test_x)
    pred = np.empty(len(test_x), dtype=ys.dtype)
    pred[ok] = ys[_nearest(xs, test_x[ok])]
    if not ok.all():  # missing values: the most common class, or the mean
        pred[~ok] = np.bincount(fy).argmax() if classification else fy.mean()
    return pred


def _lookup_columns(
    keys: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    fit: np.ndarray,
    max_values: int,
    fit_keys: np.ndarray | None = None,
) -> np.ndarray:
    """Which columns of `_value_keys`' keys `_lookup_fold` serves when fitted on the rows `fit`:
    those with at most `max_values` distinct values among these rows (the others go through
    `_single_feature_predictions`). Counted from the keys: no sort. `fit_keys`: `keys[0][:,
    fit]`, where the caller has it."""
    key, value, start, _ = keys
    seen = np.zeros(len(value), dtype=np.intp)
    seen[key[:, fit] if fit_keys is None else fit_keys] = 1
    return np.add.reduceat(seen, start) <= max_values


def _value_keys(
    x: np.ndarray, ordered: np.ndarray | None = None, columns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense keys for the values of each column of `x` (rows x columns, all finite), shifted so
    that every (column, value) pair has its own key: (keys, one per column and row; the value of
    each key; each column's first key; each column's number of distinct values). Keys follow the
    values' order within a column. `ordered`: each column of `x` sorted (`np.sort(x.T, axis=1)`),
    and `columns`: `x.T` C-contiguous, where the caller has them already."""
    z = x.T.copy() if columns is None else columns  # one row per column: contiguous sorts and searches
    m, n = z.shape
    if ordered is None:
        ordered = np.sort(z, axis=1)
    new = np.empty(ordered.shape, dtype=bool)
    new[:, 0] = True
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new[:, 1:])
    width = new.sum(axis=1)  # distinct values per column
    start = np.zeros(m, dtype=width.dtype)  # first key of each column
    np.cumsum(width[:-1], out=start[1:])
    value = ordered[new]
    # a value's key is its column's first key plus its rank among the column's distinct values:
    # a binary search of them per column (an argsort of every column and a scatter of the ranks
    # cost 1.5x the instructions on 512 rows of digits' 17-level pixels; ties made the argsort
    # slow)
    keys = np.empty((m, n), dtype=width.dtype)
    for j, (lo, hi) in enumerate(zip(start.tolist(), (start + width).tolist())):
        np.add(value[lo:hi].searchsorted(z[j]), lo, out=keys[j])  # the method: no wrapper call
    return keys, value, start, width


def _key_columns(
    keys: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`_value_keys`' keys of the `columns` (a mask) alone, dense again."""
    key, value, start, width = keys
    if columns.all():
        return keys
    kept = width[columns]
    first = np.concatenate([[0], np.cumsum(kept)[:-1]]).astype(start.dtype)
    return key[columns] - (start[columns] - first)[:, None], value[np.repeat(columns, width)], first, kept


def _lookup_fold(
    keys: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    fit: np.ndarray,
    fit_y: np.ndarray,
    test: np.ndarray,
    classification: bool,
    gathered: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """`_single_feature_predictions`' lookup by value for every column of `_value_keys`' keys,
    fitted on the rows `fit` and predicting the rows `test`: one bincount gives the majority
    class (or mean target) of every key, and a test value without training rows takes the
    nearest training value of its column (ties to the lower one). Returns the predictions (test
    rows x columns). `gathered`: (`keys[0][:, fit]`, `keys[0][:, test]`), where the caller has
    them (the two folds of a judgement swap the same two)."""
    key, value, start, width = keys
    m, total = len(start), len(value)
    fit_rows, test_rows = (key[:, fit], key[:, test]) if gathered is None else gathered
    fit_keys = fit_rows.ravel()  # column j, then its rows in order
    if classification:
        classes = int(fit_y.max()) + 1
        # fit_y broadcast over the columns: the values of np.tile(fit_y, m), in the same order
        counts = np.bincount((fit_rows * classes + fit_y).ravel(), minlength=total * classes)
        counts = counts.reshape(total, classes)
        seen = counts.any(axis=1)
        per_key = counts.argmax(axis=1)
    else:
        n = np.bincount(fit_keys, minlength=total)
        seen = n > 0
        per_key = np.bincount(fit_keys, weights=np.tile(fit_y, m), minlength=total) / np.maximum(n, 1)
    index = np.arange(total)
    below = np.maximum.accumulate(np.where(seen, index, -1))
    above = np.minimum.accumulate(np.where(seen, index, total)[::-1])[::-1]
    column = np.repeat(np.arange(m), width)
    below_ok = below >= start[column]
    above_ok = above < (start + width)[column]
    lower, upper = value[np.where(below_ok, below, 0)], value[np.where(above_ok, above, 0)]
    take_below = below_ok & (~above_ok | (value - lower <= upper - value))
    nearest = np.where(take_below, below, above)
    return per_key[nearest][test_rows.T]


def _lookup_predictions(fit_x: np.ndarray, fit_y: np.ndarray, test_x: np.ndarray, classification: bool) -> np.ndarray:
    """`_single_feature_predictions`' lookup by value for many columns at once (same results):
    each column's training and test values get dense keys (`_value_keys`), then `_lookup_fold`.
    A few dozen array operations instead of a dozen per column."""
    n_fit = len(fit_x)
    keys = _value_keys(np.concatenate([fit_x, test_x]))
    rows = np.arange(n_fit + len(test_x))
    return _lookup_fold(keys, rows[:n_fit], fit_y, rows[n_fit:], classification)


def _cross_validated_r2(x: np.ndarray, y: np.ndarray, folds: tuple[np.ndarray, np.ndarray], max_values: int) -> float:
    """The 2-fold held-out R^2 of predicting `y` from the one column `x` with
    `_single_feature_predictions` (regression), as `FeatureLeakage.scores` computes it."""
    errors = baseline = 0.0
    for fit, test in (folds, folds[::-1]):
        baseline += float(((y[test] - y[fit].mean()) ** 2).sum())
        pred = _single_feature_predictions(x[fit], y[fit], x[test], False, max_values)
        errors += float(((y[test] - (y[fit].mean() if pred is None else pred)) ** 2).sum())
    return 1.0 - errors / baseline if baseline > 0 else 0.0


#: Baseline errors (majority-class guesses that are wrong) a scored subsample must hold. From
#: 260 on, a feature scoring `min_score` (0.98: errors 0.02 x baseline) has a Poisson tail under
#: `alpha` (0.01) against an honest 0.95 feature, so the rule no longer binds at the threshold and
#: a subsample gives the verdict of all rows up to the sampling error of the score itself; an exact
#: copy of the label needs 92 (exp(-0.05 x 92) = 0.01). 300 leaves a margin.
SCORE_BASELINE_ERRORS = 300
#: a classification column is no longer scored once even the fewest held-out errors its count
#: allows, kept fixed while the rows grow to `max_rows`, would hold its score below `min_score`:
#: the count's one-sided lower bound at 1e-6 (the square-root transform of a Poisson count has a
#: standard deviation of 1/2, Anscombe 1948; `(sqrt(e) - z/2)^2` stays under the exact chi-square
#: bound for every count from 1 to 20,000, checked against scipy), and the 2-fold baseline is at
#: most the rows scored. An honest feature's errors grow with the rows; a fixed count is the
#: boundary-limited case `_rescore_boundary_limited` models, the fewest a growing sample leaves
_RETIRE_Z = NormalDist().inv_cdf(1.0 - 1e-6)
#: a judgement of more distinct rows than twice this first scores every classification column on
#: a seeded subsample of this many rows and retires those the bound above rules out (`_screen`);
#: the rest are scored as before, bit for bit (each column's errors depend on its own values and
#: the rows alone). A quarter of `score_rows`: an honest digits pixel errs on ~100 of 128 rows,
#: far past the ~78 that retire it, while a copy of the label errs on none
_SCREEN_ROWS = 128


@register
class FeatureLeakage(Check):
    """One input feature alone predicts the label: it very likely leaks the target.

    What it does:
        For tabular inputs (2-D numeric arrays, 2 to `max_features` columns) keeps a reservoir
        sample of up to `max_rows` training rows and scores each feature by itself with 2-fold
        cross-validation: a lookup from the feature's value to the majority class (or mean
        target) when it has at most `max_values` distinct values, else the target of the
        nearest training value (1-nearest neighbour in one dimension). Both are exact for a
        copy, or any one-to-one transform, of the target, and only noisier than a tuned model
        for an honest feature. The score is 1 - errors / baseline errors (baseline: always the
        majority class) for classification and the held-out R^2 for regression: a cheap,
        single-feature cousin of the predictive power score of deepchecks'
        FeatureLabelCorrelation. It fires when a feature scores at least `min_score`
        (classification) or `min_r2` (regression), its errors are too few for an honest
        feature scoring `honest_score` (Poisson probability under `alpha`), and fewer than half
        the features do so (when most features are near-perfect the task is easy, not leaked).
        A regression feature that another, honest input column predicts about as well as it
        predicts the target (`series_factor`), and better than that column predicts the
        target, is a lag of a series the inputs hold (a forecaster's window of past values of
        a trending or seasonal series), not a copy of the target: it does not fire. The column
        that predicts it may be near-perfect itself (the lag just before it in a smooth
        series) when it predicts it with at most 1/`series_factor` of the error it makes on
        the target.
        Judged at `min_rows` rows, each time the rows seen double, and at the end. Each
        judgement scores a seeded subsample of the reservoir's distinct rows: `score_rows`, or
        more where the label is so imbalanced that fewer rows would not hold 300 majority-class
        errors (the count from which the Poisson rule no longer decides in place of the score).
        A feature that predicts the label exactly still does on any subsample. A classification
        feature whose errors, were they a fixed count, would reach `min_score` on all the
        distinct rows kept is scored again on all of them: an id that follows a sorted label
        errs only at the class boundaries (about one error per boundary and fold, whatever the
        rows), so its score rises with the rows (digits' row number: 0.96 on 512 rows, 0.99 on
        1,400), while an honest feature's does not. A classification feature is no longer scored
        once its held-out errors, lowered to their one-sided 1e-6 Poisson bound and kept fixed
        while the rows grow to `max_rows`, would still leave it under `min_score` (the 2-fold
        baseline is at most the rows scored): with the defaults, more than ~78 errors. A
        judgement of more than 256 distinct rows of labels the majority class would get wrong
        on ~78 of 128 rows (3 or more classes) first scores every feature on 128 of them and
        retires so; the features left are scored as before. When no feature is left, the check
        keeps no more rows (an honest digits run: judged once, on its 128-row screen).

    Why it matters:
        A copy of the label, an id that follows a sorted label, or a value recorded after the
        outcome makes training and validation look excellent while the model learns nothing
        usable: at prediction time that feature is missing or meaningless.

    How to fix:
        Drop the feature, or rebuild it from information available at prediction time; check
        the join or preprocessing that produced it (target encoding fitted on all rows, a
        label column left in the feature matrix, row ids of sorted data).

    Example:
        df = pd.read_csv("churn.csv")
        X = df.drop(columns=["customer_id"]).values  # "churned" is still in X
        y = df["churned"].values
        x_train, x_val, y_train, y_val = train_test_split(X, y, test_size=0.2)
        model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=20)
        # validation accuracy 1.00 from the first epoch

    Use instead:
        df = pd.read_csv("churn.csv")
        # out of the inputs: the label, and what is only known after the outcome
        X = df.drop(columns=["customer_id", "churned", "refund_amount"]).values
        y = df["churned"].values
        x_train, x_val, y_train, y_val = train_test_split(X, y, test_size=0.2)
        model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=20)

    Args:
        min_score: classification score that counts as near-perfect. Default 0.98. Calibration:
            on breast_cancer the best single feature scores ~0.75 (accuracy ~0.91 against a
            0.63 majority baseline), on iris petal width ~0.93; a copied label scores 1.0.
        honest_score: the best score an honest single feature is assumed to reach. Default 0.95
            (above iris' petal width), so that with few rows near-perfect by luck cannot fire.
        alpha: the Poisson tail probability that rules out such an honest feature. Default
            0.01: with a 0/1 label at 37% minority (breast_cancer) a copied label fires from
            ~250 rows on.
        min_r2: regression R^2 that counts as near-perfect. Default 0.98: a copy of a
            continuous target scores ~0.999, honest features far less with the 1-nearest-
            neighbour predictor (its held-out R^2 is below the feature's true R^2). A target
            computed from one feature does fire: breast_cancer's mean area (~pi * radius^2)
            scores 0.997 from the mean radius.
        min_rows: rows needed before judging. Default 200.
        max_rows: reservoir size. Default 2048.
        score_rows: rows scored per judgement (a seeded subsample of the distinct rows kept),
            at least. Default 512: the per-feature scores sort every column, and 512 rows hold
            300 majority-class errors whenever the majority class is under 41% of the rows (10
            balanced digits: ~460); more imbalanced labels get the rows they need (a 37%
            minority, breast_cancer: 811), up to all the distinct rows kept.
        max_features: wider inputs (images, embeddings) are not tabular and are skipped.
            Default 512.
        max_values: features with at most this many distinct values are looked up by value.
            Default 32.
        series_factor: a regression feature that predicts the target near-perfectly is taken
            for one more lag of a series in the inputs (a forecaster's window of past values)
            where another input column predicts it with at most this many times its own
            unexplained share of the target's variance, and better than it predicts the target
            (a column that reaches `min_r2` itself: with at most 1/this of the error it makes
            on the target). Default 2.0: one lag back the problem is the
            same, so the two shares agree up to sampling noise and a change of lag (a weekly
            series' lag-7 column: 0.012 against its neighbour's 0.019); a copy of the target
            is predicted by an honest column no better than the target itself.
    """

    id = "feature-leakage"
    family = "leakage"
    severity = Severity.ERROR
    reads_probe = True  # large samples are not tabular: skipped
    #: a leaked label must be caught in the first epoch, also on a few hundred rows of tabular data
    #: that a sample of batches would not reach; cheap: judged at 200 rows and each doubling
    consumes = frozenset({Signal.EVERY_BATCH})

    def __init__(
        self,
        min_score: float = 0.98,
        honest_score: float = 0.95,
        alpha: float = 0.01,
        min_r2: float = 0.98,
        min_rows: int = 200,
        max_rows: int = 2048,
        max_features: int = 512,
        max_values: int = 32,
        score_rows: int = 512,
        series_factor: float = 2.0,
    ) -> None:
        self.series_factor = series_factor
        self.min_score = min_score
        self.honest_score = honest_score
        self.alpha = alpha
        self.min_r2 = min_r2
        self.min_rows = min_rows
        self.max_rows = max_rows
        self.max_features = max_features
        self.max_values = max_values
        self.score_rows = score_rows
        super().__init__()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._prints: np.ndarray | None = None  # fingerprints of the rows of `_x`
        self._task: str | None = None
        self._seen = 0
        self._judged_at = 0
        self._judged_prints: np.ndarray | None = None  # the distinct rows of the last judgement
        #: the reservoir's draws, seeded (0); built when a row first competes for a slot, as
        #: most runs' checks are built and reset without one (seeding costs ~0.1 ms)
        self._rng: np.random.Generator | None = None
        self._last: tuple[int | None, int | None] = (None, None)
        #: classification columns still scored (`_retire`; None: all) and each column's last score
        self._live: np.ndarray | None = None
        self._last_scores: np.ndarray | None = None

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        x, y = batch.inputs, batch.targets
        if batch.split != "train" or x is None or y is None or x.ndim != 2 or len(x) == 0:
            return ()
        if self._all_retired():
            return ()  # no column can reach `min_score` on any rows kept: nothing left to judge
        if x.dtype.kind not in "fiub" or not 2 <= x.shape[1] <= self.max_features or len(y) != len(x):
            return ()
        labels = class_labels(y, run)
        task = "classification" if labels is not None else None
        rows = None  # the batch's rows kept (None: all)
        if task is None:
            yy = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
            if yy.ndim != 1 or yy.dtype.kind not in "fiu":
                return ()
            labels, task = yy.astype(np.float64), "regression"
            finite = np.isfinite(labels)
            if not finite.all():
                x, labels, rows = x[finite], labels[finite], finite
        if not len(x):
            return ()  # no row with a finite target
        if (
            (self._task is not None and task != self._task)
            or (self._x is not None and self._x.shape[1] != x.shape[1])
            or len(labels) != len(x)
        ):
            return ()  # an inconsistent stream: keep what was collected
        self._task = task
        if x.dtype.kind == "f" and x.dtype.itemsize >= 4:  # hashed as float32 either way: shared
            prints = batch.input_fingerprints() if rows is None else batch.input_fingerprints()[rows]
        else:
            prints = None  # ints: hashed as the float64 rows kept
        self._add(x.astype(np.float64, copy=False), labels, prints)
        self._last = (batch.step, batch.epoch)
        if self._seen >= self.min_rows and self._seen >= 2 * self._judged_at:
            return self._judge()  # judged at min_rows, then each time the rows seen double
        return ()

    def on_end(self, run: RunState) -> Iterable[Finding]:
        if self._x is None or self._seen == self._judged_at or self._all_retired():
            return ()
        return self._judge()

    def _all_retired(self) -> bool:
        """Every column retired (`_retire`): no judgement could fire any more."""
        return self._live is not None and not self._live.any()

    def _add(self, x: np.ndarray, y: np.ndarray, prints: np.ndarray | None = None) -> None:
        """Reservoir sampling (algorithm R) of rows, bounded by `max_rows`, with their
        fingerprints (`prints`, or hashed here)."""
        if prints is None:
            prints = fingerprints(x)
        if self._x is None:
            self._x = np.empty((0, x.shape[1]))
            self._y = np.empty(0, dtype=y.dtype)
            self._prints = np.empty(0, dtype=np.uint64)
        self._restore_prints()
        have = len(self._x)
        room = max(0, self.max_rows - have)
        if room:
            self._x = np.concatenate([self._x, x[:room]])
            self._y = np.concatenate([self._y, y[:room]])
            self._prints = np.concatenate([self._prints, prints[:room]])
        taken = min(room, len(x))
        rest = len(x) - taken
        if rest:
            # row i of the rest is the (seen + i + 1)-th row: it replaces a random slot with
            # probability max_rows / (seen + i + 1); later rows win ties, as in the loop
            ordinal = self._seen + taken + np.arange(1, rest + 1)
            if self._rng is None:
                self._rng = np.random.default_rng(0)
            slot = (self._rng.random(rest) * ordinal).astype(np.int64)
            hit = slot < self.max_rows
            self._x[slot[hit]] = x[taken:][hit]
            self._y[slot[hit]] = y[taken:][hit]
            self._prints[slot[hit]] = prints[taken:][hit]
        self._seen += len(x)

    def _restore_prints(self) -> None:
        """The reservoir's fingerprints where a checkpoint saved without them left none."""
        if self._prints is None or len(self._prints) != len(self._x):
            self._prints = fingerprints(self._x) if len(self._x) else np.empty(0, dtype=np.uint64)

    def scores(self, distinct: np.ndarray | None = None, screen: bool = False) -> tuple[np.ndarray, float]:
        """Per-feature 2-fold cross-validated scores of the reservoir, and the baseline: the
        error count of always predicting the majority class (classification) or the squared
        error of predicting the mean (regression). For reports and tests. `distinct`: the
        reservoir's distinct rows (indices, in order), when the caller has them already. `screen`:
        on `_SCREEN_ROWS` of them (`_screen`)."""
        # rows seen again in later epochs would sit in both folds and let the 1-nearest-neighbour
        # predictor memorise them: score distinct rows only
        if distinct is None:
            distinct = np.sort(np.unique(fingerprints(self._x), return_index=True)[1])
        classification = self._task == "classification"
        distinct = self._subsample(distinct, self._y[distinct] if classification else None, screen)
        live = None if self._live is None or self._live.all() else np.flatnonzero(self._live)
        x, y = self._x[distinct] if live is None else self._x[np.ix_(distinct, live)], self._y[distinct]
        if classification:
            y = np.unique(y, return_inverse=True)[1]
        n = len(x)
        folds = _two_folds(n)
        errors = np.zeros(x.shape[1])
        baseline = 0.0
        keys, lookups, either, gathered = self._lookup_keys(x, folds)
        for (fit, test), lookup, pair in zip((folds, folds[::-1]), lookups, (gathered, gathered and gathered[::-1])):
            if classification:
                fold_baseline = _majority_errors(y, fit, test)
            else:
                fold_baseline = float(((y[test] - y[fit].mean()) ** 2).sum())
            baseline += fold_baseline
            if lookup.any():
                pred = _lookup_fold(keys, fit, y[fit], test, classification, pair)[:, lookup[either]]
                if classification:
                    errors[lookup] += (pred != y[test][:, None]).sum(axis=0)
                else:
                    errors[lookup] += ((y[test][:, None] - pred) ** 2).sum(axis=0)
            for j in np.flatnonzero(~lookup):
                errors[j] += self._column_errors(x[:, j], y, fit, test, classification, fold_baseline)
        scores = 1.0 - errors / baseline if baseline > 0 else np.zeros(x.shape[1])
        if live is not None:  # a retired column: no errors, its last score (far below `min_score`)
            errors_live, scores_live = errors, scores
            errors, scores = np.full(len(self._live), np.nan), self._last_scores.copy()
            errors[live], scores[live] = errors_live, scores_live
        self._errors, self._rows, self._scored = errors, n, (x, y, folds)
        return scores, baseline

    def _lookup_keys(
        self, x: np.ndarray, folds: tuple[np.ndarray, np.ndarray]
    ) -> tuple[tuple | None, list[np.ndarray], np.ndarray | None, list[np.ndarray] | None]:
        """The folds split the same rows: the value keys (`_value_keys`) of the columns that
        either fold may look up by value, computed once for both, and which columns each fold
        looks up: a finite column whose distinct values a fold's rows can bring down to
        `max_values`. Returns (keys of the columns either fold looks up, or None; each fold's
        columns looked up; either's; the keys of each fold's rows, which the two folds swap,
        or None)."""
        columns = np.ascontiguousarray(x.T)  # one row per column: contiguous sorts
        ordered = np.sort(columns, axis=1)
        distinct = 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(axis=1)
        maybe = np.isfinite(x).all(axis=0) & (distinct <= self.max_values + max(map(len, folds)))
        lookups = [np.zeros(x.shape[1], dtype=bool) for _ in folds]
        if not maybe.any():
            return None, lookups, None, None
        keys = _value_keys(x, ordered, columns) if maybe.all() else _value_keys(x[:, maybe], ordered[maybe])
        gathered = [keys[0][:, rows] for rows in folds]
        for fit_keys, lookup in zip(gathered, lookups):
            lookup[maybe] = _lookup_columns(keys, None, self.max_values, fit_keys)
        either = lookups[0] | lookups[1]
        # the other columns' keys would only cost memory in the lookups
        narrowed = _key_columns(keys, either[maybe]) if either.any() else None
        return narrowed, lookups, either, gathered if narrowed is keys else None

    def _subsample(self, rows: np.ndarray, labels: np.ndarray | None, screen: bool = False) -> np.ndarray:
        """A seeded subsample of `rows` (indices into the reservoir, in order) to score: at least
        `score_rows` rows, and for classification enough that always guessing the majority class
        would be wrong on `SCORE_BASELINE_ERRORS` of them, so that the Poisson rule does not bind
        at `min_score` (see the class docstring); all of them when there are fewer. `screen`:
        `_SCREEN_ROWS` rows, which retiring needs no more than (`_retire` is one-sided)."""
        want = _SCREEN_ROWS if screen else self.score_rows
        if labels is not None and len(labels) and not screen:
            wrong = 1.0 - np.unique(labels, return_counts=True)[1].max() / len(labels)
            if wrong > 0:
                want = max(want, math.ceil(SCORE_BASELINE_ERRORS / wrong))
        if len(rows) <= want:
            return rows
        return np.sort(np.random.default_rng(2).choice(rows, size=want, replace=False))

    def _column_errors(
        self,
        column: np.ndarray,
        y: np.ndarray,
        fit: np.ndarray,
        test: np.ndarray,
        classification: bool,
        fold_baseline: float,
    ) -> float:
        """One feature's held-out errors on a fold (`_single_feature_predictions`): wrong labels, or
        the squared error; `fold_baseline` where the feature gives no prediction (no information:
        as bad as the baseline)."""
        pred = _single_feature_predictions(column[fit], y[fit], column[test], classification, self.max_values)
        if pred is None:
            return fold_baseline
        if classification:
            return float((pred != y[test]).sum())
        return float(((y[test] - pred) ** 2).sum())

    def _rescore_boundary_limited(
        self, distinct: np.ndarray, scores: np.ndarray, rows: np.ndarray, baselines: np.ndarray
    ) -> None:
        """Scores again, on all the reservoir's distinct rows, the classification features that
        the subsample cannot decide: those whose held-out errors, were they a fixed count, would
        reach `min_score` against the baseline of all these rows. An id that follows a sorted
        label (a row number kept by `reset_index()`) is a monotone step function of the label:
        its 1-nearest-neighbour errors sit at the class boundaries only (about one per boundary
        and fold, whatever the rows), so its score rises with the rows scored (10 digits
        classes: ~0.96 on 512 rows, ~0.985 on 1,400), while an honest feature's error rate, and
        so its score, does not depend on the rows. Same folds rule, same thresholds: only the
        sample is larger. Updates `scores`, `self._errors`, `rows` and `baselines` in place."""
        subsample = self._rows
        if len(distinct) <= subsample:
            return  # the subsample was all the distinct rows already
        reach = 1.0 - self._errors / (baselines * len(distinct) / subsample)
        candidates = np.flatnonzero((scores < self.min_score) & (reach >= self.min_score))
        if not len(candidates):
            return
        x, y = self._x[distinct], np.unique(self._y[distinct], return_inverse=True)[1]
        n = len(x)
        folds = _two_folds(n)
        fold_baselines = [_majority_errors(y, fit, test) for fit, test in (folds, folds[::-1])]
        baseline = sum(fold_baselines)
        if baseline <= 0:
            return
        for j in candidates:
            errors = sum(
                self._column_errors(x[:, j], y, fit, test, True, fold_baseline)
                for (fit, test), fold_baseline in zip((folds, folds[::-1]), fold_baselines)
            )
            self._errors[j], scores[j], rows[j], baselines[j] = errors, 1.0 - errors / baseline, n, baseline

    def _screened_out(self, distinct: np.ndarray) -> bool:
        """Retires, before a judgement of `distinct` rows, the classification columns that
        `_SCREEN_ROWS` of them already rule out (`_retire`), so that the judgement scores the
        rest only: a column's errors on the screen's rows are the count `_retire` takes to stay
        at least as large on more rows (an honest feature's grow with them). True when no
        column is left to score."""
        if self._task == "classification" and len(distinct) > 2 * _SCREEN_ROWS:
            # a column errs at most where the majority class would, give or take: the screen
            # retires nothing unless that reaches the fewest errors `_retire` retires
            wrong = 1.0 - np.unique(self._y[distinct], return_counts=True)[1].max() / len(distinct)
            if wrong * _SCREEN_ROWS > (math.sqrt((1.0 - self.min_score) * self.max_rows) + _RETIRE_Z / 2) ** 2:
                self._retire(self.scores(distinct, screen=True)[0])
        return self._all_retired()

    def _retire(self, scores: np.ndarray) -> None:
        """Stops scoring the classification columns that no later judgement could find
        near-perfect: a later judgement scores at most `max_rows` rows, so its 2-fold baseline is
        at most `max_rows` errors, and a column's held-out errors are taken to stay at least the
        count just measured (an honest feature's grow with the rows; one that errs only at class
        boundaries keeps a fixed count), lowered to its one-sided 1e-6 Poisson bound
        (`_RETIRE_Z`). Where even that count leaves the score under `min_score` at `max_rows`
        rows, the column is retired; its last score stays in `scores` (a runner-up's evidence).
        A copied or near-copied label (errors under ~78 with the defaults) is never retired."""
        low = np.maximum(np.sqrt(self._errors) - _RETIRE_Z / 2, 0.0) ** 2  # NaN: retired before
        self._live = ~(low > (1.0 - self.min_score) * self.max_rows) & ~np.isnan(self._errors)
        self._last_scores = scores.copy()

    def _series_member(self, j: int, leaky: list[int], score: float) -> bool:
        """Whether regression feature `j`, which predicts the target near-perfectly, is one
        more lag of a series whose other lags are inputs too (a forecaster's window of past
        values, repeated readings of one quantity), rather than a copy of the target.

        In a window of a smooth or trending series the target is the next value of the
        inputs' own series: some input column that does not itself predict the target k
        predicts column `j` about as well as `j` predicts the target (the same problem one
        lag back), and better than it predicts the target (it sits nearer `j` in the series).
        A copy of the target, however transformed, is predicted by an honest column no better
        than the target itself is (its error is the column's error on the target plus the
        copy's own noise), so it keeps firing. Measured with the scores' own 1-nearest-
        neighbour predictor on the same rows and folds; `series_factor` bounds "about as
        well".

        Column k may itself predict the target near-perfectly (the lag just before `j` in a
        smooth series: its R^2 on the target two steps on is above `min_r2` too); then it must
        predict `j` with at most 1/`series_factor` of the error it makes on the target. Two
        copies of the target fail that: each predicts the other no better than it predicts the
        target (the other copy's own noise adds to the error)."""
        x, y, folds = self._scored
        target_error = 1.0 - score  # unexplained share of the target's variance
        for k in range(x.shape[1]):
            if k == j:
                continue
            to_j = _cross_validated_r2(x[:, k], x[:, j], folds, self.max_values)
            if 1.0 - to_j > self.series_factor * target_error:
                continue
            to_y = _cross_validated_r2(x[:, k], y, folds, self.max_values)
            # a near-perfect k could be a second copy of the target: it must sit clearly nearer j
            nearer = (1.0 - to_y) >= self.series_factor * (1.0 - to_j) if k in leaky else to_j > to_y
            if nearer:
                return True
        return False

    def _judge(self) -> Iterable[Finding]:
        self._judged_at = self._seen
        if self._x is None or len(self._x) < self.min_rows:
            return
        self._restore_prints()
        prints, first = np.unique(self._prints, return_index=True)
        if self._judged_prints is not None and np.array_equal(prints, self._judged_prints):
            return  # the rows since are copies of rows judged already (a later epoch's sample)
        self._judged_prints = prints
        if len(first) < self.min_rows or self._screened_out(np.sort(first)):
            return  # distinct rows count: a small data set seen for many epochs stays small
        scores, baseline = self.scores(np.sort(first))
        if baseline <= 0:
            return  # a single class or a constant target: nothing to predict
        classification = self._task == "classification"
        # per feature: the rows scored and their baseline (all distinct rows for a rescored one)
        rows = np.full(len(scores), self._rows)
        baselines = np.full(len(scores), baseline)
        if classification:
            self._rescore_boundary_limited(np.sort(first), scores, rows, baselines)
            self._retire(scores)
        threshold = self.min_score if classification else self.min_r2
        leaky = [int(j) for j in np.flatnonzero(scores >= threshold)]
        if classification:
            leaky = [
                j
                for j in leaky
                if _poisson_cdf(int(self._errors[j]), (1 - self.honest_score) * baselines[j]) < self.alpha
            ]
        if not leaky or 2 * len(leaky) >= len(scores):
            return
        if not classification:
            leaky = [j for j in leaky if not self._series_member(j, leaky, scores[j])]
            if not leaky:
                return  # lags of one series (an autoregressive window), not a copy of the target
        rest = np.delete(scores, leaky)
        runner_up = int(np.flatnonzero(scores == rest.max())[0]) if rest.size else None
        step, epoch = self._last
        for j in leaky:
            what = "label" if classification else "target"
            if classification:
                base_acc = float(1 - baselines[j] / rows[j])
                acc = float(1 - self._errors[j] / rows[j])
                how = f"{acc:.1%} of held-out rows right vs {base_acc:.1%} for always guessing the majority class"
                extra = {
                    "accuracy": acc,
                    "baseline_accuracy": base_acc,
                    "errors": int(self._errors[j]),
                    "baseline_errors": int(baselines[j]),
                }
            else:
                how = f"held-out R^2 {scores[j]:.3f}"
                extra = {"r2": float(scores[j])}
            yield self.finding(
                f"Input feature {j} alone predicts the {what} ({how}): it very likely leaks the {what}.",
                evidence={
                    "feature": j,
                    "score": float(scores[j]),
                    **extra,
                    "runner_up_feature": runner_up,
                    "runner_up_score": None if runner_up is None else float(scores[runner_up]),
                    "rows": int(rows[j]),
                    "distinct_rows": len(first),
                    "features": len(scores),
                },
                hint=f"Drop feature {j} or rebuild it from information available at prediction "
                f"time (a copy of the {what}, an id of sorted data, or a value recorded "
                f"after the outcome leaks it).",
                step=step,
                epoch=epoch,
                key=f"feature-{j}",
            )
