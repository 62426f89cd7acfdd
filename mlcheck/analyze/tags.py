"""Which logged tag (or CSV column) is the training loss, the validation loss, the learning rate.

The built-in rules read a name the way the common loggers write it (see docs/analyze.md):

- a split as prefix or suffix: `train_`, `training/`, `val_`, `valid/`, `validation/` (Keras'
  `validation/` sub-run), `/val`, `dev_` (NLP's name for the validation split); `test` tags are
  ignored (but see `test_as_validation_role`);
  a CamelCase name (`TrainLoss`, `valLoss`) is split into words first;
- a level: `_step` / `batch_` (per step) and `_epoch` / `epoch_` (per epoch; Keras writes
  `epoch_loss`); without one, a curve logged about once per epoch is per epoch, else per step;
- what is left: `loss` (or `total_loss`, `loss_total`; the plurals `losses`, `total_losses`)
  is a loss; a qualified loss, `<word>_loss` (`nll_loss`,
  `mse_loss`), is one below them (`QUALIFIED_PRIORITY`), read only where it is the run's one
  training loss (and a validation one only beside a training one of the same name; see
  `mlcheck.analyze.replay`); `lr`, `learning_rate`, `lr-<Optimizer>`
  (Lightning's LearningRateMonitor) is the learning rate; `epoch` is Lightning's epoch counter;
  a name whose direction is known (accuracy, f1, mae, ...; see `mlcheck.metrics`) is a metric.

mlcheck's own markers (`mlcheck/...`, also below Keras' `train/` and `validation/` sub-runs) are
ignored, except the curves `Monitor` writes for a loop
without a logger (`mlcheck/curves/<name>`, read by the rules above from `<name>`, below the
user's own tags of the same role). Anything else is ignored. Extend or override the rules with `register_tag("my_loss",
"train_loss")`, the `mapping=` argument of `mlcheck.analyze.analyze`, or `--map TAG=ROLE` on the
command line. Tags may be glob patterns (`"loss/*"`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mlcheck.metrics import first_loader_name, higher_is_better

#: role names a tag can be mapped to, and what each means
ROLES = {
    "train_loss": "training loss per optimizer step",
    "epoch_train_loss": "mean training loss per epoch",
    "val_loss": "validation loss (per epoch, or per validation run)",
    "lr": "learning rate",
    "epoch": "the epoch number, logged against the step (Lightning's `epoch` scalar)",
    "train_metric": "a training metric per epoch, e.g. accuracy (`train_metric:NAME` names it)",
    "val_metric": "a validation metric per epoch (`val_metric:NAME` names it)",
    "ignore": "not used",
}


@dataclass(frozen=True)
class Role:
    """What a tag is.

    Attributes:
        role: one of `ROLES`, or "loss": a training loss whose level (step or epoch) is decided
            by how often it was logged.
        metric: the metric's name without its split ("accuracy" for "val_accuracy").
        level: "step", "epoch" or None when the name does not say.
        priority: lower wins when several tags have the same role (user mappings are 0).
    """

    role: str
    metric: str | None = None
    level: str | None = None
    priority: int = 2


_registered: dict[str, str] = {}

_IGNORED = {"hp_metric", "step", "global_step", "time", "created_at", "wall_time", "epoch_time", "index"}
_SPLITS = {
    "train": "train",
    "training": "train",
    # the short forms of a loop written by hand (`loss_tr`, `trn_loss`, as in scikit-learn's `X_tr`)
    "tr": "train",
    "trn": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "eval": "val",
    # the name NLP corpora give their validation split (CoNLL's `dev` file; held-out-12's tomelf/RNN-POS-Tagger-TLE
    # logs `dev_loss` beside `train_loss`): without it `dev_loss` was a qualified training loss named `dev`,
    # unread beside `train_loss`, and the run had no validation curve
    "dev": "val",
    "test": "test",
    # `testing_loss` beside `training_loss` (held-out-10's JonathanALevine/Capstone): the test split
    # in the word form `training` already has; without it `testing_loss` was a qualified training loss
    "testing": "test",
}
_LEVELS = {"step": "step", "batch": "step", "epoch": "epoch"}
_SEP = "_/-. "  # a space too: `Train Loss`, `Validation Accuracy` (a history written by hand)
_LR = re.compile(r"^(lr|learning[_-]?rate|learningrate)([-_/].*)?$")
_NOT_LR = re.compile(r"momentum|beta|weight[_-]?decay|decay_steps|warmup", re.IGNORECASE)
# `loss_total` is `total_loss` in the other word order (a loop logging its summed objective beside
# its terms: held-out-8's `train_loss_total`, `train_loss_ce`)
_LOSS = {"loss", "total_loss", "loss_total"}
# `Train Losses`, `Test Losses`: a hand-written history naming its columns after the lists it appended
# each epoch's loss to (held-out-11's ZzzzzzzSkyward/MultiModalityProteinLigandAffinity); without it
# the file had no loss curve at all (a qualified name, `ff_train_losses`, stays a name of several words)
_LOSS |= {"losses", "total_losses"}
# `train/nll_loss`, `val_mse_loss`: one word before `loss` (Lightning users name the loss their
# module computes, e.g. Eve-ning/opal-v2's `train/nll_loss`); a name of several words
# (`recon_kl_loss`) is more often one term of a sum than the loss itself
_QUALIFIED_LOSS = re.compile(r"^(?P<name>[a-z][a-z0-9]*)[_-]loss$")
# a summary of a loss curve, not the curve (`best_loss` is a running minimum)
_SUMMARY_WORDS = {"best", "min", "max", "final", "initial", "peak", "last", "prev"}
#: a qualified loss ranks below `loss` and `total_loss` of the same role (priorities 1-2)
QUALIFIED_PRIORITY = 3
_VS_ITERATIONS = "_vs_iterations"
# `Monitor`'s copies of the curves it was given (`mlcheck.sinks.curves`); where a run also has
# the user's own tags of a role, those win
_CURVES = "mlcheck/curves/"
_CURVES_PRIORITY = 2


def parse_role(spec: str) -> tuple[str, str | None]:
    """ "val_metric:accuracy" -> ("val_metric", "accuracy"); checks the role name."""
    role, _, metric = spec.partition(":")
    role = role.strip().lower()  # "Train_Loss" as "train_loss"; the metric NAME keeps its case
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
    return role, metric.strip() or None


def register_tag(tag: str, role: str) -> None:
    """Maps a tag or CSV column (or a glob pattern of them) to a role for every analysis,
    e.g. `register_tag("objective", "train_loss")`. Roles: see `ROLES`."""
    parse_role(role)
    _registered[tag] = role


def classify(tag: str, mapping: Mapping[str, str] | None = None) -> Role:
    """The role of `tag`: the user's mapping first, then registered tags, then the rules."""
    for table in (mapping or {}, _registered):
        spec = _lookup(tag, table)
        if spec is not None:
            role, metric = parse_role(spec)
            if role in ("train_metric", "val_metric") and metric is None:
                metric = _strip(tag.lower())[2] or tag
            level = {"train_loss": "step", "epoch_train_loss": "epoch"}.get(role)
            return Role(role, metric, level, priority=0)
    name = first_loader_name(tag)  # several validation loaders: the first one's curves
    return _rules(name) if name is not None else Role("ignore")


