"""The programs of the fault suite: one entry per (framework, fault) and per clean configuration.

Each `Program` is a small, real training run described by plain values (data set, model,
optimizer, schedule, length) plus the one fault injected into it. `catches` lists the check ids
whose WARNING or ERROR finding counts as catching that fault; `preflight` marks faults that are
a property of the model/loss set-up rather than of the curves, for which a finding from
`mlcheck.sanity(...)` (before training) counts as well.

Sources of the faults: DeepCrime's mutation operators (Humbatova et al., ISSTA 2021: change
learning rate, change labels, remove/unbalance data, change activation, change weight
initialisation, freeze layers, add/change weight regularisation, change loss), Karpathy's "A Recipe
for Training Neural Networks" (2019: verify loss at init, overfit one batch, check that data are
shuffled and normalised, watch for label leakage), and the common-bug lists of UMLAUT
(Schoop et al., CHI 2021) and DeepDiagnosis (Wardat et al., ICSE 2022).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Program:
    """One training program of the suite.

    Attributes:
        name: unique, "<framework>/<fault or clean config>".
        framework: "lightning" or "keras".
        fault: the injected fault's name, or None for a clean run.
        catches: check ids whose WARNING/ERROR finding counts as catching the fault.
        preflight: True when a `mlcheck.sanity` finding with a `catches` id also counts.
        source: where the fault comes from.
        config: data set, model, optimizer, schedule and length (see `train_*`).
        smoke: part of the CI smoke subset.
        layer: for a per-layer fault, the layer its finding must name (module path in
            Lightning, layer name in Keras); None otherwise.
        layer_checks: run with the opt-in per-layer checks on (the layer programs).
    """

    name: str
    framework: str
    fault: str | None
    catches: tuple[str, ...] = ()
    preflight: bool = False
    source: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    smoke: bool = False
    note: str = ""
    layer: str | None = None
    layer_checks: bool = False

    @property
    def clean(self) -> bool:
        return self.fault is None


def _cfg(**overrides: Any) -> dict[str, Any]:
    """A healthy digits MLP run, with `overrides` applied."""
    base: dict[str, Any] = {
        "data": "digits",  # digits | breast_cancer | mnist | *_regression
        "data_fault": None,  # one of data.DATA_FAULTS
        "hidden": (64, 64),
        "activation": "relu",  # relu | None (missing activation)
        "batchnorm": False,
        "dropout": 0.0,
        "init": "default",  # default | zeros
        "output_activation": None,  # None | "softmax" (before a from-logits loss)
        "optimizer": "adam",  # adam | sgd | adamw
        "lr": 1e-3,
        "momentum": 0.9,
        "weight_decay": 0.0,  # AdamW's decoupled decay
        "l2": 0.0,  # L2 penalty on kernels, added to the loss
        "schedule": None,  # None | step | cosine | onecycle | warmup
        "frozen": False,  # hidden layers left out of the optimizer (Lightning)
        "layers": None,  # a per-layer model of LAYER_MODELS instead of the MLP above
        "epochs": 10,
        "batch_size": 32,
    }
    base.update(overrides)
    return base


DIVERGENCE = ("loss-divergence", "nonfinite-loss", "lr-too-high")
STALL = ("loss-plateau", "lr-too-low")

# (fault, source, catches, preflight, config overrides per framework, note)
_FAULTS: list[tuple[str, str, tuple[str, ...], bool, dict[str, dict[str, Any]], str]] = [
    (
        "lr_x100",
        "DeepCrime: change learning rate",
        DIVERGENCE,
        False,
        {
            "lightning": _cfg(optimizer="sgd", lr=0.05 * 100),
            "keras": _cfg(optimizer="adam", lr=1e-3 * 100),
        },
        "healthy lr x100 (SGD+momentum 0.05 -> 5 in Lightning, Adam 1e-3 -> 0.1 in Keras)",
    ),
    (
        "lr_div1000",
        "DeepCrime: change learning rate",
        STALL + ("overfit-batch",),
        False,
        {
            "lightning": _cfg(optimizer="adam", lr=1e-3 / 1000),
            "keras": _cfg(optimizer="sgd", lr=0.05 / 1000),
        },
        "healthy lr /1000 (Adam 1e-3 -> 1e-6 in Lightning, SGD 0.05 -> 5e-5 in Keras)",
    ),
    (
        "shuffled_labels",
        "DeepCrime: change labels (100%)",
        ("loss-plateau", "train-val-gap"),
        False,
        {fw: _cfg(data_fault="shuffled_labels", epochs=15) for fw in ("lightning", "keras")},
        "training labels permuted; validation labels intact",
    ),
    (
        "label_feature",
        "Karpathy / UMLAUT: label leakage",
        ("feature-leakage", "suspicious-val"),
        False,
        {
            fw: _cfg(data="breast_cancer", data_fault="label_feature", hidden=(32,), epochs=15, batch_size=16)
            for fw in ("lightning", "keras")
        },
        "breast_cancer with the label copied into feature 0",
    ),
    (
        "val_overlap",
        "deepchecks TrainTestSamplesMix: validation overlaps training",
        ("train-val-overlap", "suspicious-val"),
        False,
        {fw: _cfg(data_fault="val_overlap") for fw in ("lightning", "keras")},
        "validation set drawn from the training rows",
    ),
    (
        "unnormalized",
        "DeepCrime / Karpathy: missing input normalisation",
        ("unnormalized-input",),
        False,
        {
            fw: _cfg(data="mnist", data_fault="unnormalized", hidden=(128,), epochs=5, batch_size=64)
            for fw in ("lightning", "keras")
        },
        "MNIST with raw 0-255 pixels",
    ),
    (
        "softmax_from_logits",
        "UMLAUT / DeepDiagnosis: softmax before a from-logits loss",
        ("output-loss-mismatch",),
        True,
        {fw: _cfg(output_activation="softmax") for fw in ("lightning", "keras")},
        "softmax output fed to CrossEntropyLoss / SparseCategoricalCrossentropy(from_logits=True)",
    ),
    (
        "sorted",
        "Karpathy: unshuffled data sorted by label",
        ("unshuffled-data",),
        False,
        {fw: _cfg(data_fault="sorted") for fw in ("lightning", "keras")},
        "training rows sorted by label, loader shuffle off",
    ),
    (
        "imbalance",
        "DeepCrime: unbalance training data",
        ("class-imbalance",),
        False,
        {
            fw: _cfg(data="breast_cancer", data_fault="imbalance", hidden=(32,), epochs=20, batch_size=16)
            for fw in ("lightning", "keras")
        },
        "breast_cancer keeping 4% of the minority class (~40:1)",
    ),
    (
        "nan_inputs",
        "UMLAUT: NaN in the inputs",
        ("nonfinite-input", "nonfinite-loss"),
        False,
        {fw: _cfg(data_fault="nan_inputs") for fw in ("lightning", "keras")},
        "1% of training input cells set to NaN",
    ),
    (
        "zero_init",
        "DeepCrime: change weight initialisation (zeros)",
        STALL + ("overfit-batch", "unused-parameters", "input-independence"),
        True,
        {fw: _cfg(init="zeros") for fw in ("lightning", "keras")},
        "every weight and bias initialised to zero: ReLU units dead, symmetry never broken, "
        "every sample gets the same output (so input-independence counts)",
    ),
    (
        "frozen_layer",
        "DeepCrime: freeze layers / parameters left out of the optimizer",
        ("unused-parameters",) + STALL + ("overfit-batch",),
        True,
        {"lightning": _cfg(frozen=True)},
        "optimizer built over the output layer only; hidden layers keep their random weights",
    ),
    (
        "missing_activation",
        "DeepCrime: remove activation function",
        ("missing-nonlinearity", "loss-plateau", "overfit-batch"),
        True,
        {
            fw: _cfg(data="mnist", activation=None, hidden=(128, 128), epochs=5, batch_size=64)
            for fw in ("lightning", "keras")
        },
        "MLP without nonlinearities: a linear model in disguise",
    ),
    (
        "over_regularised",
        "DeepCrime: add weight regularisation (heavy L2)",
        ("loss-plateau", "overfit-batch", "lr-too-low", "loss-at-init"),
        True,
        {fw: _cfg(l2=1.0) for fw in ("lightning", "keras")},
        "L2 penalty 1.0 on every kernel: the model cannot leave zero (where the penalty is part "
        "of the loss, as in Keras, the loss at init is far above ln C: loss-at-init counts)",
    ),
    (
        "overfit_long",
        "Karpathy: large model, little data, trained too long",
        ("train-val-gap",),
        False,
        {
            fw: _cfg(data="mnist", data_fault="small_train", hidden=(512, 512), epochs=60, batch_size=32)
            for fw in ("lightning", "keras")
        },
        "150 MNIST training rows, 512x512 MLP, 60 epochs (val loss bottoms out near epoch 6)",
    ),
]

# (name, config, note), run in both frameworks unless marked
_CLEAN: list[tuple[str, dict[str, Any], tuple[str, ...], str]] = [
    ("adam_constant", _cfg(), ("lightning", "keras"), "Adam 1e-3, constant lr"),
    (
        "sgd_momentum_step",
        _cfg(optimizer="sgd", lr=0.05, schedule="step", epochs=12),
        ("lightning", "keras"),
        "SGD+momentum 0.05, lr /10 every 4 epochs",
    ),
    (
        "adamw_cosine",
        _cfg(
            data="mnist",
            optimizer="adamw",
            weight_decay=1e-2,
            hidden=(128,),
            schedule="cosine",
            epochs=5,
            batch_size=64,
        ),
        ("lightning", "keras"),
        "AdamW on MNIST, cosine decay",
    ),
    ("onecycle", _cfg(optimizer="sgd", lr=0.1, schedule="onecycle"), ("lightning",), "SGD one-cycle, peak 0.1"),
    (
        "warmup",
        _cfg(optimizer="adam", lr=2e-3, schedule="warmup"),
        ("lightning", "keras"),
        "Adam, linear warmup over 10% then cosine",
    ),
    (
        "small_batch_noisy",
        _cfg(optimizer="sgd", lr=0.01, batch_size=4, epochs=3),
        ("lightning", "keras"),
        "batch 4, SGD: a noisy loss",
    ),
    (
        "early_converging",
        _cfg(data="breast_cancer", hidden=(), lr=1e-2, epochs=30, batch_size=32),
        ("lightning", "keras"),
        "logistic regression on breast_cancer: converged within a few epochs, then flat",
    ),
    (
        "regression",
        _cfg(data="breast_cancer_regression", hidden=(64,), epochs=12, batch_size=32),
        ("lightning",),
        "regression (MSE) of breast_cancer 'mean texture'",
    ),
    (
        "regression",
        _cfg(data="digits_regression", hidden=(64,), epochs=10),
        ("keras",),
        "regression (MSE) of the digit's value from its pixels",
    ),
    ("batchnorm", _cfg(batchnorm=True), ("lightning", "keras"), "MLP with BatchNorm"),
    (
        "dropout",
        _cfg(data="mnist", hidden=(256,), dropout=0.3, epochs=5, batch_size=64),
        ("lightning", "keras"),
        "MLP with dropout 0.3 on MNIST",
    ),
]

SMOKE = {"lightning/clean_adam_constant", "lightning/nan_inputs", "keras/val_overlap"}


def programs() -> list[Program]:
    """Every program of the suite, faults first, in a fixed order."""
    out: list[Program] = []
    for fault, source, catches, preflight, per_fw, note in _FAULTS:
        for fw, config in per_fw.items():
            name = f"{fw}/{fault}"
            out.append(Program(name, fw, fault, catches, preflight, source, config, smoke=name in SMOKE, note=note))
    for clean, config, fws, note in _CLEAN:
        for fw in fws:
            name = f"{fw}/clean_{clean}"
            out.append(
                Program(name, fw, None, (), False, "healthy configuration", config, smoke=name in SMOKE, note=note)
            )
    return out


# -- per-layer faults (issue 14): run with the opt-in layer checks on -----------------------------

#: The per-layer checks, opt-in (`default = False`): the layer programs pass them with the defaults,
#: `MLCheckCallback(checks=[*default_checks(), *(registry()[i]() for i in LAYER_CHECKS)])`.
LAYER_CHECKS = (
    "vanishing-gradient",
    "exploding-gradient",
    "dead-units",
    "saturated-activations",
    "frozen-parameters",
    "nonfinite-origin",
)
#: The planted layer models (built by each framework's program module) and the healthy ones.
LAYER_MODELS = (
    "vanishing",
    "exploding",
    "dead",
    "saturated",
    "frozen",
    "nan_log",
    "nan_sqrt",
    "nan_div",
    "frozen_backbone",
    "attention",
    "tanh",
    "deep_relu",
)
#: the training step from which the NaN programs' custom layer turns bad (of 450: 10 epochs of 45)
NAN_STEP = 300
_SGD = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}

# (fault, source, catches, config, {framework: the layer the finding must name}, note)
_LAYER_FAULTS: list[tuple[str, str, tuple[str, ...], dict[str, Any], dict[str, str], str]] = [
    (
        "layer_vanishing",
        "issue 14 / AUTOTRAINER: deep sigmoid stack, small initialisation",
        ("vanishing-gradient",),
        _cfg(layers="vanishing", **_SGD),
        {"lightning": "net.0", "keras": "hidden_0"},
        "10 Dense(64)+sigmoid layers initialised N(0, 0.01)",
    ),
    (
        "layer_exploding",
        "issue 14 / AUTOTRAINER: large initialisation without normalisation",
        ("exploding-gradient",),
        _cfg(layers="exploding", optimizer="sgd", lr=1e-4, momentum=0.0),
        {"lightning": "net.0", "keras": "hidden_0"},
        "6 Dense(64)+ReLU layers initialised N(0, 1) (He: 0.18), no normalisation, SGD 1e-4",
    ),
    (
        "layer_dead",
        "issue 14 / SageMaker DeadRelu: ReLU layer killed by a large negative bias",
        ("dead-units",),
        _cfg(layers="dead", **_SGD),
        {"lightning": "net.3", "keras": "hidden_1"},
        "second hidden layer's bias initialised to -10",
    ),
    (
        "layer_saturated",
        "issue 14 / SageMaker SaturatedActivation: tanh layer fed unscaled inputs",
        ("saturated-activations",),
        _cfg(layers="saturated", data="mnist", data_fault="unnormalized", epochs=5, batch_size=64, **_SGD),
        {"lightning": "net.1", "keras": "hidden_0"},
        "MNIST with raw 0-255 pixels into Dense(64)+tanh",
    ),
    (
        "layer_frozen",
        "issue 14 / DeepCrime freeze layers: requires_grad=False / trainable=False by mistake",
        ("frozen-parameters",),
        _cfg(layers="frozen", **_SGD),
        {"lightning": "net.2", "keras": "hidden_1"},
        "the middle of three hidden layers frozen (meant the first)",
    ),
    (
        "layer_nan_log",
        "issue 14: a custom layer computing log(0) at a late step",
        ("nonfinite-origin",),
        _cfg(layers="nan_log", **_SGD),
        {"lightning": "net.3", "keras": "log_layer"},
        f"log(relu(x)) from training step {NAN_STEP} of 450",
    ),
    (
        "layer_nan_sqrt",
        "issue 14: a custom layer computing sqrt of a negative at a late step",
        ("nonfinite-origin",),
        _cfg(layers="nan_sqrt", **_SGD),
        {"lightning": "net.3", "keras": "sqrt_layer"},
        f"sqrt(x) from training step {NAN_STEP} of 450",
    ),
    (
        "layer_nan_div",
        "issue 14: a custom layer dividing by zero at a late step",
        ("nonfinite-origin",),
        _cfg(layers="nan_div", **_SGD),
        {"lightning": "net.3", "keras": "div_layer"},
        f"x / (x - x) from training step {NAN_STEP} of 450",
    ),
]

# (name, config, note): healthy layer models, in both frameworks
_LAYER_CLEAN: list[tuple[str, dict[str, Any], str]] = [
    (
        "layers_frozen_backbone",
        _cfg(layers="frozen_backbone", **_SGD),
        "fine-tuning: a frozen backbone (two Dense+ReLU, frozen on purpose) under a trained head",
    ),
    (
        "layers_attention",
        _cfg(layers="attention"),
        "self-attention over the digit's 8 rows with a causal mask (-inf in Lightning)",
    ),
    ("layers_tanh", _cfg(layers="tanh", **_SGD), "Dense(64)+tanh on scaled inputs"),
    # Adam: with SGD 0.05 + momentum 0.9, Lightning's 6-layer ReLU stack did not train at all
    # (loss at chance, half its last ReLU's units dead): not a clean run
    ("layers_deep_relu", _cfg(layers="deep_relu"), "6 Dense(64)+ReLU layers, default initialisation, Adam 1e-3"),
]


#: Layer faults `mlcheck sanity` also catches before training: `frozen-parameters` records one
#: training step on a copy and judges it by the live check's rule.
_LAYER_PREFLIGHT = frozenset({"layer_frozen"})


def layer_programs() -> list[Program]:
    """The per-layer faults in both frameworks, then the clean runs with the layer checks on:
    the suite's clean configurations and the healthy layer models."""
    out: list[Program] = []
    for fault, source, catches, config, layer, note in _LAYER_FAULTS:
        for fw in ("lightning", "keras"):
            out.append(
                Program(
                    f"{fw}/{fault}", fw, fault, catches, fault in _LAYER_PREFLIGHT, source, config, note=note,
                    layer=layer[fw], layer_checks=True,
                )
            )  # fmt: skip
    for clean, config, fws, note in _CLEAN:
        for fw in fws:
            name = f"{fw}/clean_layers_{clean}"
            out.append(
                Program(name, fw, None, (), False, "healthy configuration", config, note=note, layer_checks=True)
            )
    for clean, config, note in _LAYER_CLEAN:
        for fw in ("lightning", "keras"):
            out.append(Program(f"{fw}/clean_{clean}", fw, None, (), False, "healthy layer model", config, note=note,
                               layer_checks=True))  # fmt: skip
    return out


