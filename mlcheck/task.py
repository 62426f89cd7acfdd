"""What a run is for: task, class count, output width, input kind and metric direction.

One rule set, used by every path (the live callbacks, `mlcheck sanity`, `mlcheck analyze`):
facts are inferred from the targets (`from_targets`), from the loss (`from_loss`), from logged
metric names (`from_metric_names`) and from the model's layers (`input_kind_of_model`), and the
user's own arguments always win (`merge`).

`task` stays "classification", "regression" or None: that is what checks test. Binary,
multi-class and multi-label are told apart by `TaskFacts.labels` (from the loss family and the
output width), so no check sees a new task value.

Example:
    facts = merge(TaskFacts(task=user_task, num_classes=user_classes),
                  from_targets(first_targets, output_width))
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from mlcheck.metrics import higher_is_better, is_bounded_score, register_metric

__all__ = [
    "ABSOLUTE_LOSSES",
    "BINARY_LOSSES",
    "soft_target_entropy",
    "MULTICLASS_LOSSES",
    "NONNEGATIVE_LOSSES",
    "REGRESSION_LOSSES",
    "SCALE_SENSITIVE_LOSSES",
    "SQUARED_LOSSES",
    "TaskFacts",
    "canonical_loss",
    "classes_from_width",
    "from_loss",
    "from_metric_names",
    "from_targets",
    "higher_is_better",
    "input_kind_of_layer",
    "input_kind_of_model",
    "is_known_loss",
    "loss_from_tag",
    "loss_family",
    "merge",
    "register_metric",
]

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class TaskFacts:
    """Facts about the run's task, each None when unknown.

    Attributes:
        task: "classification", "regression" or None.
        num_classes: the classes whose uniform guess sets the chance loss ln(C) (2 for binary
            and multi-label losses, whatever the output width), for classification only.
        output_width: the last dimension of the model's output.
        input_kind: "embedding_ids" (inputs are token ids for an embedding lookup) or
            "rescaled" (the model rescales its inputs itself).
        loss_family: "multiclass", "binary" (also multi-label), "regression", "margin" (hinge
            losses: classification, but no log-loss chance level) or "divergence".
    """

    task: str | None = None
    num_classes: int | None = None
    output_width: int | None = None
    input_kind: str | None = None
    loss_family: str | None = None

    @property
    def labels(self) -> str | None:
        """ "multiclass", "binary" or "multilabel" as far as the loss and output width tell."""
        if self.loss_family == "multiclass":
            return "multiclass"
        if self.loss_family == "binary" and self.output_width is not None:
            return "binary" if self.output_width == 1 else "multilabel"
        return None


def merge(explicit: TaskFacts, inferred: TaskFacts) -> TaskFacts:
    """Field by field, what the user (or an adapter that knows) said wins over what was inferred.

    An inferred class count is kept only when the merged task is classification: a user who
    says "regression" gets no class count from an inferred classification.
    """
    task = explicit.task if explicit.task is not None else inferred.task
    classes = explicit.num_classes
    if classes is None and task == "classification":
        classes = inferred.num_classes
    return TaskFacts(
        task=task,
        num_classes=classes,
        output_width=explicit.output_width if explicit.output_width is not None else inferred.output_width,
        input_kind=explicit.input_kind if explicit.input_kind is not None else inferred.input_kind,
        loss_family=explicit.loss_family if explicit.loss_family is not None else inferred.loss_family,
    )


# -- from targets ------------------------------------------------------------------------------


def classes_from_width(width: int | None) -> int | None:
    """Classes of a classifier with this output width: one unit per class, or one unit for two."""
    if width is None or width < 1:
        return None
    return width if width > 1 else 2


def from_targets(targets: np.ndarray | None, output_width: int | None = None) -> TaskFacts:
    """Task and classes from a batch of targets and the model's output width.

    - rows of width C == output width, all 0/1 and one 1 per row (one-hot): C classes;
      other multi-column targets (sequences, multi-hot, boxes): unknown;
    - integer or bool labels: classification, classes from the output width (bool: 2);
    - float labels all 0 or 1 with a one-unit output: binary classification;
    - float labels with a fraction or a non-finite value: regression;
    - whole-number floats beyond 0/1 into a one-unit output: regression (one unit predicts a
      number; class ids need an output unit per class);
    - whole-number floats otherwise: unknown (class ids or counts alike).
    """
    facts = TaskFacts(output_width=output_width)
    if targets is None:
        return facts
    targets = np.asarray(targets)
    if targets.size == 0:
        return facts
    width = output_width
    flat = targets.reshape(len(targets), -1) if targets.ndim else targets.reshape(1, 1)
    kind = targets.dtype.kind
    task: str | None = None
    classes: int | None = None
    if flat.shape[1] != 1:
        if flat.shape[1] == width and np.isin(flat, (0, 1)).all() and (flat.sum(1) == 1).all():
            task, classes = "classification", width
    elif kind in "biu":
        task = "classification"
        classes = 2 if kind == "b" and not (width and width > 1) else classes_from_width(width)
    elif kind == "f":
        values = flat[:, 0]
        if width == 1 and np.isin(values, (0.0, 1.0)).all():
            task, classes = "classification", 2
        elif not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            task = "regression"
        elif width == 1:
            # whole numbers beyond 0/1 into one output unit: a number predicted (diabetes
            # progression 25-346, counts), as no classification loss takes class ids into one unit
            task = "regression"
    return replace(facts, task=task, num_classes=classes)


# -- from the loss -----------------------------------------------------------------------------

# Loss names as the adapters report them (torch short names, Keras snake-cased function and
# class names) -> family. Keras' long names are also reported under their short form
# (`canonical_loss`); both spellings are here because users' own Trainables may use either.
_FAMILIES: dict[str, str] = {
    # multi-class log-losses: chance level ln(C) for C output units
    "cross_entropy": "multiclass",
    "nll": "multiclass",
    "sparse_categorical_crossentropy": "multiclass",
    "categorical_crossentropy": "multiclass",
    "sparse_categorical_focal_crossentropy": "multiclass",
    "categorical_focal_crossentropy": "multiclass",
    # per-unit sigmoid log-losses (binary, or multi-label over several units): chance ln(2)
    "bce": "binary",
    "bce_with_logits": "binary",
    "binary_crossentropy": "binary",
    "binary_focal_crossentropy": "binary",
    "multilabel_soft_margin": "binary",
    # classification losses without a log-loss chance level
    "hinge": "margin",
    "squared_hinge": "margin",
    "categorical_hinge": "margin",
    # neither task by itself (distillation, distributions)
    "kl_div": "divergence",
    "kl_divergence": "divergence",
    # regression
    "mse": "regression",
    "mean_squared_error": "regression",
    "mae": "regression",
    "l1": "regression",
    "mean_absolute_error": "regression",
    "huber": "regression",
    "smooth_l1": "regression",
    "log_cosh": "regression",
    "mape": "regression",
    "mean_absolute_percentage_error": "regression",
    "msle": "regression",
    "mean_squared_logarithmic_error": "regression",
    "poisson": "regression",
}
_SHORT = {
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "mean_absolute_percentage_error": "mape",
    "mean_squared_logarithmic_error": "msle",
}
_FAMILY_TASK = {
    "multiclass": "classification",
    "binary": "classification",
    "margin": "classification",
    "regression": "regression",
}

MULTICLASS_LOSSES = frozenset(n for n, f in _FAMILIES.items() if f == "multiclass")
BINARY_LOSSES = frozenset(n for n, f in _FAMILIES.items() if f == "binary")
REGRESSION_LOSSES = frozenset(n for n, f in _FAMILIES.items() if f == "regression")
#: Losses whose value at "predict 0" is the mean squared / mean absolute target.
SQUARED_LOSSES = frozenset({"mse", "mean_squared_error"})
ABSOLUTE_LOSSES = frozenset({"mae", "l1", "mean_absolute_error"})
#: Regression losses whose value and gradients grow with the targets' scale (an error of 1e5 is
#: a loss of 1e10 or 1e5); not MAPE, MSLE or Poisson, which work on ratios, logs or rates.
SCALE_SENSITIVE_LOSSES = SQUARED_LOSSES | ABSOLUTE_LOSSES | frozenset({"huber", "smooth_l1", "log_cosh"})


def scale_sensitive_regression(loss: str | None, task: str | None) -> bool:
    """Whether a run's targets are values on a scale its loss feels: a loss of
    `SCALE_SENSITIVE_LOSSES` named, or, with no loss named, the task declared "regression"."""
    return loss in SCALE_SENSITIVE_LOSSES if loss is not None else task == "regression"


#: Losses that cannot be negative whatever the model outputs, as long as the targets lie in the
#: loss's domain: a value below zero proves a bug (`loss-divergence`). Left out: "poisson" (Keras'
#: y_pred - y log y_pred goes negative), KL divergences (negative on unnormalised inputs).
NONNEGATIVE_LOSSES = frozenset(
    n for n, f in _FAMILIES.items() if f in ("multiclass", "binary", "margin", "regression") and n != "poisson"
)


def loss_from_tag(tag: str | None) -> str | None:
    """The loss a logged tag names, when unambiguous: "bce_loss", "train/mse_loss" or
    "cross_entropy_epoch" name one loss of the table; "loss" or "total_loss" name none. Only
    whole underscore-separated words count ("mse" in "my_mse_loss", not in "rmse"). "nll" is
    never read from a tag: it is as often a density's negative log-likelihood, which may be
    negative, as torch's NLLLoss."""
    if not tag:
        return None
    words = tag.lower().replace("/", "_").replace("-", "_").split("_")
    found = {
        canonical_loss(name)
        for name in _FAMILIES
        if name != "nll" and any(words[i : i + name.count("_") + 1] == name.split("_") for i in range(len(words)))
    }
    # the longest name wins where one contains another ("bce_with_logits" holds "bce")
    found = {n for n in found if not any(n != m and f"{n}_" in f"{m}_" for m in found)}
    return found.pop() if len(found) == 1 else None


