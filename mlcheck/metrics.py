"""Metric names: which are losses, which direction is better, which split they belong to.

Inferred from names, always overridable: `RunInfo.higher_is_better` and `register_metric`.
`mlcheck.task` re-exports both beside the other facts about a run's task (one place to look).
"""

from __future__ import annotations

import re

_HIGHER = re.compile(
    r"(acc|accuracy|auc|auroc|f1|fbeta|precision|recall|iou|io_u|dice|jaccard|map|ap|r2|top\d*|"
    r"sensitivity|specificity|mcc|kappa|bleu|rouge)(\b|_|$)",
    re.IGNORECASE,
)
# `ce` (and `bce`, `nce`) as a word of its own: inside a word it is no loss (`dice`, `dice_coef`: the
# Dice coefficient, higher is better; Keras' `MeanIoU` logs `mean_io_u`, segmentation_models `jaccard_coef`)
_LOWER = re.compile(
    r"(loss|error|err|mse|mae|rmse|mape|perplexity|ppl|nll|(?<![a-z])[bn]?ce|entropy|distance)(\b|_|$)",
    re.IGNORECASE,
)

_overrides: dict[str, bool] = {}


def register_metric(name: str, higher_is_better: bool) -> None:
    """Declares the direction of a metric name for every run (e.g. a custom score)."""
    _overrides[name] = higher_is_better


def higher_is_better(name: str, overrides: dict[str, bool] | None = None) -> bool | None:
    """True for accuracy-like names, False for loss-like names, None when unknown."""
    for table in (overrides or {}, _overrides):
        if name in table:
            return table[name]
    base = strip_split(name)[1]
    if _LOWER.search(base):
        return False
    if _HIGHER.search(base):
        return True
    return None


def reversed_mode(name: str, mode: str, overrides: dict[str, bool] | None = None) -> bool:
    """True when a callback's given `mode` ("min" or "max") reads the metric `name` the wrong way
    round: "max" on a loss-like name, "min" on an accuracy-like one (its direction as
    `higher_is_better` reads it). False where the direction is unknown or the mode is another
    ("auto": the framework reads the direction itself)."""
    higher = higher_is_better(name, overrides)
    return higher is not None and mode in ("min", "max") and (mode == "max") != higher


def is_bounded_score(name: str) -> bool:
    """Accuracy-like metrics that live in [0, 1] (or [0, 100])."""
    return bool(re.search(r"(acc|accuracy|auc|auroc|f1|precision|recall)", strip_split(name)[1], re.I))


_SPLIT = re.compile(
    r"^(?:(?P<pre>val|valid|validation|train|training|test)[_/.\-])?(?P<base>.+?)"
    r"(?:[_/.\-](?P<post>val|valid|validation|train|training|test|step|epoch))?$",
    re.IGNORECASE,
)


def strip_split(name: str) -> tuple[str | None, str]:
    """("val", "accuracy") for "val_accuracy", "val/acc" or "accuracy/val"; (None, name) else.

    "train"/"training" give "train", "val"/"valid"/"validation" give "val", "test" gives "test".
    """
    m = _SPLIT.match(name)
    if not m:
        return None, name
    split = (m.group("pre") or m.group("post") or "").lower() or None
    split = {"training": "train", "valid": "val", "validation": "val", "step": None, "epoch": None}.get(
        split or "", split
    )
    return split, m.group("base")


# Lightning names a value logged in `validation_step` with several validation loaders
# `<name>/dataloader_idx_<k>` (its `add_dataloader_idx=True` default)
_LOADER_SUFFIX = re.compile(r"/dataloader_idx_(\d+)$")


def first_loader_name(name: str) -> str | None:
    """`name` without Lightning's `/dataloader_idx_0` suffix; None for another loader's value
    (`val_loss/dataloader_idx_1`). Of several validation loaders the first is the one mlcheck
    judges, as it is the one whose samples the callbacks record; other names are returned as
    they are."""
    match = _LOADER_SUFFIX.search(name)
    if match is None:
        return name
    return name[: match.start()] if int(match.group(1)) == 0 else None
