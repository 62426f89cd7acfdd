"""`mlcheck sanity` names a root cause found beside a symptom, as the live path does
(`Check.explained_by`), whatever order the checks ran in; `overfit-batch` shows its better try.
Real torch training on small sklearn data sets."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from torch import nn

import mlcheck


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32), y[order]


def test_softmax_into_cross_entropy_overfit_batch_names_the_mismatch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
    target = {
        "model": model,
        "train_data": _digits(),
        "loss": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3),
    }
    # overfit-batch runs before output-loss-mismatch in the catalogue's order
    result = mlcheck.sanity(target, select=["overfit-batch", "output-loss-mismatch"])
    by_id = {f.check: f for f in result.findings}
    assert set(by_id) == {"overfit-batch", "output-loss-mismatch"}
    symptom = by_id["overfit-batch"]
    assert symptom.evidence["likely_cause"] == "output-loss-mismatch"
    assert "likely follows from `output-loss-mismatch`" in symptom.message
    assert symptom.hint.startswith("Fix `output-loss-mismatch` first")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_unscaled_features_overfit_batch_shows_its_better_try_and_names_the_scale():
    x, y = load_breast_cancer(return_X_y=True)  # raw features up to ~4000, never standardised
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.float32), y[order].astype(np.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))
    target = {
        "model": model,
        "train_data": (x[:450], y[:450]),
        "loss": nn.BCEWithLogitsLoss(),
        "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3),
    }
    result = mlcheck.sanity(target, select=["overfit-batch", "unnormalized-input"])
    (symptom,) = [f for f in result.findings if f.check == "overfit-batch"]
    assert symptom.severity is mlcheck.Severity.ERROR
    evidence = symptom.evidence
    assert len(evidence["lrs_tried"]) == 2
    # the numbers in the message and evidence are those of the try that came closest
    assert evidence["final_loss"] == min(evidence["final_loss_per_lr"])
    assert f"to {evidence['final_loss']:.4g} at the better learning rate" in symptom.message
    assert evidence["likely_cause"] == "unnormalized-input"


def test_unscaled_pixels_loss_at_init_names_the_scale():
    x, y = _digits()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    target = {
        "model": model,
        "train_data": (x * 255, y),  # raw 0-255 pixels
        "loss": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3),
    }
    result = mlcheck.sanity(target, select=["loss-at-init", "unnormalized-input"])
    (symptom,) = [f for f in result.findings if f.check == "loss-at-init"]
    assert symptom.evidence["ratio"] > 10
    assert symptom.evidence["likely_cause"] == "unnormalized-input"