def canonical_loss(name: str | None) -> str | None:
    """The short name adapters report: "mse" for "mean_squared_error", else the name itself."""
    return _SHORT.get(name, name) if name is not None else None


def is_known_loss(name: str | None) -> bool:
    return name in _FAMILIES


def loss_family(name: str | None) -> str | None:
    """ "multiclass", "binary", "margin", "divergence", "regression" or None (unknown)."""
    return _FAMILIES.get(name) if name is not None else None


def chance_loss(task: str | None, num_classes: int | None, loss_name: str | None) -> float | None:
    """ln(C), the cross-entropy of a uniform guess over C classes, for a classification run
    whose C is known; None otherwise, and None under a loss known to be a regression loss (MSE
    on class indices: integer targets make the run look like a classification, but its loss
    has no chance level)."""
    if task != "classification" or (num_classes or 0) < 2 or loss_family(loss_name) == "regression":
        return None
    return math.log(num_classes)


def from_loss(loss_name: str | None, output_units: int | None = None, *, task: str | None = None) -> TaskFacts:
    """Task and classes from the loss name and the output width.

    Args:
        loss_name: as the adapters report it (`LossConfig.loss`).
        output_units: the model's output width.
        task: what the adapter or the user declared (`LossConfig.task`); it wins over the
            table. A classification task with a loss of no known classification family takes
            its classes from the output width (`classes_from_width`).

    Classes are those whose uniform guess sets the chance loss: 2 for binary and multi-label
    losses, the output width for multi-class ones (None for a one-unit output, which no
    multi-class loss can train), None for hinge losses (no log-loss chance level).
    """
    family = loss_family(loss_name)
    decided = task if task is not None else _FAMILY_TASK.get(family or "")
    classes = None
    if decided == "classification":
        if family == "binary":
            classes = 2
        elif family == "multiclass":
            classes = output_units if output_units and output_units > 1 else None
        elif family != "margin":
            classes = classes_from_width(output_units)
    return TaskFacts(task=decided, num_classes=classes, output_width=output_units, loss_family=family)


