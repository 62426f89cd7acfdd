"""`frozen-parameters` before training: one recorded training step on a clone, judged by the
rule the live check uses (`frozen_in_gradient_path`), so `mlcheck sanity` and a training run
name the same layer, and a frozen pre-trained backbone stays silent in both."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck import MLCheckWarning, Monitor
from mlcheck.checks.layers import FrozenParameters
from mlcheck.findings import Severity
from mlcheck.integrations.torch import TorchTrainable
from mlcheck.integrations.torch_layers import LayerRecorder
from mlcheck.preflight_context import Budget, PreflightContext

torch.set_num_threads(1)  # two shared cores: tiny models are far slower with a thread pool


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32), y[order]


def mlp(*widths):
    layers = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def preflight(model, digits, optimizer=None):
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    trainable = TorchTrainable(model, nn.CrossEntropyLoss(), optimizer, digits)
    return list(FrozenParameters().preflight(PreflightContext(trainable, Budget(seconds=120))))


def test_a_middle_layer_frozen_by_mistake_is_named(digits):
    torch.manual_seed(0)
    model = mlp(64, 64, 64, 64, 10)
    model[2].requires_grad_(False)  # meant model[0]
    before = [p.detach().clone() for p in model.parameters()]
    (finding,) = preflight(model, digits)
    assert finding.check == "frozen-parameters" and finding.severity == Severity.WARNING
    assert finding.evidence["layer"] == "2" and finding.evidence["reason"] == "requires_grad"
    assert finding.evidence["trainable_before"] == ["0"]
    assert "Layer 2 (Linear)" in finding.message and "requires_grad=False" in finding.message
    assert "requires_grad_(True)" in finding.hint and "suppress 'frozen-parameters'" in finding.hint
    assert finding.step is None  # before training
    # the step was taken on a clone
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_layer_built_frozen_inside_a_module_is_named_by_its_path(digits):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(64, 64)
            self.middle = nn.Linear(64, 64)
            self.head = nn.Linear(64, 10)
            for p in self.middle.parameters():
                p.requires_grad = False  # left over from an experiment

        def forward(self, x):
            return self.head(torch.relu(self.middle(torch.relu(self.encoder(x)))))

    torch.manual_seed(0)
    (finding,) = preflight(Net(), digits)
    assert finding.evidence["layer"] == "middle"


def test_a_frozen_pretrained_backbone_stays_silent(digits):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
    backbone.requires_grad_(False)  # pre-trained, frozen on purpose
    model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), backbone, nn.Flatten(), nn.Linear(8 * 64, 10))
    assert preflight(model, digits, torch.optim.Adam(model[3].parameters(), lr=1e-3)) == []


def pretrain(model, digits, steps: int = 60):
    """A few Adam steps on every layer: the weights a fine-tuning (or a GAN's discriminator,
    a perceptual-loss net) starts from."""
    x, y = torch.from_numpy(digits[0]), torch.from_numpy(digits[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(steps):
        rows = slice(step % 40 * 32, step % 40 * 32 + 32)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
        optimizer.step()
    return model


def test_fully_trainable_and_adapter_models_stay_silent(digits):
    torch.manual_seed(0)
    assert preflight(mlp(64, 64, 64, 10), digits) == []
    # adapter fine-tuning: a small trainable layer before large frozen pre-trained ones (most
    # parameters frozen on purpose, past `max_frozen_share`); the same holds for a trained
    # discriminator or perceptual-loss net frozen after a trainable generator
    model = pretrain(mlp(64, 8, 256, 256, 10), digits)
    model[2].requires_grad_(False)
    model[4].requires_grad_(False)
    assert preflight(model, digits) == []


def test_a_frozen_layer_that_was_never_trained_is_named_past_the_share_rule(digits):
    """The same adapter shape with the frozen layers fresh from their initialiser (torch's
    default uniform draw): frozen by mistake whatever share of the parameters they hold."""
    torch.manual_seed(0)
    model = mlp(64, 8, 256, 256, 10)
    model[2].requires_grad_(False)
    model[4].requires_grad_(False)
    found = preflight(model, digits)
    assert [f.evidence["layer"] for f in found] == ["2", "4"]
    assert all(f.evidence["init_distance"] < 1.63 and "initialiser's random draw" in f.message for f in found)


def test_sanity_and_the_live_check_name_the_same_layer(digits):
    torch.manual_seed(0)
    model = mlp(64, 64, 64, 64, 10)
    model[2].requires_grad_(False)
    (before,) = preflight(model, digits)
    x, y = torch.from_numpy(digits[0]), torch.from_numpy(digits[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    recorder = LayerRecorder(model)
    with pytest.warns(MLCheckWarning, match="frozen-parameters"), Monitor(checks=[FrozenParameters()]) as monitor:
        for step in range(6):  # every step sampled: patience 5
            with recorder.step(monitor, step):
                loss = nn.functional.cross_entropy(
                    model(x[step * 32 : (step + 1) * 32]), y[step * 32 : (step + 1) * 32]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    live = [f for f in monitor.findings if f.check == "frozen-parameters"]
    assert [f.evidence["layer"] for f in live] == [before.evidence["layer"]]
    assert live[0].evidence["reason"] == before.evidence["reason"]
