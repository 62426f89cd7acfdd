"""leakage checks."""

from __future__ import annotations


# -- suspicious-val ----------------------------------------------------------------------------

import math  # noqa: E402
from typing import TYPE_CHECKING, Iterable  # noqa: E402

import numpy as np  # noqa: E402

from mlcheck.checks.base import Check, register  # noqa: E402
from mlcheck.checks.curve import epoch_train_levels, sig  # noqa: E402
from mlcheck.findings import Finding, Severity  # noqa: E402
from mlcheck.metrics import higher_is_better, is_bounded_score  # noqa: E402

if TYPE_CHECKING:
    from mlcheck.run import RunState


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
        absolute gap is then tiny.

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

    def __init__(self, max_ratio: float = 0.25, min_gap: float = 0.1, patience: int = 3,
                 skip_epochs: int = 1, near_perfect: float = 0.99, metric_gap: float = 0.15) -> None:
        self.max_ratio = max_ratio
        self.min_gap = min_gap
        self.patience = patience
        self.skip_epochs = skip_epochs
        self.near_perfect = near_perfect
        self.metric_gap = metric_gap
        super().__init__()

    def reset(self) -> None:
        self._fired = False

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        if self._fired:
            return []
        found = self._losses(run) or self._metrics(run)
        self._fired = bool(found)
        return found

    def _recent(self, val: dict[int, float], train: dict[int, float]) -> list[int] | None:
        """The last `patience` epochs with both values, after the skipped ones; or None."""
        epochs = sorted(set(val) & set(train))
        first = min(min(val), min(train)) + self.skip_epochs if val and train else 0
        epochs = [e for e in epochs if e >= first]
        if len(epochs) < self.patience:
            return None
        return epochs[-self.patience:]

    def _losses(self, run: RunState) -> list[Finding]:
        b = run.val_loss.buckets(include_open=True)
        val = {int(e): float(v) for e, v in zip(b["x1"], b["mean"])}
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
        e = recent[-1]
        return [self.finding(
            f"Validation loss {val[e]:.4g} is {val[e] / train[e]:.0%} of the training loss "
            f"{train[e]:.4g} for {len(recent)} epochs: the validation data looks leaked or easier.",
            evidence={"val_loss": sig(val[e]), "train_loss": sig(train[e]), "ratio": sig(val[e] / train[e]),
                      "initial_train_loss": sig(initial), "epochs": recent},
            hint=("Check the split for duplicates (train-val-overlap), that validation labels do not "
                  "leak into inputs, and that both losses are reduced the same way (mean vs sum)."),
            step=run.step,
            epoch=run.epoch,
            key="val",
        )]

    def _metrics(self, run: RunState) -> list[Finding]:
        for name, series in run.val_metrics.items():
            if name not in run.train_metrics or not is_bounded_score(name):
                continue
            if higher_is_better(name, run.info.higher_is_better) is not True:
                continue
            vb = series.buckets(include_open=True)
            tb = run.train_metrics[name].buckets(include_open=True)
            val = {int(e): float(v) for e, v in zip(vb["x1"], vb["mean"])}
            train = {int(e): float(v) for e, v in zip(tb["x1"], tb["mean"])}
            recent = self._recent(val, train) if val and train else None
            if recent is None:
                continue
            scale = 100.0 if max(max(val.values()), max(train.values())) > 1.5 else 1.0
            ok = all(
                math.isfinite(val[e]) and val[e] / scale >= self.near_perfect
                and train[e] / scale <= val[e] / scale - self.metric_gap
                for e in recent
            )
            if not ok:
                continue
            e = recent[-1]
            return [self.finding(
                f"Validation {name} is near perfect ({val[e] / scale:.3g}) while training {name} is "
                f"only {train[e] / scale:.3g}: the validation data looks leaked or far easier.",
                evidence={f"val_{name}": sig(val[e] / scale), f"train_{name}": sig(train[e] / scale),
                          "epochs": recent, "mean_gap": sig(float(np.mean([val[k] - train[k] for k in recent])) / scale)},
                hint=("Check the split for duplicates (train-val-overlap) and that validation labels "
                      "do not leak into the inputs."),
                step=run.step,
                epoch=run.epoch,
                key="val",
            )]
        return []