# -- from logged metrics -----------------------------------------------------------------------


def from_metric_names(names: Iterable[str]) -> TaskFacts:
    """Classification when any accuracy-like bounded score (accuracy, auc, f1, precision,
    recall) was logged; unknown otherwise."""
    return TaskFacts(task="classification" if any(is_bounded_score(n) for n in names) else None)


# -- input kind --------------------------------------------------------------------------------

# Layer class names (or a base class's name) -> what the model does with its raw inputs.
_LAYER_INPUT_KINDS = {
    "Embedding": "embedding_ids",
    "EmbeddingBag": "embedding_ids",
    "Rescaling": "rescaled",
    "Normalization": "rescaled",
}


def input_kind_of_layer(layer: str | type) -> str | None:
    """ "embedding_ids" for an Embedding or EmbeddingBag, "rescaled" for a Rescaling or
    Normalization layer, None otherwise. A class is matched by its own name or a base class's
    (a subclass of Embedding is an embedding), without importing any framework."""
    if isinstance(layer, str):
        return _LAYER_INPUT_KINDS.get(layer)
    for cls in getattr(layer, "__mro__", (layer,)):
        kind = _LAYER_INPUT_KINDS.get(getattr(cls, "__name__", ""))
        if kind is not None:
            return kind
    return None


def input_kind_of_model(layers: Iterable[str | type], *, ordered: bool) -> str | None:
    """What the model does with its inputs, from its layers' classes.

    Args:
        layers: layer classes (or class names).
        ordered: True when `layers` are in call order from the inputs (Keras' `model.layers`):
            the first layer that is not an InputLayer decides. False when the order is unknown
            (torch's `modules()`): "embedding_ids" when any layer is an embedding (torch
            embeddings accept integer ids only, so callers apply it to integer inputs only);
            rescaling layers are not trusted there, since where they sit is unknown.
    """
    for layer in layers:
        name = layer if isinstance(layer, str) else getattr(layer, "__name__", "")
        if ordered:
            if name == "InputLayer":
                continue
            return input_kind_of_layer(layer)
        if input_kind_of_layer(layer) == "embedding_ids":
            return "embedding_ids"
    return None


def soft_target_entropy(targets: np.ndarray | None) -> float | None:
    """The least mean loss a binary cross-entropy can reach on `targets`: their mean binary
    entropy, mean(-y ln y - (1 - y) ln(1 - y)) (Gibbs' inequality: BCE(y, p) >= H(y), equal at
    p = y). None unless the targets are finite floats in [0, 1] of which at least one lies
    strictly between (pixel values, soft labels, a teacher's probabilities): hard 0/1 labels have
    floor 0, and values outside [0, 1] are not a binary cross-entropy's targets."""
    if targets is None or targets.dtype.kind != "f" or targets.size == 0:
        return None
    y = np.asarray(targets, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(y)) and y.min() >= 0.0 and y.max() <= 1.0):
        return None
    inside = (y > 0.0) & (y < 1.0)
    if not inside.any():
        return None
    y = y[inside]
    return float(-(y * np.log(y) + (1 - y) * np.log1p(-y)).sum() / targets.size)
