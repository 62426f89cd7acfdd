"""mlcheck.task: one rule set for task, class count, loss family, input kind and metric direction."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mlcheck.metrics
from mlcheck import task
from mlcheck.task import TaskFacts, from_loss, from_metric_names, from_targets, merge


def _lightning_rule(targets, width):
    """The rule `integrations/lightning.py::_infer_task` applied before issue 9, verbatim (minus
    the RunInfo plumbing): `from_targets` must give the same answer on every case."""
    flat = targets.reshape(len(targets), -1) if targets.ndim else targets.reshape(1, 1)
    if flat.shape[1] != 1:
        onehot = flat.shape[1] == width and np.isin(flat, (0, 1)).all() and (flat.sum(1) == 1).all()
        return ("classification", width) if onehot else (None, None)
    if targets.dtype.kind in "biu":
        return "classification", width if width and width > 1 else (
            2 if width == 1 or targets.dtype.kind == "b" else None
        )
    if targets.dtype.kind == "f":
        values = flat[:, 0]
        if width == 1 and np.isin(values, (0.0, 1.0)).all():
            return "classification", 2
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            return "regression", None
        # reg33: whole numbers beyond 0/1 into one output unit are a regression (added since)
        return ("regression", None) if width == 1 else (None, None)
    return None, None


TARGETS = {
    "int64 labels": np.array([0, 3, 2, 1, 3]),
    "uint8 labels": np.array([0, 1, 1, 0], dtype=np.uint8),
    "int (N,1)": np.array([[0], [2], [1]]),
    "bool": np.array([True, False, True]),
    "float 0/1": np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32),
    "float 0/1 (N,1)": np.array([[0.0], [1.0]]),
    "float whole": np.array([0.0, 2.0, 5.0]),
    "float fractional": np.array([0.5, 1.25, -3.0]),
    "float nan": np.array([0.0, np.nan]),
    "one-hot 3": np.eye(3)[[0, 2, 1, 1]],
    "multi-hot 3": np.array([[1, 1, 0], [0, 0, 1]]),
    "soft 3": np.array([[0.2, 0.8, 0.0], [0.1, 0.1, 0.8]]),
    "sequence": np.array([[1, 2, 3, 4], [0, 1, 2, 3]]),
    "scalar int": np.array(3),
    "strings": np.array(["a", "b"]),
}
WIDTHS = [None, 0, 1, 2, 3, 10]


@pytest.mark.parametrize("name,width", list(itertools.product(TARGETS, WIDTHS)))
def test_from_targets_reproduces_the_lightning_rule(name, width):
    targets = TARGETS[name]
    facts = from_targets(targets, width)
    assert (facts.task, facts.num_classes) == _lightning_rule(targets, width)
    assert facts.output_width == width


@pytest.mark.parametrize(
    "targets,width,expected",
    [
        (np.array([0, 1, 2]), 3, ("classification", 3)),
        (np.array([0, 1, 1]), 1, ("classification", 2)),  # one logit for two classes
        (np.array([0, 1, 2]), None, ("classification", None)),  # width unknown: classes too
        (np.array([True, False]), None, ("classification", 2)),
        (np.array([0.0, 1.0]), 1, ("classification", 2)),
        (np.array([0.0, 1.0]), 2, (None, None)),  # 0/1 floats into two units: not decided
        (np.array([0.3, 1.7]), 1, ("regression", None)),
        (np.array([1.0, 4.0]), 1, ("regression", None)),  # whole numbers into one unit: a number
        (np.array([1.0, 4.0]), 5, (None, None)),  # whole-number floats: ids or counts alike
        (np.array([1.0, 4.0]), None, (None, None)),
        (np.eye(4)[[0, 3]], 4, ("classification", 4)),
        (np.eye(4)[[0, 3]], 5, (None, None)),  # one-hot width differs from the output
        (None, 3, (None, None)),
        (np.zeros((0,), dtype=np.int64), 3, (None, None)),  # an empty batch decides nothing
    ],
)
def test_from_targets_cases(targets, width, expected):
    facts = from_targets(targets, width)
    assert (facts.task, facts.num_classes) == expected


@pytest.mark.parametrize(
    "loss,units,expected",
    [
        # (task, num_classes, family, labels)
        ("cross_entropy", 10, ("classification", 10, "multiclass", "multiclass")),
        ("nll", 10, ("classification", 10, "multiclass", "multiclass")),
        ("sparse_categorical_crossentropy", 10, ("classification", 10, "multiclass", "multiclass")),
        ("categorical_focal_crossentropy", 4, ("classification", 4, "multiclass", "multiclass")),
        ("sparse_categorical_crossentropy", 1, ("classification", None, "multiclass", "multiclass")),
        ("bce_with_logits", 1, ("classification", 2, "binary", "binary")),
        ("binary_crossentropy", 1, ("classification", 2, "binary", "binary")),
        ("bce_with_logits", 5, ("classification", 2, "binary", "multilabel")),  # chance ln 2
        ("multilabel_soft_margin", 5, ("classification", 2, "binary", "multilabel")),
        ("binary_focal_crossentropy", None, ("classification", 2, "binary", None)),
        ("hinge", 1, ("classification", None, "margin", None)),
        ("categorical_hinge", 10, ("classification", None, "margin", None)),
        ("mse", 1, ("regression", None, "regression", None)),
        ("mean_squared_error", 1, ("regression", None, "regression", None)),
        ("mae", 3, ("regression", None, "regression", None)),
        ("l1", 1, ("regression", None, "regression", None)),
        ("huber", 1, ("regression", None, "regression", None)),
        ("smooth_l1", 1, ("regression", None, "regression", None)),
        ("log_cosh", 1, ("regression", None, "regression", None)),
        ("poisson", 1, ("regression", None, "regression", None)),
        ("mean_absolute_percentage_error", 1, ("regression", None, "regression", None)),
        ("kl_div", 10, (None, None, "divergence", None)),
        ("kl_divergence", 10, (None, None, "divergence", None)),
        ("CosineEmbeddingLoss", 8, (None, None, None, None)),
        (None, 3, (None, None, None, None)),
    ],
)
def test_from_loss_table(loss, units, expected):
    facts = from_loss(loss, units)
    assert (facts.task, facts.num_classes, facts.loss_family, facts.labels) == expected


def test_keras_long_names_have_one_short_name():
    assert [
        task.canonical_loss(n)
        for n in (
            "mean_squared_error",
            "mean_absolute_error",
            "mean_absolute_percentage_error",
            "mean_squared_logarithmic_error",
            "mse",
            "sparse_categorical_crossentropy",
            "custom",
            None,
        )
    ] == ["mse", "mae", "mape", "msle", "mse", "sparse_categorical_crossentropy", "custom", None]


def test_preflight_loss_sets_come_from_the_one_table():
    from mlcheck.checks.preflight import harness as preflight

    assert preflight.MULTICLASS_LOSSES is task.MULTICLASS_LOSSES
    assert preflight.BINARY_LOSSES is task.BINARY_LOSSES
    assert preflight.REGRESSION_LOSSES is task.REGRESSION_LOSSES
    assert task.SQUARED_LOSSES | task.ABSOLUTE_LOSSES <= task.REGRESSION_LOSSES
    assert not (task.MULTICLASS_LOSSES & task.BINARY_LOSSES)


def test_a_declared_task_wins_over_the_loss_table():
    # an unknown loss with a declared classification task: classes from the output width
    assert (
        from_loss("focal_custom", 1, task="classification").num_classes,
        from_loss("focal_custom", 7, task="classification").num_classes,
    ) == (2, 7)
    assert from_loss("mse", 1, task="classification").task == "classification"
    assert from_loss("cross_entropy", 10, task="regression") == TaskFacts(
        task="regression", output_width=10, loss_family="multiclass"
    )


def test_explicit_arguments_win():
    inferred = TaskFacts(
        task="classification", num_classes=10, output_width=10, input_kind="embedding_ids", loss_family="multiclass"
    )
    assert merge(TaskFacts(), inferred) == inferred
    assert merge(TaskFacts(num_classes=4), inferred).num_classes == 4
    assert merge(TaskFacts(input_kind="rescaled"), inferred).input_kind == "rescaled"
    said = merge(TaskFacts(task="regression"), inferred)
    assert (said.task, said.num_classes) == ("regression", None)  # no class count for regression
    # what the Lightning callback does with `task=`/`num_classes=` and the first targets
    assert merge(TaskFacts(task="classification"), from_targets(np.array([0.0, 3.0]), 5)) == TaskFacts(
        task="classification", num_classes=None, output_width=5
    )
    assert merge(TaskFacts(num_classes=3), from_targets(np.array([0, 1]), 10)).num_classes == 3


def test_from_metric_names():
    assert from_metric_names(["val_accuracy", "loss"]).task == "classification"
    assert from_metric_names(["val/f1", "train_loss"]).task == "classification"
    assert from_metric_names(["loss", "val_loss", "mae"]).task is None


class Embedding:  # stand-ins named like the framework classes: the rule goes by class name
    pass


class EmbeddingBag:
    pass


class PositionalEmbedding(Embedding):
    pass


class Rescaling:
    pass


class Dense:
    pass


class InputLayer:
    pass


@pytest.mark.parametrize(
    "layer,expected",
    [
        ("Embedding", "embedding_ids"),
        ("EmbeddingBag", "embedding_ids"),
        ("Rescaling", "rescaled"),
        ("Normalization", "rescaled"),
        ("BatchNormalization", None),
        ("Dense", None),
        (Embedding, "embedding_ids"),
        (EmbeddingBag, "embedding_ids"),
        (PositionalEmbedding, "embedding_ids"),
        (Rescaling, "rescaled"),
        (Dense, None),
    ],
)
def test_input_kind_of_layer(layer, expected):
    assert task.input_kind_of_layer(layer) == expected


def test_input_kind_of_model_ordered_and_unordered():
    ordered = task.input_kind_of_model
    assert ordered([InputLayer, EmbeddingBag, Dense], ordered=True) == "embedding_ids"
    assert ordered([InputLayer, Rescaling, Dense], ordered=True) == "rescaled"
    assert ordered([InputLayer, Dense, Embedding], ordered=True) is None  # not the first layer
    assert ordered([Dense, EmbeddingBag], ordered=False) == "embedding_ids"  # torch: anywhere
    assert ordered([Dense, Rescaling], ordered=False) is None  # position unknown: not trusted
    assert ordered([], ordered=True) is None


def test_metric_direction_is_one_function():
    assert task.higher_is_better is mlcheck.metrics.higher_is_better
    assert task.higher_is_better("val_accuracy") is True
    assert task.higher_is_better("val_loss") is False
    assert task.register_metric is mlcheck.metrics.register_metric
