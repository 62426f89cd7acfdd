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


def select(
    only: str | None = None, framework: str | None = None, quick: bool = False, smoke: bool = False
) -> list[Program]:
    """Programs filtered by comma-separated name fragments, framework, quick or smoke subset.

    `quick` keeps one instance of each fault (frameworks alternating) and three clean runs per
    framework.
    """
    chosen = programs()
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