def _lookup(tag: str, table: Mapping[str, str]) -> str | None:
    if tag in table:
        return table[tag]
    for pattern, spec in table.items():
        if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(tag, pattern):
            return spec
    return None


def _strip(name: str) -> tuple[str | None, str | None, str]:
    """(split, level, base) of a lower-case name, peeling split and level words off both ends."""
    split = level = None
    changed = True
    while changed:
        changed = False
        for words in (_SPLITS, _LEVELS):
            for word in words:
                for sep in _SEP:
                    if name.startswith(word + sep) and len(name) > len(word) + 1:
                        name = name[len(word) + 1 :]
                    elif name.endswith(sep + word) and len(name) > len(word) + 1:
                        name = name[: -len(word) - 1]
                    else:
                        continue
                    if words is _SPLITS:
                        # the word nearest the name wins: `train/val_loss` is a validation
                        # loss logged under a `train/` namespace
                        split = _SPLITS[word]
                    else:
                        level = level or _LEVELS[word]
                    changed = True
                    break
    return split, level, name


# a column named in CamelCase by a hand-written training loop (`TrainLoss`, `ValLoss`, `valLoss`):
# each hump a capital and at least one lower-case letter or digit, so `mAP50-95(B)`, `mIoU`, `LR`
# and names with separators are left as they are
_CAMEL = re.compile(r"[A-Za-z][a-z0-9]+(?:[A-Z][a-z0-9]+)+")


# a column of a history written by hand: a unit or kind after a space (`Train Loss (MSE)`) and
# an abbreviating full stop (`Val. Loss`); a suffix glued to its name (YOLO's `mAP50-95(B)`) stays
_UNIT = re.compile(r"\s+\([^()]*\)$")
_ABBREVIATED = re.compile(r"\.\s+")


def _words(tag: str) -> str:
    """`tag` in lower case, a CamelCase name split into words: `TrainLoss` -> `train_loss`;
    `Val. Loss (MSE)` -> `val loss`."""
    if _CAMEL.fullmatch(tag):
        tag = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", tag)
    unit = _UNIT.search(tag)
    if unit is not None:
        inner = unit.group(0).strip()[1:-1].strip()
        # `Loss (train)`, `Loss (val)`: a split word in the brackets names the split, not a unit
        tag = tag[: unit.start()] if inner.lower() not in _SPLITS else f"{inner} {tag[: unit.start()]}"
    return _ABBREVIATED.sub(" ", tag).lower()


