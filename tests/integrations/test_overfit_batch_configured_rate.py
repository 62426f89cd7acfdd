"""`overfit-batch` calls a batch unfittable only after the configured rate had the full steps.

The configured rate gets a third of the steps; when the loss fell steadily but short of the goal,
a copy tries 10x the rate. Under Adam, 10x can kill a ReLU net's units and stall: a learning ReLU
autoencoder on soft pixel targets (digits in [0.25, 0.75], BCE, Adam at 3e-3: the run reaches 87%
of the room above the targets' entropy) then got the ERROR "cannot fit a single batch" from a
third of the steps at its own rate and a stalled 10x try (dead27's find, 2026-12-05). Now the
configured rate tries the full steps before that verdict: still falling, it is INFO inconclusive.
The wiring faults keep their ERROR (a frozen model: its loss cannot move at any rate).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck import Severity
from mlcheck.checks.preflight import OverfitBatch
from mlcheck.integrations.torch import TorchTrainable
from mlcheck.preflight_context import PreflightContext


def _autoencoder(seed: int, frozen: bool = False) -> TorchTrainable:
    x = torch.tensor((0.25 + 0.5 * load_digits().data / 16).astype(np.float32))
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64)
    )
    model = nn.Sequential(net, nn.Sigmoid())
    if frozen:  # every weight but the output bias frozen: the outputs cannot follow the inputs
        for name, p in model.named_parameters():
            p.requires_grad_(name == "0.6.bias")
    params = [p for p in model.parameters() if p.requires_grad]
    return TorchTrainable(model, nn.BCELoss(), torch.optim.Adam(params, 3e-3), (x[:1400], x[:1400]))


@pytest.mark.parametrize("seed", [0, 3])
def test_a_learning_relu_autoencoder_whose_10x_try_stalls_is_not_called_unfittable(seed):
    torch.set_num_threads(1)
    ctx = PreflightContext(_autoencoder(seed))
    findings = list(OverfitBatch().preflight(ctx))
    assert not [f for f in findings if f.severity >= Severity.WARNING], [f.message for f in findings]
    runs = OverfitBatch().runs(ctx)
    # the configured rate had the full steps (on the old code: a third of them, then the ERROR)
    assert runs[0].lr == pytest.approx(3e-3) and runs[0].steps == 100
    assert [f.key for f in findings] == ["inconclusive"]


def test_a_frozen_autoencoder_still_cannot_fit_one_batch():
    torch.set_num_threads(1)
    findings = list(OverfitBatch().preflight(PreflightContext(_autoencoder(0, frozen=True))))
    assert [f.severity for f in findings] == [Severity.ERROR], [f.message for f in findings]


def _warmed_up_mlp(start_factor: float) -> TorchTrainable:
    digits = load_digits()
    x = torch.tensor(digits.data[:1400] / 16, dtype=torch.float32)
    y = torch.tensor(digits.target[:1400])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    # a per-step warm-up as users write it (LambdaLR returning a factor): at step 0 the optimizer
    # holds `start_factor` x 1e-2 in "lr" and the configured 1e-2 in "initial_lr"
    torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, start_factor + s / 1000))
    return TorchTrainable(model, nn.CrossEntropyLoss(), opt, (x, y))


def test_the_first_try_trains_at_the_configured_rate_not_the_warm_ups_first():
    """Batch 32's h01 (a healthy transformer, AdamW 1e-3, a 50-step warm-up) got the ERROR
    "cannot fit a single batch ... learning rates tried: 0.001, 0.01": its "0.001" try trained at
    the warm-up's 2e-5 and only the 10x try moved. The first try now trains at the 1e-3 it is
    labelled with, and this MLP fits its batch there (Adam 1e-2), at the first try."""
    torch.set_num_threads(1)
    ctx = PreflightContext(_warmed_up_mlp(1e-3))
    assert ctx.trainable.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-5)
    runs = OverfitBatch().runs(ctx)
    assert runs[0].lr == pytest.approx(1e-2)
    assert [r.achieved for r in runs] == [True], [(r.lr, r.initial, r.best) for r in runs]
    findings = list(OverfitBatch().preflight(ctx))
    assert not [f for f in findings if f.severity >= Severity.WARNING], [f.message for f in findings]
    # the user's optimizer keeps its warm-up: only the probe's copy trains at the configured rate
    assert ctx.trainable.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-5)
