"""Findings the rest of a log contradicts, demoted to INFO by `mlcheck analyze`.

A live run judges the epochs it has seen; `mlcheck analyze` reads the whole log, so a finding
that was true when made can be contradicted by what the run did next. Each rule below demotes
one such WARNING to INFO and appends what the later log shows, with its numbers; the live
callback cannot know the future and keeps its WARNING. A finding the later log does not
contradict keeps its severity.

- `lr-too-low` ("falls steadily but slowly"): the later epochs fall `LR_FASTER` times faster
  than the rate it measured, beyond the noise (the loss left a saddle or a warm-up: the rate
  was not too low); or the loss has by the log's end fallen `MAX_DROP` of its initial level, the
  check's own bar for real progress (a run of known length is judged from half-way: the whole log
  is its verdict on the whole run).
- `loss-plateau` on the training loss: the end of the run sits below the stalled window by
  `Z` standard errors of the two windows' epoch-to-epoch noise and by more than both
  `PLATEAU_MIN_FALL` of its level and the share the loss fell from its start to the plateau (a
  slow creep on at the pace that reached the plateau is the stall the finding named), and the
  validation loss, where logged, ends `PLATEAU_MIN_FALL` below its value at the finding (the
  run escaped the plateau and learned; a training loss that falls while validation does not
  is memorising, and keeps its WARNING).
- `suspicious-val` on the losses: the validation/training ratio of the last epochs is back to
  `VAL_RATIO_CLOSED` or more (a model improving fast within each epoch, its training loss the
  mean over the epoch's steps; a leaked or easier validation set keeps its ratio to the end).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.curve import sig, trend_drop
from mlcheck.checks.learning_rate import MAX_DROP
from mlcheck.findings import Finding, Severity

if TYPE_CHECKING:
    from mlcheck.analyze.replay import Curves

#: Standard errors a later fall must clear to count as more than noise: the z of the curve checks
#: (`loss-plateau`, `lr-too-low` judge their trends at 3).
Z = 3.0
#: How many times faster than the rate `lr-too-low` measured the later loss must fall: "several"
#: (devtorch-genome-lab-p version 5 of held-out-7: 1.7% in 6 epochs, then 14% in the next 4, 12x).
LR_FASTER = 3.0
#: The fewest points after a finding that can contradict it (a trend needs 3).
MIN_LATER = 3
#: How far below a plateau's level the run's end must sit to have left it: the 2% a fall must
#: also clear in `lr-too-low`'s trend test (`d2 > 0.02 * level`).
PLATEAU_MIN_FALL = 0.02
#: The share of the points after a plateau finding that makes the end level it is compared with
#: (at least `MIN_LATER`): a third of a long tail averages its noise out without reaching back.
TAIL_SHARE = 1 / 3
#: The validation/training loss ratio, over the last `SUSPICIOUS_TAIL` epochs (median), at or
#: above which `suspicious-val`'s gap has closed: within the 20% by which a dropout or batch-norm
#: model's training-mode loss commonly sits above its evaluation-mode loss on a healthy run, and
#: 3.2x the check's own 0.25.
VAL_RATIO_CLOSED = 0.8
#: Epochs whose median ratio says where the run ended (the check's `patience`).
SUSPICIOUS_TAIL = 3


def contradicted_demoted(findings: Sequence[Finding], curves: Curves) -> list[Finding]:
    """`findings`, with each WARNING the rest of the log contradicts as an INFO that says so."""
    out = []
    for f in findings:
        later = None
        if f.severity == Severity.WARNING:
            if f.check == "lr-too-low" and f.key == "lr":
                later = _lr_contradicted(f, curves)
            elif f.check == "loss-plateau" and f.key == "train":
                later = _plateau_contradicted(f, curves)
            elif f.check == "suspicious-val" and f.key == "val" and "ratio" in f.evidence:
                later = _suspicious_contradicted(f, curves)
        if later is None:
            out.append(f)
            continue
        text, evidence = later
        out.append(demoted(f, text, {**evidence, "demoted_in_hindsight": True}))
    return out


def demoted(finding: Finding, later: str, evidence: Mapping[str, object] | None = None) -> Finding:
    """`finding` as an INFO that the rest of the log contradicts: `later` (what the log shows
    after it, with its numbers) appended to its message, `evidence` added to its evidence, and
    its fix told as what to do if a new run shows the same and does not recover (its advice was
    for a run that went on as it was going; this one did not)."""
    hint = finding.hint
    if hint:
        hint = f"Nothing to change for this run as logged. If a new run shows the same and does not recover: {hint}"
    return dataclasses.replace(
        finding,
        severity=Severity.INFO,
        message=f"{finding.message} {later}",
        evidence={**finding.evidence, **(evidence or {})},
        hint=hint,
    )


def epoch_train_losses(curves: Curves) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, training loss per epoch): the logged epoch value, or else the mean of the step
    stream's losses inside the epoch (after the previous epoch's last step, up to its own)."""
    xs, ys = [], []
    prev = None
    for row in curves.epochs:
        value = row.train_loss
        if value is None and curves.steps is not None and curves.train_loss is not None and row.step is not None:
            lo = 0 if prev is None else int(np.searchsorted(curves.steps, prev, "right"))
            hi = int(np.searchsorted(curves.steps, row.step, "right"))
            part = curves.train_loss[lo:hi]
            part = part[np.isfinite(part)]
            value = float(part.mean()) if len(part) else None
        if row.step is not None:
            prev = row.step
        if value is not None and math.isfinite(value):
            xs.append(row.epoch)
            ys.append(float(value))
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


