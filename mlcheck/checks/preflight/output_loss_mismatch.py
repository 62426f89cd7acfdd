"""`output-loss-mismatch`: does the output activation and width fit the loss and labels?"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.data import chi2_z
from mlcheck.checks.preflight.harness import (
    integral,
    kept_random_state,
    loss_family,
    skipped,
)
from mlcheck.findings import Finding, Severity
from mlcheck.metrics import is_bounded_score
from mlcheck.task import SCALE_SENSITIVE_LOSSES
from mlcheck.trainable import LossConfig

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext
    from mlcheck.run import BatchObservation, RunState

#: rows of a softmax sum to 1 up to float32 rounding (~1e-6 per term); 1e-4 also holds for 1,000 classes
_SUM_TOL = 1e-4
#: An (N, 1) output against (N,) targets is told broadcast by its loss's value where the crossed
#: and the paired errors differ by this much of the loss: 10x float32's rounding of a mean over a
#: batch's N x N pairs (~1e-6), which a loss that equals one of them to its rounding settles.
BROADCAST_RESOLUTION = 1e-5
#: the share of the targets' variance that clipping to the output's range leaves unreachable
#: above which `target-range` warns: 1% (an R^2 capped at 0.99; noise just past a bound stays silent)
_UNREACHABLE_SHARE = 0.01
#: integer targets 0..K-1 with K at most this may be class indices (digits' 10,
#: CIFAR-100's 100 are past it: a 100-class problem fed to a one-unit MSE is rarer than a count)
_MAX_INDEX_CLASSES = 50
#: ... and at least this many: 0/1 targets under MSE are a binary problem with its own advice
_MIN_INDEX_CLASSES = 3
#: class labels are roughly balanced: the rarest value holds at least this share of the uniform
#: n/K (counts and ratings thin out in a tail: Poisson(3) puts 0.8% on 10 against a uniform 9%)
_MIN_INDEX_SHARE = 0.25
#: ... and the counts do not differ from equal ones beyond this z (a chi-square goodness-of-fit
#: test against the uniform, as a z score: 3 is p ~ 0.001, so balanced labels pass at any n)
_MAX_UNIFORM_Z = 3.0
#: targets per distinct value needed before the shares are judged (Cochran's rule for the
#: chi-square test: expected counts of 5), and at least this many in all: 4 batches of 32, where
#: Poisson(2) counts already sit ~5 z from uniform (at 64 they pass one time in ten)
_MIN_PER_INDEX = 5
_MIN_POOLED_INDICES = 128
#: judged at the first of those, then each time the targets pooled double, up to this many
_MAX_POOLED_INDICES = 4096
#: losses that take class indices and truncate fractional labels to integers without a word (Keras'
#: torch backend converts the target with `dtype=torch.long`); torch's own index losses refuse them
_INDEX_LOSSES = frozenset({"sparse_categorical_crossentropy", "sparse_categorical_focal_crossentropy"})
_SPLIT_NAMES = {"train": "training", "val": "validation"}
#: multi-hot targets: at least this many rows, and this share of them with 2+ labels on (one-hot
#: targets have none; a multi-label data set with a rarer second label still has some in 8 rows)
_MIN_MULTI_HOT_ROWS = 8
_MULTI_HOT_SHARE = 0.05
#: the closed range each bounding output activation can reach (names as the adapters report them)
_OUTPUT_RANGE: dict[str, tuple[float, float]] = {
    "relu": (0.0, math.inf),
    "relu6": (0.0, 6.0),
    "softplus": (0.0, math.inf),
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hardtanh": (-1.0, 1.0),
}


#: outputs exactly 0 in at least this share are rectified: a ReLU zeroes about half of its
#: inputs at initialisation (pre-activations symmetric about 0, He et al. 2015), while no linear
#: layer's output is exactly 0 but by chance
_RECTIFIED_SHARE = 0.25


def _rectified(out: np.ndarray) -> bool:
    """Whether outputs look ReLU'd: finite, none negative, and many exactly 0."""
    return bool(out.size >= 8 and np.all(np.isfinite(out)) and out.min() >= 0 and np.mean(out == 0) >= _RECTIFIED_SHARE)


#: how near the loss the program reports must come to the cross-entropy of the outputs for the log to
#: count as taken between the model and `NLLLoss` (float32 sums of a batch agree to ~1e-6)
_LOG_TAKEN_TOL = 1e-4


def _log_taken(out: np.ndarray, y: np.ndarray | None, reported: float) -> bool:
    """Whether the loss the program computes on the batch (`reported`) is the cross-entropy of the
    model's outputs, not `NLLLoss` of the outputs as they are: a `training_step` that takes
    `torch.log` of softmax outputs (or `log_softmax` of raw scores) itself before `F.nll_loss`, a
    correct program whose model outputs probabilities. False when it cannot be told (no class
    indices, class weights, another reduction): the outputs alone are then judged."""
    if y is None or out.ndim != 2 or not math.isfinite(reported):
        return False
    labels = np.asarray(y).reshape(-1)
    if len(labels) != len(out) or not integral(labels) or labels.min() < 0 or labels.max() >= out.shape[1]:
        return False
    rows = np.arange(len(out))
    scores = out.astype(np.float64)
    as_given = -float(np.mean(scores[rows, labels.astype(np.int64)]))
    if math.isclose(reported, as_given, rel_tol=_LOG_TAKEN_TOL, abs_tol=1e-6):
        return False  # NLLLoss reads the outputs as they are: the finding stands
    if scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0, atol=_SUM_TOL):
        with np.errstate(divide="ignore"):
            log_p = np.log(scores)
    else:
        top = scores.max(axis=1, keepdims=True)
        log_p = scores - top - np.log(np.exp(scores - top).sum(axis=1, keepdims=True))
    taken = -float(np.mean(log_p[rows, labels.astype(np.int64)]))
    return math.isfinite(taken) and math.isclose(reported, taken, rel_tol=_LOG_TAKEN_TOL, abs_tol=1e-6)


def _least_log_loss(low: float, high: float, classes: int) -> float:
    """The least cross-entropy logits bounded to [low, high] can score: the true class's at
    `high`, every other at `low`."""
    return math.log1p((classes - 1) * math.exp(low - high))