# a fine-tuning stage's namespace (held-out-14's FranciscoREchevarria/Avance-5 logs
# `finetuning/train_loss_epoch`, `finetuning/val_loss` with Lightning): the curves below it are the
# run's; ranked one below the same name without it
_STAGE = re.compile(r"^(finetuning|finetune|fine[_-]tuning|fine[_-]tune|ft)/(?=.)")
# a split word glued to `loss` (held-out-14's dschappler/clothing_style_evaluator sweep logs `trloss`
# beside `val loss`): read as `tr_loss`
_GLUED_LOSS = re.compile(r"^(train|training|tr|trn|val|valid|validation|dev|test|testing)(loss|losses)$")


def _namespaced(tag: str, low: str) -> Role | None:
    """The role of a tag below mlcheck's curves or a fine-tuning stage, ranked below the same name
    without it; None for other tags."""
    if low.startswith(_CURVES) and len(low) > len(_CURVES):
        role = _rules(tag[len(_CURVES) :])
        return dataclasses.replace(role, priority=role.priority + _CURVES_PRIORITY)
    stage = _STAGE.match(low)
    if stage is not None:
        role = _rules(tag[stage.end() :])
        return dataclasses.replace(role, priority=role.priority + 1)
    return None


def _rules(tag: str) -> Role:
    low = _words(tag)
    namespaced = _namespaced(tag, low)
    if namespaced is not None:
        return namespaced
    low = _GLUED_LOSS.sub(r"\1_\2", low)
    if low.startswith("mlcheck/") or low in _IGNORED:
        return Role("ignore")
    if low == "epoch":
        return Role("epoch")
    split, level, base = _strip(low)
    # a marker below a sub-run (Keras' `train/mlcheck/<check-id>`) is a marker all the same;
    # Keras' `TensorBoard` callback (TF 2.2+) also writes each validation metric against the
    # training step, `validation/evaluation_<name>_vs_iterations`: a copy of `epoch_<name>`
    if split == "test" or base in _IGNORED or base.startswith("mlcheck/") or base.endswith(_VS_ITERATIONS):
        return Role("ignore")
    if _LR.match(base) and not _NOT_LR.search(base):
        return Role("lr", priority=1 if base in ("lr", "learning_rate") else 2)
    if base in _LOSS:
        explicit = 1 if level else 2
        if split == "val":
            return Role("val_loss", level=level, priority=explicit) if level != "step" else Role("ignore")
        if level == "step":
            return Role("train_loss", level="step", priority=1)
        if level == "epoch":
            return Role("epoch_train_loss", level="epoch", priority=1)
        return Role("loss", priority=2)
    if higher_is_better(base) is not None and "loss" not in base:
        if level == "step":
            return Role("ignore")
        return Role("val_metric" if split == "val" else "train_metric", metric=base, level=level)
    return _qualified_loss(split, level, base) or Role("ignore")


#: Error measures that are also common training objectives, the most common first: a log whose
#: only loss-like curves are these (`train_mse`, `val_mse`, `train_mae_epoch`) has them as its
#: losses (`error_loss_role`)
ERROR_LOSSES = ("mse", "rmse", "mae")


def error_loss_role(tag: str) -> Role | None:
    """The role of a tag that names an error measure of `ERROR_LOSSES` (`train_mse`,
    `val_mae_epoch`) read as a loss, ranked as a qualified loss (`mse_loss`); None for other
    names. For a log that has no loss curve otherwise: `mlcheck.analyze.replay` asks it then."""
    split, level, base = _strip(_words(tag))
    if split == "test" or base not in ERROR_LOSSES:
        return None
    return _qualified_loss(split, level, f"{base}_loss")


def test_as_validation_role(tag: str) -> Role | None:
    """The role a `test` tag (`test_loss`, `test_acc`; ignored by the rules) has when it is read as
    the validation curve: in a log with no validation curve whose test curve is logged every epoch
    (a training loop that evaluates its held-out split each epoch and calls it test);
    None for other tags."""
    split, level, base = _strip(_words(tag))
    if split != "test" or level == "step":
        return None
    if base in _LOSS:
        return Role("val_loss", level=level, priority=1 if level else 2)
    if higher_is_better(base) is not None and "loss" not in base:
        return Role("val_metric", metric=base, level=level)
    return _qualified_loss("val", level, base)


def _qualified_loss(split: str | None, level: str | None, base: str) -> Role | None:
    """The role of a loss named by its kind (`nll_loss`), ranked below `loss`; None for other names."""
    qualified = _QUALIFIED_LOSS.match(base)
    if not qualified or qualified["name"] in _LEVELS or qualified["name"] in _SUMMARY_WORDS:
        return None
    name = qualified["name"]
    if split == "val":
        if level == "step":
            return Role("ignore")
        return Role("val_loss", metric=name, level=level, priority=QUALIFIED_PRIORITY)
    if level == "step":
        return Role("train_loss", metric=name, level="step", priority=QUALIFIED_PRIORITY)
    if level == "epoch":
        return Role("epoch_train_loss", metric=name, level="epoch", priority=QUALIFIED_PRIORITY)
    return Role("loss", metric=name, priority=QUALIFIED_PRIORITY)
