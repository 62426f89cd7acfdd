"""A model that gives NaN before any training step: one finding names the root cause, and the
checks that train (overfit-batch, lr-too-high, lr-too-low) do not blame the learning rate."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mlcheck.findings import Severity
from mlcheck.integrations.torch import TorchTrainable
from mlcheck.sanity import Budget, sanity

torch.set_num_threads(1)  # two shared cores: torch's thread pool only adds contention

TRAINING_CHECKS = ["loss-at-init", "overfit-batch", "lr-too-high", "lr-too-low", "nonfinite-input"]


class NaNOutputs(nn.Module):
    """sqrt of a negative number: NaN from the first forward pass, at any learning rate."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(8, 3)

    def forward(self, x):
        return torch.sqrt(-torch.abs(self.layer(x)) - 1)


def _run(model, x, y):
    torch.manual_seed(0)
    trainable = TorchTrainable(
        model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), train_data=(x, y)
    )
    return sanity(trainable, select=TRAINING_CHECKS, budget=Budget(steps=40, seconds=60))


def _loud(result):
    return [(f.check, f.key) for f in result.findings if f.severity >= Severity.WARNING]


def test_nan_outputs_at_init_are_named_once_and_not_blamed_on_the_learning_rate():
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    result = _run(NaNOutputs(), x, y)
    assert _loud(result) == [("loss-at-init", "nonfinite")]
    (root,) = [f for f in result.findings if f.severity >= Severity.WARNING]
    assert root.severity is Severity.ERROR and "outputs are already NaN or infinite" in root.message
    for check in ("overfit-batch", "lr-too-high", "lr-too-low"):
        (note,) = [f for f in result.findings if f.check == check]
        assert note.severity is Severity.INFO and "before any training step" in note.message
        assert "learning rate" not in note.message.lower().replace("no learning rate", "")


def test_nan_inputs_are_named_by_nonfinite_input_alone():
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    x[::10, 2] = float("nan")
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    result = _run(model, x, y)
    assert [c for c, _ in _loud(result)] == ["nonfinite-input"]
    skipped = {f.check for f in result.findings if f.key == "skipped" and "nonfinite-input" in f.message}
    assert skipped == {"loss-at-init", "overfit-batch", "lr-too-high", "lr-too-low"}


def test_a_finite_model_still_gets_its_learning_rate_judged():
    # the deferral must not switch the checks off for healthy numbers: a rate that blows up a
    # finite model is still "too high" (the regression guard for the memoised fact)
    x = torch.randn(64, 8) * 50
    y = torch.randint(0, 3, (64,))
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    torch.manual_seed(0)
    trainable = TorchTrainable(
        model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=10.0), train_data=(x, y)
    )
    result = sanity(trainable, select=["lr-too-high"], budget=Budget(steps=40, seconds=60))
    assert np.isfinite(trainable.loss((x, y)))
    assert [f.check for f in result.findings if f.severity >= Severity.WARNING] == ["lr-too-high"]