def all_programs() -> list[Program]:
    """The suite's programs and the layer programs."""
    return programs() + layer_programs()


def select(
    only: str | None = None,
    framework: str | None = None,
    quick: bool = False,
    smoke: bool = False,
    layers: bool = False,
) -> list[Program]:
    """Programs filtered by comma-separated name fragments, framework, quick or smoke subset.

    `quick` keeps one instance of each fault (frameworks alternating) and three clean runs per
    framework. `layers` chooses among the layer programs (`layer_programs`) instead of the suite's.
    """
    chosen = layer_programs() if layers else programs()
    if framework:
        chosen = [p for p in chosen if p.framework == framework]
    if only:
        parts = [s.strip() for s in only.split(",") if s.strip()]
        chosen = [p for p in chosen if any(s == p.name or s in p.name for s in parts)]
    if smoke:
        chosen = [p for p in chosen if p.smoke]
    if quick:
        # one instance per fault, frameworks alternating; three clean runs per framework
        faults = list(dict.fromkeys(p.fault for p in chosen if not p.clean))
        keep = []
        for i, fault in enumerate(faults):
            options = [p for p in chosen if p.fault == fault]
            preferred = ("lightning", "keras")[i % 2]
            keep.append(next((p for p in options if p.framework == preferred), options[0]))
        for fw in ("lightning", "keras"):
            keep += [p for p in chosen if p.clean and p.framework == fw][:3]
        chosen = keep
    return chosen