def _training_curve(f: Finding, curves: Curves, unit: str) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(x, training loss, the finding's x) on the finding's own axis; None where not placed."""
    if unit == "step":
        if f.step is None or curves.steps is None or curves.train_loss is None:
            return None
        x, y, at = curves.steps.astype(np.float64), curves.train_loss.astype(np.float64), float(f.step)
        keep = np.isfinite(y)
        return x[keep], y[keep], at
    if f.epoch is None:
        return None
    x, y = epoch_train_losses(curves)
    return x, y, float(f.epoch)


def _unit(f: Finding, prefix: str = "") -> str | None:
    for unit in ("epoch", "step"):
        if f"{prefix}{unit}s" in f.evidence:
            return unit
    return None


def _lr_contradicted(f: Finding, curves: Curves) -> tuple[str, dict] | None:
    """The loss after an `lr-too-low` finding falls `LR_FASTER` x faster than the rate it
    measured (a least-squares trend from the finding to the end, clear of `Z` of its errors), or
    has by the log's end fallen as far as the check itself counts as real progress. Both read the
    same later trend, fitted here once."""
    unit = _unit(f)
    curve = _training_curve(f, curves, unit) if unit else None
    fell = f.evidence.get("fraction_fallen")
    if curve is None or not isinstance(fell, float | int) or fell <= 0:
        return None
    x, y, at = curve
    later = x >= at
    if int(later.sum()) < MIN_LATER + 1:
        return None
    xl, yl = x[later], y[later]
    drop, se = trend_drop(xl, yl)
    if not (math.isfinite(drop) and drop > Z * se):
        return None  # no later fall clear of its errors: neither contradiction holds
    return _lr_faster_later(f, unit, float(fell), at, xl, yl, drop) or _lr_fell_by_end(f, unit, float(fell), y, xl)


def _lr_fell_by_end(f: Finding, unit: str, fell: float, y: np.ndarray, xl: np.ndarray) -> tuple[str, dict] | None:
    """A finding made before the log's end (a run of known length is judged from half-way, so a
    live user hears it in time) whose loss, at the end, sits `MAX_DROP` or more below its initial
    level, measured as the check measures it (the median of the last max(3, n // 10) points of
    the whole curve `y`, over the same room to fall), after a later fall clear of `Z` of its errors
    (the caller's trend over `xl`): the check's own verdict on the whole run is "real progress",
    so the run was judged before it was done."""
    initial, at_level = f.evidence.get("initial_loss"), f.evidence.get("loss")
    if not all(isinstance(v, float | int) for v in (initial, at_level)):
        return None
    room = (float(initial) - float(at_level)) / fell  # initial - the loss's floor
    end = float(np.median(y[-max(3, len(y) // 10) :]))
    fell_end = (float(initial) - end) / room
    if not fell_end >= MAX_DROP:
        return None
    text = (
        f"The rest of the log contradicts it: by {unit} {xl[-1]:g} the loss had fallen {fell_end:.0%} "
        f"({float(initial):.4g} to {end:.4g}), past the {MAX_DROP:.0%} this check counts as real progress: "
        "the run was judged before it was done, and the rate moved it."
    )
    return text, {"end_fraction_fallen": sig(fell_end), f"end_{unit}": float(xl[-1])}


def _lr_faster_later(
    f: Finding, unit: str, fell: float, at: float, xl: np.ndarray, yl: np.ndarray, drop: float
) -> tuple[str, dict] | None:
    """The loss after the finding (from `at` on: `xl`, `yl`, its trend's fall `drop`, clear of
    `Z` errors) falls `LR_FASTER` x faster than the rate it measured."""
    length = f.evidence.get(f"{unit}s")
    if not length or not (xl[0] == at):
        return None
    start = float(yl[0])
    span = float(xl[-1] - xl[0])
    if not (start > 0 and span > 0):
        return None
    later_fall = drop / start
    rate, measured = later_fall / span, fell / float(length)
    if rate < LR_FASTER * measured:
        return None
    text = (
        f"The rest of the log contradicts it: the loss then fell {later_fall:.0%} in {span:g} {unit}s "
        f"({start:.4g} at {unit} {at:g} to {start - drop:.4g} on its trend to {unit} {xl[-1]:g}), "
        f"{rate / measured:.0f}x the rate measured here, so the learning rate was not too low."
    )
    return text, {"later_fraction_fallen": sig(later_fall), f"later_{unit}s": span}


def _plateau_contradicted(f: Finding, curves: Curves) -> tuple[str, dict] | None:
    """The training loss at the run's end sits well below the stalled window's (Welch's two
    windows, `Z`; more than the loss fell before the plateau), and the validation loss, where
    logged, ends `PLATEAU_MIN_FALL` below its value at the finding (mean of as many last epochs
    as the training loss's end)."""
    unit = _unit(f, "stalled_")
    curve = _training_curve(f, curves, unit) if unit else None
    stalled = f.evidence.get(f"stalled_{unit}s")
    if curve is None or not stalled:
        return None
    x, y, at = curve
    window = y[(x > at - float(stalled)) & (x <= at)]
    after = y[x > at]
    tail = after[-max(MIN_LATER, math.ceil(TAIL_SHARE * len(after))) :]
    if len(window) < 2 or len(after) < MIN_LATER:
        return None
    level, end = float(window.mean()), float(tail.mean())
    se = math.sqrt(_noise(window) ** 2 / len(window) + _noise(tail) ** 2 / len(tail))
    fall = level - end
    before = f.evidence.get("fraction_fallen")
    before = float(before) if isinstance(before, float | int) and math.isfinite(before) else 0.0
    if not (fall > Z * se and fall > max(PLATEAU_MIN_FALL, before) * abs(level)):
        return None  # within the noise, or a creep at the pace that reached the plateau
    val_text = ""
    if unit == "epoch":
        val = [(r.epoch, r.val_loss) for r in curves.epochs if r.val_loss is not None and math.isfinite(r.val_loss)]
        at_val = [v for e, v in val if e <= at]
        end_val = [v for e, v in val if e > at][-len(tail) :]
        if at_val and end_val:
            if float(np.mean(end_val)) > (1 - PLATEAU_MIN_FALL) * at_val[-1]:
                return None  # the training loss escaped, the validation loss did not: memorising
            val_text = f"; the validation loss went from {at_val[-1]:.4g} to {float(np.mean(end_val)):.4g}"
    text = (
        f"The rest of the log contradicts it: the training loss then fell to {end:.4g} (mean of its last "
        f"{len(tail)} {unit}s), {fall / abs(level):.1%} below the {level:.4g} of the stalled {unit}s and "
        f"{fall / se:.1f} standard errors of their {unit}-to-{unit} noise{val_text}: the run left the plateau."
    )
    return text, {"later_loss": sig(end), "stalled_level": sig(level), "later_fall_stderr": sig(se)}


def _suspicious_contradicted(f: Finding, curves: Curves) -> tuple[str, dict] | None:
    """The validation/training ratio of the last `SUSPICIOUS_TAIL` epochs after the finding is
    `VAL_RATIO_CLOSED` or more (median)."""
    if f.epoch is None:
        return None
    x, y = epoch_train_losses(curves)
    train = dict(zip(x.tolist(), y.tolist()))
    ratios = [
        (r.epoch, r.val_loss / train[r.epoch])
        for r in curves.epochs
        if r.epoch > f.epoch and r.val_loss is not None and math.isfinite(r.val_loss) and train.get(r.epoch, 0) > 0
    ][-SUSPICIOUS_TAIL:]
    if len(ratios) < SUSPICIOUS_TAIL:
        return None
    ratio = float(np.median([q for _, q in ratios]))
    if ratio < VAL_RATIO_CLOSED:
        return None
    last = ratios[-1][0]
    text = (
        f"The rest of the log contradicts it: by epoch {last} the validation loss is {ratio:.3g} times the "
        f"training loss (median of the last {len(ratios)} epochs), so the gap did not last: a leaked or "
        "easier validation set keeps its ratio; a model improving fast within each epoch, whose training "
        "loss is the mean over the epoch's steps, does not."
    )
    return text, {"final_ratio": sig(ratio), "final_ratio_epochs": [e for e, _ in ratios]}


def _noise(values: np.ndarray) -> float:
    """The epoch-to-epoch (or step-to-step) noise of `values`: the spread of their successive
    differences over sqrt 2, which a slow trend leaves almost untouched."""
    if len(values) < 3:
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.std(np.diff(values), ddof=1) / math.sqrt(2))