@register
class OutputLossMismatch(Check):
    """The model's output activation or width does not fit its loss and labels.

    What it does:
        Compares the last operation on the outputs, the output width and the labels of the first
        `batches` training batches with the loss. ERROR: a one-unit softmax (always outputs 1),
        integer labels outside [0, output units) for a multi-class loss, negative labels,
        binary-loss (sigmoid) outputs with multi-class labels or with two classes encoded other
        than 0 and 1 (a 0/255 mask, -1/1), labels with fractions (soft or smoothed labels,
        probabilities; key `labels-fractional`) fed to a loss that takes class indices (Keras'
        `sparse_categorical_crossentropy` casts them to integers, so 0.95 trains as class 0;
        through a single output unit, with labels outside [0, 1], key `regression-targets`: a
        regression compiled with a classification loss, the fix names `loss='mse'`).
        WARNING: softmax or sigmoid
        outputs fed to a loss that applies them itself (`CrossEntropyLoss`, `BCEWithLogitsLoss`,
        Keras `from_logits=True`), probabilities or raw scores fed to `NLLLoss` (it expects
        log-probabilities; not when the loss the program computes on the first batch is the
        outputs' cross-entropy: a `training_step` that takes `torch.log` of the softmax itself
        before `NLLLoss`, which is correct), unbounded outputs fed to a loss that expects probabilities, a
        softmax over more than two units fed to a binary (per-unit) loss, a ReLU, softplus,
        tanh or hardtanh on the outputs of a loss that takes logits (key `bounded-logits`: a
        non-negative logit can never give a class a probability below 0.5 in a binary loss, nor
        be lowered below another in a multi-class one; a bounded one caps the confidence; a
        ReLU applied in `forward` without a module is read from the outputs: none negative,
        a quarter or more exactly 0), outputs normalised
        over the batch axis (`softmax(dim=0)`: each column sums to 1, not each row), a dropout
        layer after a softmax or sigmoid output (key `output-dropout`: in training it zeroes
        some probabilities and scales the rest by 1 / (1 - rate), so the loss reads none and
        goes NaN; the output activation is read past the dropout), a normalisation layer
        (BatchNorm, LayerNorm, GroupNorm) after a softmax or sigmoid output (key
        `output-normalisation`: it re-centres and re-scales the probabilities, some negative,
        rows no longer summing to 1; Keras reads the layers, torch the module called before
        the one that produced the outputs), multi-hot targets fed to a
        softmax cross-entropy (key `multi-hot`: 0/1 target rows of the output's width, 5% or
        more of the first batches' rows with two or more 1s; the softmax makes the labels share
        one unit of probability, so a sample with two labels scores at best 0.5 on each; one-hot,
        smoothed, mixed-up or a teacher's soft targets stay silent), and a
        regression output squashed by ReLU, softplus, sigmoid or tanh while some targets lie
        outside the range it can reach. A Poisson loss (Keras `poisson`, torch `PoissonNLLLoss`)
        on targets of which 1% or more are negative (key `poisson-negative-targets`): the loss is
        a count's negative log-likelihood, with no minimum for a negative target (it falls without
        bound as the prediction goes to 0); counts standardised like the features are the usual
        cause. A loss of the user's own (Keras) that equals a built-in loss with its two
        arguments swapped (key `arguments-swapped`, WARNING): `def loss(y_pred, y_true)` around
        `categorical_crossentropy`, where Keras passes `y_true` first, so the labels are scored
        as the prediction. Told exactly, once at train start: the custom loss and each built-in
        whose value depends on the order (cross-entropies, KL divergence, Poisson, percentage
        error, hinges) are computed on the first batch in both orders, and the custom loss
        equals the swapped one sample by sample and not the right one.

        The class axis misread (key `class-axis`, torch): 3-D logits (batch, positions,
        classes) straight from a last `nn.Linear` (whose features are the last axis, the
        output unpermuted) given to a cross-entropy or NLL that reads dim 1 as the classes
        (`F.cross_entropy(logits, y)` on a tagger's outputs; with as many positions as classes
        torch raises nothing): judged by the loss measured on the first batch, which equals the
        cross-entropy over dim 1 and not the one over the last axis. Taggers that transpose to
        (batch, classes, time) in forward or in the step, flatten to (batch x time, classes),
        or end in a 1-D convolution whose channels are the classes stay silent. A last Linear
        that maps the time axis of (batch, classes, time) features, with as many output steps
        as classes, would read the same: not seen in any program here.

        Class indices under a regression loss (key `class-indices`): a one-unit output trained
        with MSE, MAE, Huber or log-cosh on targets that are the whole numbers 0..K-1 (3 <= K
        <= 50), every value present and none rarer than a quarter of the uniform share (counts
        and ratings thin out in a tail and stay silent). The labels are pooled from the first
        training batches (at train start the callbacks see one batch; the sampled batches
        complete the count). That alone is INFO: ordinal scores look the same. It becomes a
        WARNING (key `class-indices-accuracy`) when the run also logs an accuracy-like metric
        (accuracy, auc, f1, precision, recall), which a count or score regression does not.
        It is this check's because the loss and the output width do not fit the labels, as
        with labels outside the output's range; large regression targets are
        `unnormalized-input`'s business. Class indices under a regression loss of a K-unit
        output (key `class-indices-broadcast`, ERROR): integer targets in [0, K), one per
        sample (shape (N,) or (N, 1)), and a loss whose value on the first batch is the
        squared, absolute or Huber error of every unit against the sample's index (the targets
        broadcast or expanded to N x K): each unit is trained to output the index, so the
        argmax means nothing. A one-unit output of shape (N, 1) against targets of shape (N,)
        (or the reverse) under an elementwise loss (key `broadcast`, ERROR): the loss broadcasts
        them to N x N pairs and pulls every output to the targets' mean (squared error) or
        median (absolute error). Told by the loss's value (the N x N mean, not the paired one),
        or, where the two are equal (an absolute error of untrained outputs below every
        target), by torch's own warning "Using a target size ... different to the input size",
        caught while the adapter measures the first batch's loss. One output per time step,
        (N, T, 1), against one target per sequence, (N,) or (N, 1) (a Keras recurrent layer left
        at `return_sequences=True` before `Dense(1)`), with the loss equal to the target
        broadcast over the steps (key `broadcast`; ERROR for (N,) targets, crossed N x T x N,
        WARNING for (N, 1), each step against its own sequence's target): steps that have not
        yet seen what the target depends on are trained to predict it. An accuracy logged for a
        regression (key
        `accuracy-on-regression`, WARNING): a regression loss, fractional training targets and
        a metric named accuracy (Keras' `metrics=["accuracy"]` copied from a classifier):
        accuracy counts exact matches with a class, which a fractional target never is, so it
        reads 0 at every epoch, and an EarlyStopping or checkpoint on it follows nothing. The
        same key for whole-number targets that are not only 0 and 1 (counts) under a one-unit
        regression with a metric named exactly `accuracy` (or `acc`) that reads no more than
        0.1 over the share of targets 0 and 1: one unit's accuracy thresholds the output at
        0.5, so it can match only those; labels that look like class indices 0..K-1 are
        `class-indices`' instead.

    Why it matters:
        These combinations run without an error yet train badly or not at all: a softmax before
        `CrossEntropyLoss` squashes the gradients and stalls learning; a one-unit softmax is a
        constant; out-of-range labels crash on some devices and silently corrupt on others
        (UMLAUT, DeepDiagnosis, AUTOTRAINER all list these).

    How to fix:
        Output raw logits for from-logits losses (drop the final softmax/sigmoid), give the last
        layer as many units as classes, use sigmoid + binary loss for two classes with one unit,
        `LogSoftmax` before `NLLLoss`, and check the label encoding. Class labels belong in a
        K-unit output with cross-entropy, not in one unit with MSE, nor in K units with MSE
        against the index copied to each (one-hot targets of shape (N, K) if a regression loss
        is really meant).

    Args:
        batches: training batches whose labels are checked. Default 4.

    Example:
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.Softmax(dim=1))
        loss = nn.CrossEntropyLoss()(model(x), y)  # applies softmax a second time

    Use instead:
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))  # logits
        loss = nn.CrossEntropyLoss()(model(x), y)
        probabilities = model(x).softmax(dim=1)  # for predictions only
    """

    id = "output-loss-mismatch"
    family = "pre-flight"
    severity = Severity.ERROR
    #: cheap and structural: the callbacks also run it at train start, on the live model's copy;
    #: `class-indices` then counts the labels of every batch of the first pass (one bincount
    #: per batch while a one-unit regression is judged; nothing otherwise)
    consumes = frozenset({Signal.TRAIN_START, Signal.EVERY_BATCH})
    reads_probe = True  # the labels only

    def __init__(self, batches: int = 4):
        self.batches = batches
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        with kept_random_state(t):
            batches = t.batches("train", self.batches)
            if not batches:
                return [skipped(self, "there is no training data")]
            cfg = t.loss_config()
            out = np.asarray(t.forward(batches[0]))
            ys = [t.to_numpy(b)[1] for b in batches]
            try:
                reported = float(t.loss(batches[0]))
            except Exception:  # a loss that fails on this batch (labels out of range): judged above
                reported = math.nan
        units = cfg.output_units or (int(out.shape[-1]) if out.ndim >= 2 else 1)
        act = cfg.output_activation
        family = loss_family(cfg)
        loss = cfg.loss or "unknown"
        findings: list[Finding] = []
        evidence = {"loss": loss, "output_activation": act, "output_units": units}

        if act == "softmax" and units == 1:
            findings.append(
                self.finding(
                    "The model ends in a softmax over a single unit, which always outputs 1, so "
                    "nothing can be learned.",
                    evidence=evidence,
                    hint="For two classes use one unit with a sigmoid (or raw logits with a "
                    "from-logits binary loss), or one unit per class with softmax.",
                    key="one-unit-softmax",
                )
            )
        elif act in ("softmax", "sigmoid") and cfg.from_logits is True:
            own = "softmax" if family == "multiclass" else "sigmoid"
            twice = (
                "so it is applied twice and gradients shrink"
                if own == act
                else f"so its {own} runs on outputs the {act} already squeezed into [0, 1]: the loss can never "
                "become confident and gradients shrink"
            )
            alternative = (
                "a loss that takes probabilities (from_logits=False)"
                if t.framework == "keras"
                else "a loss that takes probabilities (NLLLoss of their log, BCELoss)"
            )
            findings.append(
                self.finding(
                    f"The model's outputs already pass through a {act}, but the loss ({loss}) applies {own} itself, "
                    f"{twice}.",
                    evidence=evidence,
                    hint=f"Remove the final {act} from the model (keep it for inference only), or use {alternative}.",
                    severity=Severity.WARNING,
                    key="activation-twice",
                )
            )
        findings += self._output_dropout(cfg, family, act, evidence)
        findings += self._output_normalisation(cfg, family, evidence)
        findings += self._bounded_logits(cfg, family, act, units, out, evidence)
        if cfg.loss == "nll" and out.size and np.all(np.isfinite(out)) and not _log_taken(out, ys[0], reported):
            if act == "softmax" or (out.min() >= 0 and act != "log_softmax"):
                findings.append(
                    self.finding(
                        "NLLLoss expects log-probabilities, but the model outputs "
                        f"{'probabilities' if act == 'softmax' else 'non-negative scores'}.",
                        evidence=evidence,
                        hint="End the model in LogSoftmax (or use CrossEntropyLoss on raw logits).",
                        severity=Severity.WARNING,
                        key="nll-input",
                    )
                )
            elif act != "log_softmax" and out.max() > 1e-6:
                findings.append(
                    self.finding(
                        "NLLLoss expects log-probabilities, but the model outputs raw scores "
                        "(some positive), so the loss is unbounded below.",
                        evidence=evidence,
                        hint="End the model in LogSoftmax, or use CrossEntropyLoss on the raw logits.",
                        severity=Severity.WARNING,
                        key="nll-input",
                    )
                )
        if cfg.from_logits is False and cfg.loss != "nll" and family in ("multiclass", "binary"):
            if out.size and np.all(np.isfinite(out)) and (out.min() < 0 or out.max() > 1):
                findings.append(
                    self.finding(
                        f"The loss ({loss}) expects probabilities, but the model's outputs range "
                        f"over [{out.min():.3g}, {out.max():.3g}].",
                        evidence={**evidence, "output_min": float(out.min()), "output_max": float(out.max())},
                        hint=(
                            "A multi-class loss over one output unit: for a regression use a regression loss "
                            "(`loss='mse'`) with no activation; for C classes give the last layer C units."
                            if units == 1 and family == "multiclass"
                            else "End the model in softmax/sigmoid, or tell the loss it gets logits "
                            "(Keras from_logits=True; torch CrossEntropyLoss/BCEWithLogitsLoss)."
                        ),
                        severity=Severity.WARNING,
                        key="probabilities-expected",
                    )
                )
        if act == "softmax" and family == "binary" and units > 2:
            findings.append(
                self.finding(
                    f"The model's {units} outputs pass through a softmax, which makes the classes compete "
                    f"(they sum to 1), but the loss ({loss}) judges each unit as an independent yes/no, "
                    "so the loss and its accuracy do not measure a choice of one class.",
                    evidence=evidence,
                    hint="For one class per sample use a multi-class loss (Keras categorical_crossentropy "
                    "or sparse_categorical_crossentropy; torch CrossEntropyLoss on logits); for several "
                    "labels per sample end the model in a sigmoid instead of the softmax.",
                    severity=Severity.WARNING,
                    key="softmax-binary-loss",
                )
            )
        findings += self._wrong_axis(out, evidence)
        findings += self._class_axis(cfg, out, evidence)
        findings += self._multi_hot(cfg, family, units, ys, evidence)
        findings += self._labels(cfg, family, units, act, ys, evidence, loss_failed=math.isnan(reported))
        findings += self._target_range(cfg, family, act, ys, evidence)
        findings += self._poisson_negative(cfg, ys, evidence)
        findings += self._swapped_arguments(cfg, evidence)
        findings += self._broadcast(out, ys[0], reported, evidence, cfg.broadcast_warning)
        findings += self._time_broadcast(out, ys[0], reported, evidence)
        findings += self._indices_broadcast(out, ys[0], reported, evidence)
        findings += self._class_indices(cfg, family, units, ys, evidence, live=ctx.interface == "live")
        return findings

    def _multi_hot(
        self, cfg: LossConfig, family: str | None, units: int, ys: list[np.ndarray | None], evidence: dict[str, Any]
    ) -> list[Finding]:
        """Multi-hot targets (0/1, several 1s in a row) fed to a softmax cross-entropy (key
        `multi-hot`): the softmax makes the classes share one unit of probability, so a sample
        with two labels can reach at best 0.5 on each, and the argmax picks one."""
        if family != "multiclass" or cfg.loss in _INDEX_LOSSES or units < 2 or any(y is None for y in ys):
            return []
        rows = [np.asarray(v).reshape(len(v), -1) for v in ys if len(v)]
        if not rows or any(v.shape[1] != units for v in rows):
            return []
        y = np.concatenate(rows)
        if y.dtype.kind not in "fiub" or not np.isin(y, (0, 1)).all():
            return []  # one-hot or soft targets (mixup, smoothing, a teacher's probabilities)
        sums = y.sum(axis=1)
        several = int((sums >= 2).sum())
        if len(y) < _MIN_MULTI_HOT_ROWS or several < 2 or several < _MULTI_HOT_SHARE * len(y):
            return []
        return [
            self.finding(
                f"The targets are multi-hot: {several} of {len(y)} training rows ({several / len(y):.0%}) have 2 or "
                f"more of the {units} labels on (mean {sums.mean():.2f} a row), but the loss ({cfg.loss or 'unknown'}) "
                "is a softmax cross-entropy, which makes the labels share one unit of probability: a sample with "
                "two labels can score at best 0.5 on each, and the loss cannot reach 0.",
                evidence={
                    **evidence,
                    "rows": len(y),
                    "rows_with_several_labels": several,
                    "mean_labels_per_row": float(sums.mean()),
                    "max_labels_per_row": int(sums.max()),
                },
                hint="For several labels per sample, score each label on its own: torch "
                "BCEWithLogitsLoss on the raw outputs (predict with sigmoid > 0.5); Keras a sigmoid output "
                "with loss='binary_crossentropy' (metrics=['binary_accuracy']). If every sample has exactly "
                "one class, fix the targets to one 1 a row.",
                severity=Severity.WARNING,
                key="multi-hot",
            )
        ]

    def _output_dropout(
        self, cfg: LossConfig, family: str | None, act: str | None, evidence: dict[str, Any]
    ) -> list[Finding]:
        """A dropout layer after an output activation that makes probabilities: in training it
        zeroes some of them and scales the rest by 1 / (1 - rate), so the loss reads no
        distribution (a zeroed true class is log(0); all zeroed, Keras' normalisation divides
        0 by 0)."""
        rate = cfg.output_dropout
        if not rate or act not in ("softmax", "sigmoid") or family not in ("multiclass", "binary"):
            return []
        return [
            self.finding(
                f"The model's last layer is a dropout (rate {rate:g}) after its {act} output: in training it sets "
                f"some of the predicted probabilities to 0 and scales the others by {1 / (1 - rate):.3g}, so the "
                "loss reads no probabilities (a dropped true class costs log(0): infinite or NaN losses).",
                evidence={**evidence, "output_dropout": rate},
                hint=f"Put the Dropout before the last Dense/Linear layer, never after the {act}.",
                severity=Severity.WARNING,
                key="output-dropout",
            )
        ]

    def _output_normalisation(self, cfg: LossConfig, family: str | None, evidence: dict[str, Any]) -> list[Finding]:
        """A normalisation layer after an output activation that makes probabilities (key
        `output-normalisation`): it re-centres and re-scales them by the batch's or the row's
        statistics, so some come out negative and the rows no longer sum to 1."""
        # any loss but a regression's: a loss of no known name (one computed in the step) is also
        # handed the re-scaled probabilities
        if cfg.output_normalisation is None or family == "regression":
            return []
        layer, act = cfg.output_normalisation
        broken = "rows no longer sum to 1" if act == "softmax" else "others above 1"
        return [
            self.finding(
                f"The model's last layer is a {layer} after its {act} output: it re-centres and re-scales the "
                f"predicted probabilities (some become negative, {broken}), "
                f"so the loss ({cfg.loss or 'unknown'}) is handed no probabilities: it clips them and the model "
                "learns through a layer that undoes its output.",
                evidence={**evidence, "output_activation": act, "output_normalisation": layer},
                hint=f"Remove the {layer} after the {act}: normalise the hidden layers only (a loop that adds a "
                f"normalisation after every Dense/Linear layer must stop before the output), and keep the {act} last.",
                severity=Severity.WARNING,
                key="output-normalisation",
            )
        ]

    def _bounded_logits(
        self, cfg: LossConfig, family: str | None, act: str | None, units: int, out: np.ndarray, evidence: dict
    ) -> list[Finding]:
        """`bounded-logits`: a ReLU, softplus, tanh or hardtanh on the outputs of a model whose
        loss takes logits (a sigmoid or softmax there is `activation-twice`)."""
        if cfg.from_logits is not True or family not in ("multiclass", "binary"):
            return []
        seen = act
        if act is None and _rectified(out):
            seen = "relu"  # the outputs' values say it: a functional relu in forward names no module
        if seen not in _OUTPUT_RANGE or seen == "sigmoid":
            return []
        low, high = _OUTPUT_RANGE[seen]
        binary = family == "binary" or units == 1
        if binary and low >= 0:
            why = "a logit of 0 or more is a probability of at least 0.5, so no sample can be given the negative class"
        elif low >= 0:
            why = (
                "a class can only be preferred by raising its output, never by lowering the others below "
                "0, and an output stuck at 0 (a dead ReLU unit) gets no gradient at all"
            )
        else:
            floor = _least_log_loss(low, high, 2 if binary else max(units, 2))
            why = (
                f"the probabilities the loss makes of outputs in [{low:g}, {high:g}] are never confident: "
                f"its least value is {floor:.3g}, however well the model learns"
            )
        return [
            self.finding(
                f"The model's outputs pass through {seen}, which only reaches [{low:g}, {high:g}], but the "
                f"loss ({cfg.loss}) takes them as logits (any real number): {why}.",
                evidence={**evidence, "output_activation": seen, "output_range": [low, high]},
                hint=f"Remove the final {seen}: a from-logits loss takes the raw output of the last linear "
                "layer (Keras: Dense(units) with no activation; torch: no ReLU after the last nn.Linear).",
                severity=Severity.WARNING,
                key="bounded-logits",
            )
        ]

    def reset(self) -> None:
        # `class-indices`: the regression loss of a one-unit model, while its labels are pooled
        # (train start sees one batch; the sampled training batches complete the count)
        self._index_loss: str | None = None
        self._index_counts = np.zeros(_MAX_INDEX_CLASSES, dtype=np.int64)  # of each value 0..49
        self._index_evidence: dict[str, Any] = {}
        self._index_judged = 0  # targets pooled at the last verdict
        # what the INFO finding saw ({"classes": K, ...}), for the epochs to confirm
        self._indices: dict[str, Any] | None = None
        self._confirmed = False
        # `accuracy-on-regression`: a fractional training target seen under a regression loss
        # (its value, for the message), and whether the run's accuracy was judged
        self._fraction: float | None = None
        self._accuracy_judged = False
        # ... or whole-number targets (counts): [targets seen, of them 0 or 1, a value other than
        # 0 and 1 or None: None, not NaN, so that a checkpoint's state compares equal]; `_one_unit`: a
        # one-unit regression (set at train start)
        self._whole: list[float | None] = [0, 0, None]
        self._one_unit = False

    def _class_indices(
        self,
        cfg: LossConfig,
        family: str | None,
        units: int,
        ys: list[np.ndarray | None],
        evidence: dict[str, Any],
        live: bool = False,
    ) -> list[Finding]:
        """Class indices 0..K-1 fed to a regression loss through one output unit: the labels of
        these batches (`mlcheck sanity`), or, at a live run's start (`live`), of the training
        batches that follow (`on_batch`: every batch of the first pass)."""
        if cfg.loss not in SCALE_SENSITIVE_LOSSES or units != 1 or self._indices is not None:
            return []
        self._one_unit = True  # `accuracy-on-regression` of whole numbers: Keras' accuracy of one unit
        self._index_loss, self._index_judged = cfg.loss, 0
        self._index_counts = np.zeros(_MAX_INDEX_CLASSES, dtype=np.int64)
        self._index_evidence = evidence
        if live:
            return []  # the first batch comes again, with every batch of the first pass (`on_batch`)
        found: list[Finding] = []
        for y in ys:
            found += self._pool_indices(y)
        return found

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        if batch.split != "train":
            return ()
        if self._fraction is None and not self._accuracy_judged and run.info.loss in SCALE_SENSITIVE_LOSSES:
            self._fraction = _a_fraction(batch.targets)
            if self._fraction is None and self._one_unit and batch.epoch in (None, 0):
                _count_whole(self._whole, batch.targets)
        return self._pool_indices(batch.targets, batch.step, batch.epoch)

    def _pool_indices(self, y: np.ndarray | None, step: int | None = None, epoch: int | None = None) -> list[Finding]:
        """Adds a batch's targets to the pooled counts; the INFO finding once they look like
        class labels: the whole numbers 0..K-1, every one present and none rare. Pooling stops
        at the first verdict, at targets that cannot be class labels, or after
        `_MAX_POOLED_INDICES` targets."""
        if self._index_loss is None:
            return []  # judged, or not a one-unit regression
        y = None if y is None else np.asarray(y)
        if y is None or y.size == 0 or y.ndim == 0 or y.size != len(y) or y.dtype.kind not in "fiu":
            self._index_loss = None  # not one number per sample: no class indices
            return []
        flat = y.reshape(-1)
        with np.errstate(invalid="ignore"):  # NaN and Inf cast to garbage, caught by the comparison
            ids = flat.astype(np.int64)
        if (
            (flat.dtype.kind == "f" and not np.array_equal(ids, flat))
            or ids.min() < 0
            or ids.max() >= _MAX_INDEX_CLASSES
        ):
            self._index_loss = None  # fractions, non-finite, negative or too many values: no class indices
            return []
        counts = self._index_counts
        counts += np.bincount(ids, minlength=_MAX_INDEX_CLASSES)
        n = int(counts.sum())
        present = np.flatnonzero(counts)
        k = int(present[-1]) + 1  # 0..k-1 if every value up to the largest is present
        if n >= _MAX_POOLED_INDICES:
            self._index_loss = None  # the last verdict
        elif n < max(_MIN_PER_INDEX * k, _MIN_POOLED_INDICES, 2 * self._index_judged):
            return []  # a few verdicts (each doubling), not one per batch: each could pass by chance
        self._index_judged = n
        if k < _MIN_INDEX_CLASSES or len(present) != k or not _about_uniform(counts[:k], n):
            return []  # gaps, or frequencies that thin out in a tail (counts, ratings): no classes, so far
        self._index_loss, loss = None, self._index_loss
        self._indices = {"classes": k, "targets_seen": n, "rarest_share": float(counts[:k].min() / n)}
        return [
            self.finding(
                f"The targets are the whole numbers 0..{k - 1}, each about equally common, fed to a "
                f"regression loss ({loss}) through one output unit: if they are class labels, the "
                "model is asked for a number between classes, and rounding it is no classifier.",
                evidence={**self._index_evidence, **self._indices},
                hint=f"If these are class labels, give the last layer {k} units and use cross-entropy "
                "(torch CrossEntropyLoss on logits with integer labels; Keras "
                "sparse_categorical_crossentropy); if they are counts or ordered scores, keep the "
                "regression and suppress 'output-loss-mismatch' for this run.",
                severity=Severity.INFO,
                step=step,
                epoch=epoch,
                key="class-indices",
            )
        ]

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        """The train-start `class-indices` finding confirmed: the run logs an accuracy, so the
        targets are classes to the user too. Or an accuracy logged for a regression on
        fractional targets (`accuracy-on-regression`)."""
        if self._fraction is not None and not self._accuracy_judged:
            self._accuracy_judged = True
            return list(self._accuracy_on_regression(run, self._fraction))
        if self._indices is None and not self._accuracy_judged and self._whole[2] is not None:
            self._accuracy_judged = True
            return list(self._accuracy_on_counts(run))
        if self._indices is None or self._confirmed:
            return ()
        k = self._indices["classes"]
        for split, table in (("val", run.val_metrics), ("train", run.train_metrics)):
            for name, series in table.items():
                if not is_bounded_score(name) or not len(series):
                    continue
                value = float(series.values()[1][-1])
                if not math.isfinite(value):
                    continue
                self._confirmed = True
                return [
                    self.finding(
                        f"The run logs an accuracy-like metric ({_SPLIT_NAMES[split]} {name} {value:.3g} at "
                        f"epoch {run.epoch}; chance for {k} classes is {1 / k:.2f}) while the model predicts "
                        f"the class indices 0..{k - 1} as one number under a regression loss "
                        f"({run.info.loss}): it is trained as a regression, not as the classifier the "
                        "accuracy measures.",
                        evidence={
                            **self._indices,
                            "metric": name,
                            "split": split,
                            "metric_value": value,
                            "chance": 1 / k,
                            "loss": run.info.loss,
                        },
                        hint=f"Give the last layer {k} units and use cross-entropy (torch CrossEntropyLoss on "
                        "logits with integer labels; Keras sparse_categorical_crossentropy), and compute "
                        "accuracy from the argmax of the outputs.",
                        epoch=run.epoch,
                        step=run.step,
                        severity=Severity.WARNING,
                        key="class-indices-accuracy",
                    )
                ]
        return ()

    def _accuracy_on_regression(self, run: RunState, fraction: float) -> Iterable[Finding]:
        """An accuracy logged for a regression on fractional targets: it counts exact matches
        (Keras' `accuracy` of a one-unit output: the output thresholded at 0.5 against the
        target), which a fractional target never makes, so it reads 0 or noise."""
        for split, table in (("val", run.val_metrics), ("train", run.train_metrics)):
            for name, series in table.items():
                if not _ACCURACY.search(name) or not len(series):
                    continue
                value = float(series.values()[1][-1])
                yield self.finding(
                    f"The run logs an accuracy ({_SPLIT_NAMES[split]} {name} {value:.3g} at epoch {run.epoch}) "
                    f"for a regression: the targets are fractional numbers (e.g. {fraction:.4g}) trained with "
                    f"{run.info.loss}, and accuracy counts exact matches with a class, which such a target never "
                    "is, so it reads 0 or noise; an EarlyStopping or checkpoint that follows it follows nothing.",
                    evidence={
                        "metric": name,
                        "split": split,
                        "metric_value": value,
                        "target_example": fraction,
                        "loss": run.info.loss,
                    },
                    hint="Use a regression metric: metrics=['mae'] or keras.metrics.RootMeanSquaredError() "
                    "(torchmetrics MeanAbsoluteError in Lightning), and monitor it or the validation loss. "
                    "If the targets are classes, use integer labels with a cross-entropy loss.",
                    epoch=run.epoch,
                    step=run.step,
                    severity=Severity.WARNING,
                    key="accuracy-on-regression",
                )
                return

    def _accuracy_on_counts(self, run: RunState) -> Iterable[Finding]:
        """Keras' `accuracy` (exactly that name) logged for a one-unit regression of whole numbers
        that are not only 0 and 1 (counts): it thresholds the output at 0.5 and compares with the
        target, so it can match targets 0 and 1 only; said where the logged value is within
        `_COUNT_ACCURACY_SLACK` of the share of those targets (what it can reach). Class indices
        0..K-1 under a regression loss are `class-indices`' (the run's labels looked like them)."""
        seen, binary, example = self._whole
        if seen < _MIN_POOLED_INDICES:
            return
        share = binary / seen
        for split, table in (("val", run.val_metrics), ("train", run.train_metrics)):
            for name, series in table.items():
                if name.lower() not in ("acc", "accuracy") or not len(series):
                    continue
                value = float(series.values()[1][-1])
                if not math.isfinite(value) or value > share + _COUNT_ACCURACY_SLACK:
                    return
                yield self.finding(
                    f"The run logs an accuracy ({_SPLIT_NAMES[split]} {name} {value:.3g} at epoch {run.epoch}) "
                    f"for a regression of whole numbers (e.g. {example:g}) trained with {run.info.loss}: the "
                    "accuracy of one output unit thresholds it at 0.5 and compares with the target, so it can "
                    f"match only the targets 0 and 1 ({share:.0%} of the training targets) and says nothing of "
                    "how close the predictions are; an EarlyStopping or checkpoint that follows it follows nothing.",
                    evidence={
                        "metric": name,
                        "split": split,
                        "metric_value": value,
                        "target_example": example,
                        "targets_zero_or_one": share,
                        "targets_seen": int(seen),
                        "loss": run.info.loss,
                    },
                    hint="Use a regression metric: metrics=['mae'] or keras.metrics.RootMeanSquaredError(), and "
                    "monitor it or the validation loss (for counts, loss='poisson' fits them too). If the "
                    "targets are classes, use integer labels with a cross-entropy loss over one unit per class.",
                    epoch=run.epoch,
                    step=run.step,
                    severity=Severity.WARNING,
                    key="accuracy-on-regression",
                )
                return

    def _wrong_axis(self, out: np.ndarray, evidence: dict[str, Any]) -> list[Finding]:
        """Outputs normalised over the batch axis (`softmax(dim=0)`, `log_softmax(dim=0)`): each
        column sums to 1 across the samples while the rows, one per sample, do not. No model's
        per-sample outputs sum to exactly 1 down every column of a batch by chance."""
        if out.ndim != 2 or min(out.shape) < 2 or not np.all(np.isfinite(out)):
            return []
        o = out.astype(np.float64)
        if o.min() >= 0 and o.max() <= 1:
            probs, kind = o, "softmax"
        elif o.max() <= 0:
            probs, kind = np.exp(o), "log_softmax"
        else:
            return []  # unbounded scores: no normalisation to judge
        columns, rows = probs.sum(axis=0), probs.sum(axis=1)
        if not np.allclose(columns, 1.0, atol=_SUM_TOL) or np.allclose(rows, 1.0, atol=_SUM_TOL):
            return []
        return [
            self.finding(
                f"The model's outputs are normalised over the batch axis ({kind} over dim 0): each "
                f"column of the {o.shape[0]} x {o.shape[1]} batch sums to 1 across samples, not each "
                "sample's row across classes, so every sample's prediction depends on the others in its batch.",
                evidence={
                    **evidence,
                    "output_shape": list(o.shape),
                    "row_sum_range": [float(rows.min()), float(rows.max())],
                    "column_sum_range": [float(columns.min()), float(columns.max())],
                },
                hint=f"Normalise over the class axis: {kind}(x, dim=-1) / dim=1 (Keras: axis=-1, the default).",
                severity=Severity.WARNING,
                key="wrong-axis",
            )
        ]

    def _class_axis(self, cfg: LossConfig, out: np.ndarray, evidence: dict[str, Any]) -> list[Finding]:
        """3-D logits (batch, positions, classes) from a last layer whose features are the last
        axis, given to a cross-entropy that reads dim 1 as classes (key `class-axis`): the loss
        is the one over the positions (`LossConfig.class_axis_misread`, the adapter's measure),
        so each position's tags are never compared as classes."""
        if cfg.class_axis_misread is None or out.ndim != 3:
            return []
        layer, features = cfg.class_axis_misread
        b, positions, _ = out.shape
        return [
            self.finding(
                f"The model's outputs have shape {tuple(out.shape)}, the {features} classes on the last axis (its last "
                f"layer, {layer}, gives its features there), but the loss ({cfg.loss}) reads dim 1 as the class axis, "
                f"so it scores the {positions} positions as the classes and the classes as positions.",
                evidence={
                    **evidence,
                    "output_shape": [int(v) for v in out.shape],
                    "last_layer": layer,
                    "classes_on_axis": 2,
                    "loss_reads_classes_on_axis": 1,
                },
                hint="Put the class axis second before the loss: F.cross_entropy(logits.transpose(1, 2), y) (or "
                "F.cross_entropy(logits.reshape(-1, C), y.reshape(-1))); torch's cross-entropy takes (batch, "
                "classes, ...) logits.",
                severity=Severity.WARNING,
                key="class-axis",
            )
        ]

    def _target_range(
        self,
        cfg: LossConfig,
        family: str | None,
        act: str | None,
        ys: list[np.ndarray | None],
        evidence: dict[str, Any],
    ) -> list[Finding]:
        """A regression output squashed into a range (ReLU, softplus, sigmoid, tanh) that some
        targets lie outside: those targets can never be reached, whatever the weights."""
        bounds = _OUTPUT_RANGE.get(act or "")
        if bounds is None or not (family == "regression" or cfg.task == "regression") or any(y is None for y in ys):
            return []
        y = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in ys])
        y = y[np.isfinite(y)]
        lo, hi = bounds
        outside = (y < lo) | (y > hi)
        if not y.size or not outside.any():
            return []
        # what clipping to the range costs: the share of the targets' variance no weights can
        # reach (the best any model can do is predict the nearest bound). A few targets just
        # outside (noise around a bound) cost nothing worth a warning; half of standardised
        # targets below a ReLU cost about a third of the variance.
        spread = float(np.sum((y - y.mean()) ** 2))
        unreachable = float(np.sum((y - np.clip(y, lo, hi)) ** 2)) / spread if spread > 0 else 1.0
        if unreachable < _UNREACHABLE_SHARE:
            return []
        share = float(outside.mean())
        return [
            self.finding(
                f"The model's output passes through {act}, which only reaches [{lo:g}, {hi:g}], but "
                f"{share:.0%} of the regression targets lie outside it (from {y.min():.3g} to {y.max():.3g}): "
                "the model can never predict them.",
                evidence={
                    **evidence,
                    "output_range": [lo, hi],
                    "target_min": float(y.min()),
                    "target_max": float(y.max()),
                    "share_outside": share,
                    "variance_unreachable": unreachable,
                },
                hint=f"Remove the final {act} so the regression head is linear (or rescale the targets "
                "into the output's range).",
                severity=Severity.WARNING,
                key="target-range",
            )
        ]

    def _poisson_negative(
        self, cfg: LossConfig, ys: list[np.ndarray | None], evidence: dict[str, Any]
    ) -> list[Finding]:
        """A Poisson loss on targets of which `_UNREACHABLE_SHARE` or more are negative: the loss is
        the negative log-likelihood of a count (Keras `poisson`: y_pred - y_true log y_pred; torch
        `PoissonNLLLoss`: exp(f) - y f), which has no minimum for y < 0 (it falls without bound as
        the prediction goes to 0), so those rows pull their predictions down for ever. Counts are
        never negative: such targets were shifted or standardised."""
        if cfg.loss != "poisson" or any(y is None for y in ys):
            return []
        y = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in ys])
        y = y[np.isfinite(y)]
        negative = y < 0
        if not y.size or float(negative.mean()) < _UNREACHABLE_SHARE:
            return []
        share = float(negative.mean())
        return [
            self.finding(
                f"The loss is Poisson, the likelihood of counts, but {share:.0%} of the training targets are "
                f"negative (from {y.min():.3g} to {y.max():.3g}; mean {y.mean():.3g}): for a negative target the "
                "Poisson loss has no minimum (it keeps falling as the prediction goes to 0), so those rows push "
                "their predictions down without end and the loss can go below zero.",
                evidence={
                    **evidence,
                    "target_min": float(y.min()),
                    "target_max": float(y.max()),
                    "target_mean": float(y.mean()),
                    "share_negative": share,
                },
                hint="Train a Poisson loss on the raw counts (0, 1, 2, ...), not on counts standardised or "
                "centred like the features; for standardised targets use a squared-error loss instead.",
                severity=Severity.WARNING,
                key="poisson-negative-targets",
            )
        ]

    def _swapped_arguments(self, cfg: LossConfig, evidence: dict[str, Any]) -> list[Finding]:
        """A loss of the user's own that is, sample by sample on the first batch, a built-in loss
        with its arguments swapped (`LossConfig.swapped_arguments`): Keras calls a loss as
        `loss(y_true, y_pred)`, so a function written `def loss(y_pred, y_true)` hands the labels
        on as the prediction. An exact identity of values, not a threshold."""
        if cfg.swapped_arguments is None:
            return []
        builtin, value, right = cfg.swapped_arguments
        own = cfg.loss or "the custom loss"
        return [
            self.finding(
                f"The loss function '{own}' computes {builtin}(y_pred, y_true), its two arguments swapped: on the "
                f"first batch it equals Keras' {builtin} with the model's outputs read as the labels and the labels "
                f"as the prediction, sample by sample ({value:.4g}; in the right order {right:.4g}), so the model "
                "is trained towards another objective.",
                evidence={**evidence, "builtin": builtin, "loss_value": value, "right_order_value": right},
                hint=f"Keras calls a loss as loss(y_true, y_pred): define it as def {own}(y_true, y_pred) and pass "
                f"them on in that order ({builtin}(y_true, y_pred)); if the reversed order is meant (a reverse "
                "cross-entropy), suppress 'output-loss-mismatch'.",
                severity=Severity.WARNING,
                key="arguments-swapped",
            )
        ]

    def _broadcast(
        self,
        out: np.ndarray,
        y: np.ndarray | None,
        reported: float,
        evidence: dict[str, Any],
        warned: str | None = None,
    ) -> list[Finding]:
        """Outputs of shape (N, 1) against targets of shape (N,) (or the reverse) in an elementwise
        loss broadcast to N x N pairs: the loss is finite but compares every output with every
        target. Judged by the loss value itself: it equals the N x N mean, not the paired one;
        or, where the two are equal (an absolute error of untrained outputs below every target
        scores mean(y) - mean(out) either way), by the framework's own warning that the loss
        broadcast (`warned`, `LossConfig.broadcast_warning`) with the loss equal to the N x N mean."""
        if y is None or len(out) < 2 or not np.isfinite(reported):
            return []
        y = np.asarray(y, dtype=np.float64)
        column, flat = (out, y) if out.shape[1:] == (1,) and y.ndim == 1 else (y, out)
        if column.shape[1:] != (1,) or flat.ndim != 1 or len(column) != len(flat):
            return []
        column, flat = column.astype(np.float64), flat.astype(np.float64)
        for name, power in (("squared", 2), ("absolute", 1)):
            paired = float(np.mean(np.abs(column[:, 0] - flat) ** power))
            crossed = float(np.mean(np.abs(column - flat[None, :]) ** power))
            gap = abs(crossed - paired)
            # fresh outputs near 0 against targets of one sign score alike paired and crossed (|y|
            # either way): then the loss is crossed where it matches it far closer than the two differ
            exact = gap > BROADCAST_RESOLUTION * abs(crossed) and abs(reported - crossed) < 0.1 * gap
            told = warned is not None and math.isclose(reported, crossed, rel_tol=1e-3)
            if (
                exact
                or told
                or (math.isclose(reported, crossed, rel_tol=1e-3) and not math.isclose(reported, paired, rel_tol=1e-3))
            ):
                n = len(flat)
                centre = "mean" if power == 2 else "median"
                near = (
                    f" (alike now only because the untrained outputs sit near 0; trained so, each output is pulled to "
                    f"the {centre} of every target, and the model predicts about a constant)"
                    if gap < 1e-3 * abs(crossed)
                    else ""
                )
                return [
                    self.finding(
                        f"The outputs have shape {tuple(out.shape)} and the targets {tuple(y.shape)}, so the "
                        f"{name}-error loss broadcasts them to {n} x {n} pairs and compares every output with "
                        f"every target: the loss is {reported:.6g}, the mean over all pairs ({crossed:.6g}), "
                        f"where the paired one is {paired:.6g}{near}.",
                        evidence={
                            **evidence,
                            "output_shape": list(out.shape),
                            "target_shape": list(y.shape),
                            "loss": reported,
                            "paired_loss": paired,
                            **({"framework_warning": warned} if warned else {}),
                        },
                        hint="Make the shapes match before the loss: `out.squeeze(-1)` or `y.view(-1, 1)` "
                        "(torch warns about it: 'Using a target size that is different to the input size').",
                        key="broadcast",
                    )
                ]
        return []

    def _time_broadcast(
        self, out: np.ndarray, y: np.ndarray | None, reported: float, evidence: dict[str, Any]
    ) -> list[Finding]:
        """One output per time step, (N, T, 1) with T >= 2 (a Keras recurrent layer left at
        `return_sequences=True` before `Dense(1)`), against one target per sequence, (N,) or
        (N, 1), under an elementwise loss (key `broadcast`): the loss broadcasts the target over
        the T steps, so steps that have not yet seen what the target depends on are trained to
        predict it. Keras squeezes the output's last axis against (N, 1) targets (each step
        against its own sequence's target: WARNING, replicating a target over the steps is also
        done on purpose, Lipton et al. 2016) and crosses (N,) targets with every output (N x T x
        N, as `_broadcast`: ERROR). Told by the loss's value: it equals that broadcast mean, and
        not the error of the last step's or the steps' mean output against the targets (what a
        sequence-to-one loss of the user's own would score)."""
        if y is None or out.ndim != 3 or out.shape[2] != 1 or out.shape[1] < 2 or not np.isfinite(reported):
            return []
        y = np.asarray(y, dtype=np.float64)
        n, steps = out.shape[0], out.shape[1]
        if n < 2 or y.shape not in ((n,), (n, 1)) or not np.all(np.isfinite(out)) or not np.all(np.isfinite(y)):
            return []
        seq = out[:, :, 0].astype(np.float64)
        target = y.reshape(n)
        crossed = y.ndim == 1
        for name, power in (("squared", 2), ("absolute", 1)):
            if crossed:
                broadcast = float(np.mean(np.abs(seq[:, :, None] - target[None, None, :]) ** power))
            else:
                broadcast = float(np.mean(np.abs(seq - target[:, None]) ** power))
            sequence_to_one = [float(np.mean(np.abs(v - target) ** power)) for v in (seq[:, -1], seq.mean(1))]
            if not math.isclose(reported, broadcast, rel_tol=1e-3):
                continue
            gaps = [abs(broadcast - other) for other in sequence_to_one]
            if min(gaps) <= BROADCAST_RESOLUTION * abs(broadcast) or abs(reported - broadcast) >= 0.1 * min(gaps):
                continue  # as alike a sequence-to-one loss: not told apart by the value
            pairs = (
                f"{n} x {steps} x {n} (every step's output against every sequence's target)"
                if crossed
                else (f"{n} x {steps} (each step's output against its sequence's one target)")
            )
            return [
                self.finding(
                    f"The outputs have shape {tuple(out.shape)}, one per time step, and the targets {tuple(y.shape)}, "
                    f"one per sequence, so the {name}-error loss broadcasts them to {pairs}: the loss is "
                    f"{reported:.6g}, that mean, where the last step's output scores {sequence_to_one[0]:.6g}. Steps "
                    "that have not yet seen what the target depends on are trained to predict it.",
                    evidence={
                        **evidence,
                        "output_shape": list(out.shape),
                        "target_shape": list(y.shape),
                        "loss": reported,
                        "last_step_loss": sequence_to_one[0],
                        "steps": steps,
                    },
                    hint="For one prediction per sequence, give the last recurrent layer return_sequences=False "
                    "(Keras; torch: take out[:, -1]) or pool over time (GlobalAveragePooling1D) before the Dense "
                    "head; for one target per step, give the targets a time axis of their own, shape (N, T, 1).",
                    severity=Severity.ERROR if crossed else Severity.WARNING,
                    key="broadcast",
                )
            ]
        return []

    def _indices_broadcast(
        self, out: np.ndarray, y: np.ndarray | None, reported: float, evidence: dict[str, Any]
    ) -> list[Finding]:
        """Class indices 0..K-1, one per sample, under a regression loss of a K-unit output (key
        `class-indices-broadcast`): the loss is the squared, absolute or Huber error of every
        unit against the sample's index (the targets broadcast, or expanded, to N x K), so each
        unit is asked for the same number and the argmax means nothing. Judged by the loss
        value itself, as `_broadcast`: it equals that error and no other."""
        if y is None or out.ndim != 2 or out.shape[1] < 2 or len(out) < 2 or not np.isfinite(reported):
            return []
        y = np.asarray(y)
        if y.shape not in ((len(out),), (len(out), 1)) or not integral(y):
            return []
        units, index = out.shape[1], y.reshape(-1, 1).astype(np.float64)
        if index.min() < 0 or index.max() >= units or len(np.unique(index)) < 2:
            return []  # not class indices of this output (or one value: nothing to tell)
        diff = out.astype(np.float64) - index
        errors = {
            "squared": np.mean(diff**2),
            "absolute": np.mean(np.abs(diff)),
            "Huber": np.mean(np.where(np.abs(diff) < 1, 0.5 * diff**2, np.abs(diff) - 0.5)),
        }
        name = next((n for n, v in errors.items() if math.isclose(reported, float(v), rel_tol=1e-3)), None)
        if name is None:
            return []
        n = len(out)
        return [
            self.finding(
                f"The targets are class indices 0..{units - 1}, one per sample (shape {tuple(y.shape)}), and "
                f"the loss is the {name} error of all {units} outputs against them (the targets broadcast "
                f"to {n} x {units}): every unit is trained to output the class index, so the model is one "
                f"regression copied {units} times, not a classifier, and its argmax means nothing.",
                evidence={
                    **evidence,
                    "output_shape": list(out.shape),
                    "target_shape": list(y.shape),
                    "loss_value": reported,
                    "error": name,
                    "classes_seen": int(len(np.unique(index))),
                },
                hint="Use cross-entropy on the logits with the integer targets (torch "
                "nn.CrossEntropyLoss()(out, y); Keras sparse_categorical_crossentropy), or one-hot targets "
                f"of shape (N, {units}) if a regression loss is really meant (torch warns: 'Using a target "
                "size that is different to the input size').",
                key="class-indices-broadcast",
            )
        ]

    def _labels(
        self,
        cfg: LossConfig,
        family: str | None,
        units: int,
        act: str | None,
        ys: list[np.ndarray | None],
        evidence: dict[str, Any],
        loss_failed: bool = False,
    ) -> list[Finding]:
        if family == "regression" or cfg.task == "regression" or any(y is None for y in ys):
            return []
        rows = [np.asarray(v) for v in ys if len(v)]  # an empty batch holds no label (it failed reshape)
        if not rows:
            return []
        y = np.concatenate([v.reshape(len(v), -1) for v in rows])
        if y.shape[1] == 1 and cfg.loss in _INDEX_LOSSES and not integral(y):
            return self._fractional_indices(cfg.loss, y[:, 0], evidence, units)
        if y.shape[1] != 1 or not integral(y):
            return []  # one-hot / soft labels / multi-label targets: nothing to range-check
        y = y[:, 0]
        lo, hi = int(y.min()), int(y.max())
        ev = {**evidence, "label_min": lo, "label_max": hi}
        # an unnamed loss (a LightningModule's own training_step) over raw scores is taken for
        # a multi-class one only when it fails on integer labels: a working loss may take ids
        # beyond the width on purpose (metric learning: class ids beside a 64-wide embedding)
        indices = loss_failed and act in (None, "linear") and y.dtype.kind in "iu"
        multiclass = family == "multiclass" or (
            family is None and units >= 2 and (act in ("softmax", "log_softmax") or indices)
        )
        binary = family == "binary" or (family is None and units == 1 and act == "sigmoid")
        if multiclass:
            if lo < 0:
                return [
                    self.finding(
                        f"The labels include {lo}, but class labels must lie in [0, {units}).",
                        evidence=ev,
                        hint="Encode classes as 0..C-1 (e.g. with sklearn's LabelEncoder); for "
                        "ignored positions use the loss's ignore_index.",
                        key="labels-range",
                    )
                ]
            if hi >= units:
                beyond = f"label {hi} has" if hi == units else f"labels {units}..{hi} have"
                hint = f"Give the last layer {hi + 1} units (one per class), or re-encode the labels as 0..C-1."
                if lo >= 1:  # no 0 among them: 1-based labels (1..C) are the usual cause
                    beyond += (
                        f" no output; no label 0 is among the {len(y)} seen, so they look 1-based and every "
                        "other label also names its neighbour's unit"
                    )
                    hint = (
                        f"If the labels count from 1, shift them to start at 0 (`y - {lo}`, or sklearn's "
                        f"LabelEncoder) and keep {units} units; if there really are {hi + 1} classes, give the "
                        f"last layer {hi + 1} units."
                    )
                else:
                    beyond += " no output"
                if units == 1 and lo == 0 and hi == 1:  # a binary task under a multi-class loss
                    beyond += (
                        "; a multi-class loss over one unit normalises its one probability to 1, so the loss is 0 "
                        "at every step and nothing is learned"
                    )
                    hint = (
                        "For two classes with one sigmoid unit use a binary loss: loss='binary_crossentropy' "
                        "(torch: BCEWithLogitsLoss on the raw output); or give the last layer 2 units with "
                        "softmax and sparse_categorical_crossentropy (torch: CrossEntropyLoss)."
                    )
                return [
                    self.finding(
                        f"The labels go up to {hi}, but the model has only {units} output units, so {beyond}.",
                        evidence=ev,
                        hint=hint,
                        key="labels-range",
                    )
                ]
        elif binary and (lo < 0 or hi > 1):
            if len(np.unique(y)) == 2:  # two classes, encoded as something else than 0 and 1
                return [
                    self.finding(
                        f"The model has {units} sigmoid-style output unit(s) with a binary loss, but the "
                        f"labels are {lo} and {hi}, not 0 and 1: the loss then runs below zero and training "
                        "chases that instead of the classes.",
                        evidence=ev,
                        hint=f"Map the labels to 0.0 and 1.0 before the loss: `y = (y == {hi}).float()` "
                        f"(numpy: `(y == {hi}).astype('float32')`; a 0/255 mask: `y / 255`).",
                        key="labels-range",
                    )
                ]
            return [
                self.finding(
                    f"The model has {units} sigmoid-style output unit(s) with a binary loss, but the "
                    f"labels range over {lo}..{hi}: multi-class labels need one unit per class.",
                    evidence=ev,
                    hint=f"Use {hi + 1} output units with a multi-class loss (CrossEntropyLoss / "
                    "sparse_categorical_crossentropy), or binarise the labels.",
                    key="labels-range",
                )
            ]
        return []

    def _fractional_indices(self, loss: str, y: np.ndarray, evidence: dict[str, Any], units: int) -> list[Finding]:
        """Labels with fractions (soft or smoothed labels, probabilities) fed to a loss that takes
        class indices: Keras casts them to integers, which truncates 0.95 to class 0. Through one
        output unit, with labels outside [0, 1], they are a regression's targets (a classifier's
        loss copied onto a regression): the hint then names a regression loss."""
        y = y[np.isfinite(y)]
        if not len(y):
            return []  # NaN targets are `nonfinite-input`'s
        if units == 1 and (y.min() < 0 or y.max() > 1):
            return [
                self.finding(
                    f"The labels are real numbers ({len(np.unique(y))} distinct values of {len(y)} seen, "
                    f"{y.min():.3g} to {y.max():.3g}) and the model has one linear-style output unit: a "
                    f"regression, trained with {loss}, a classification loss that casts the targets to class "
                    "indices (the fractions are lost) and takes a softmax over the one unit.",
                    evidence={
                        **evidence,
                        "labels_seen": len(y),
                        "distinct_labels": len(np.unique(y)),
                        "label_min": float(y.min()),
                        "label_max": float(y.max()),
                    },
                    hint="Use a regression loss: `loss='mse'` (or 'mae', 'huber'; torch MSELoss) with no activation "
                    "on the output, and a regression metric ('mae'), not 'accuracy'.",
                    key="regression-targets",
                )
            ]
        fractional = y != np.round(y)
        read_as = np.unique(np.trunc(y)).astype(np.int64)
        shown = ", ".join(f"{v:.3g}" for v in np.unique(y[fractional])[:3])
        if len(read_as) == 1:
            effect = f"every one of them is read as class {read_as[0]}, whatever the sample"
        else:
            effect = f"they are read as classes {', '.join(str(v) for v in read_as[:5])} and the fractions lost"
        return [
            self.finding(
                f"{np.mean(fractional):.0%} of the {len(y)} labels seen are not whole numbers ({shown}), but "
                f"{loss} takes class indices and casts them to integers, which cuts the fraction off: "
                f"{effect}.",
                evidence={
                    **evidence,
                    "labels_seen": len(y),
                    "fractional_share": float(np.mean(fractional)),
                    "label_min": float(y.min()),
                    "label_max": float(y.max()),
                    "classes_after_cast": [int(v) for v in read_as[:10]],
                },
                hint="Pass integer class ids (`np.argmax(y_onehot, axis=1)`, or `y.astype('int64')` for "
                "labels that are whole numbers); for soft or smoothed labels use categorical_crossentropy "
                "with one probability per class, shape (N, C) (two classes: `np.stack([1 - p, p], axis=1)`), "
                "or its `label_smoothing=` argument on one-hot labels.",
                key="labels-fractional",
            )
        ]


#: metric names that count exact class matches (not auc, f1, precision or recall: a user may
#: score a thresholded regression that way on purpose)
_ACCURACY = re.compile(r"(^|[_/.\-])acc(uracy)?($|[_/.\-])", re.IGNORECASE)


#: How far over the share of targets 0 and 1 an accuracy of whole-number regression targets may
#: read and still be the thresholded match that can only hit those (the validation split's share
#: differs from the training split's by sampling: 0.1 is over 4 standard errors at 100 targets)
_COUNT_ACCURACY_SLACK = 0.1


def _count_whole(tally: list[float | None], targets: np.ndarray | None) -> None:
    """Adds a batch of whole-number targets to `tally` ([seen, of them 0 or 1, a value other
    than 0 and 1]); a batch with a non-finite or fractional target adds nothing."""
    if targets is None or targets.size == 0 or targets.dtype.kind not in "fiu":
        return
    flat = targets.reshape(-1)
    if not integral(flat):
        return
    binary = (flat == 0) | (flat == 1)
    tally[0] += flat.size
    tally[1] += int(binary.sum())
    if tally[2] is None and not binary.all():
        tally[2] = float(flat[np.flatnonzero(~binary)[0]])


def _a_fraction(targets: np.ndarray | None) -> float | None:
    """A finite target of the batch that is not a whole number, or None."""
    if targets is None or targets.dtype.kind != "f" or targets.size == 0:
        return None
    flat = targets.reshape(-1)
    with np.errstate(invalid="ignore"):
        fractional = np.isfinite(flat) & (flat != np.round(flat))
    hits = np.flatnonzero(fractional)
    return float(flat[hits[0]]) if len(hits) else None


def _about_uniform(counts: np.ndarray, n: int) -> bool:
    """Whether value counts look like roughly balanced class labels: none rarer than
    `_MIN_INDEX_SHARE` of the uniform share, and no departure from equal counts beyond
    `_MAX_UNIFORM_Z` (chi-square goodness of fit)."""
    expected = n / len(counts)
    if counts.min() < _MIN_INDEX_SHARE * expected:
        return False
    statistic = float(((counts - expected) ** 2 / expected).sum())
    return chi2_z(statistic, len(counts) - 1) <= _MAX_UNIFORM_Z
