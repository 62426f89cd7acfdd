"""Pre-flight checks on small real torch models trained on digits: clean models pass every check
silently, and each bug is caught by its own check id."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from torch import nn
from torch.nn import functional as F

from mlcheck.checks.layers import FrozenParameters
from mlcheck.checks.learning_rate import LRTooHigh, LRTooLow
from mlcheck.checks.preflight import (
    BatchDependence,
    InputIndependence,
    LossAtInit,
    OutputLossMismatch,
    OverfitBatch,
    UnusedParameters,
)
from mlcheck.findings import Severity
from mlcheck.integrations.torch import TorchTrainable
from mlcheck.preflight_context import Budget, PreflightContext

# Two cores are shared by many test processes; torch's default thread pool makes tiny models
# 40x slower under contention.
torch.set_num_threads(1)


def all_checks():
    return [
        OverfitBatch(),
        LossAtInit(),
        InputIndependence(),
        BatchDependence(),
        UnusedParameters(),
        OutputLossMismatch(),
        LRTooHigh(),
        LRTooLow(),
        FrozenParameters(),
    ]


def run_checks(trainable, checks=None):
    ctx = PreflightContext(trainable, Budget(seconds=120))
    found = []
    for check in checks or all_checks():
        ctx.budget = ctx.budget.restart()
        found += list(check.preflight(ctx))
    return found


def loud(findings):
    return [f for f in findings if f.severity >= Severity.WARNING]


def ids(findings):
    return {f.check for f in loud(findings)}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))  # shuffled, as a DataLoader would
    return (X[order] / 16.0).astype(np.float32), y[order]


def mlp(out=10, *tail):
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, out), *tail)


def digits_target(model, digits, loss=None, optimizer=None):
    return TorchTrainable(model, loss or nn.CrossEntropyLoss(), optimizer, digits)


# -- clean models: no WARNING or ERROR from any check --------------------------------------


class BatchNormNet(nn.Module):
    """BatchNorm left in train mode and dropout: batch-dependence must stay silent."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "sgd_plain", "batchnorm", "log_softmax_nll"])
def test_clean_classifiers_pass_every_check(digits, name):
    torch.manual_seed(0)
    if name == "adam":
        model = mlp()
        t = digits_target(model, digits, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3))
    elif name == "sgd_momentum":
        model = mlp()
        t = digits_target(model, digits, optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    elif name == "sgd_plain":  # slow but legitimate: overfit-batch retries at 10x, lr-too-low waits
        model = mlp()
        t = digits_target(model, digits, optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    elif name == "batchnorm":
        t = digits_target(BatchNormNet().train(), digits)
    else:
        t = digits_target(mlp(10, nn.LogSoftmax(dim=1)), digits, loss=nn.NLLLoss())
    found = run_checks(t)
    assert loud(found) == [], [f.format() for f in found]


def test_clean_binary_and_regression_pass(digits):
    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    torch.manual_seed(0)
    binary = TorchTrainable(
        nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1)),
        nn.BCEWithLogitsLoss(),
        None,
        (X, y.astype(np.float32)[:, None]),
    )
    assert binary.loss_config().loss == "bce_with_logits"
    assert loud(run_checks(binary)) == []

    rng = np.random.default_rng(1)
    Xr = rng.normal(size=(512, 8)).astype(np.float32)
    yr = (Xr @ rng.normal(size=8) + np.sin(Xr[:, 0])).astype(np.float32)[:, None]
    torch.manual_seed(0)
    regression = TorchTrainable(
        nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1)), nn.MSELoss(), None, (Xr, yr)
    )
    assert regression.loss_config().task == "regression"
    assert loud(run_checks(regression)) == []


# -- one bug per check ----------------------------------------------------------------------


class IgnoresInput(nn.Module):
    """Returns a learned bias whatever the input."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return self.bias.expand(len(x), 10)


class ViewBug(nn.Module):
    """`view` where a transpose was meant: features of different samples get mixed."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.view(64, len(x)).t())


class UnusedLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.extra, self.b = nn.Linear(64, 32), nn.Linear(32, 32), nn.Linear(32, 10)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


class DetachedLayer(nn.Module):
    """The first layer is cut off from the loss by a stray detach (frozen by mistake)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        return self.b(F.relu(self.a(x)).detach())


def test_softmax_into_cross_entropy(digits):
    torch.manual_seed(0)
    t = digits_target(mlp(10, nn.Softmax(dim=1)), digits)
    found = run_checks(t, [OutputLossMismatch()])
    assert [f.check for f in found] == ["output-loss-mismatch"]
    assert found[0].severity == Severity.WARNING and "softmax" in found[0].message
    assert found[0].hint


def test_functional_softmax_is_seen_from_the_values(digits):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            return torch.softmax(self.fc(x), dim=1)

    t = digits_target(Net(), digits, loss=lambda out, y: F.cross_entropy(out, y))
    cfg = t.loss_config()
    assert (cfg.loss, cfg.output_activation, cfg.from_logits) == ("cross_entropy", "softmax", True)
    assert ids(run_checks(t, [OutputLossMismatch()])) == {"output-loss-mismatch"}


def test_one_unit_softmax(digits):
    X, y = digits
    torch.manual_seed(0)
    t = TorchTrainable(mlp(1, nn.Softmax(dim=1)), nn.BCELoss(), None, (X, (y % 2).astype(np.float32)[:, None]))
    found = run_checks(t, [OutputLossMismatch()])
    assert [(f.check, f.severity) for f in found] == [("output-loss-mismatch", Severity.ERROR)]
    assert "single unit" in found[0].message


def test_labels_outside_the_output_range(digits):
    torch.manual_seed(0)
    t = digits_target(mlp(5), digits)
    (finding,) = run_checks(t, [OutputLossMismatch()])
    assert finding.check == "output-loss-mismatch" and finding.severity == Severity.ERROR
    assert finding.evidence["label_max"] == 9 and finding.evidence["output_units"] == 5


def test_sigmoid_output_with_multiclass_labels(digits):
    X, y = digits
    torch.manual_seed(0)
    t = TorchTrainable(mlp(1), nn.BCEWithLogitsLoss(), None, (X, y.astype(np.float32)[:, None]))
    (finding,) = run_checks(t, [OutputLossMismatch()])
    assert finding.severity == Severity.ERROR and "multi-class" in finding.message


def test_probabilities_into_nll(digits):
    torch.manual_seed(0)
    t = digits_target(mlp(10, nn.Softmax(dim=1)), digits, loss=nn.NLLLoss())
    found = run_checks(t, [OutputLossMismatch()])
    assert ids(found) == {"output-loss-mismatch"} and "log-probabilities" in found[0].message


def test_model_ignoring_its_input(digits):
    torch.manual_seed(0)
    found = run_checks(digits_target(IgnoresInput(), digits), [InputIndependence()])
    assert ids(found) == {"input-independence"}


def test_input_independence_by_training_on_zeros(digits):
    """The input is scaled away (e.g. divided by 255 once too often, here 1e6): outputs still
    differ a little at init, so the trained comparison with zeroed inputs must catch it."""

    class ScaledAway(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(x * 1e-6)

    torch.manual_seed(0)
    found = run_checks(digits_target(ScaledAway(), digits), [InputIndependence()])
    assert ids(found) == {"input-independence"}
    assert found[0].key == "zeroed"
    assert found[0].evidence["real_input_loss"] >= 0.95 * found[0].evidence["zero_input_loss"]


def test_samples_mixed_by_a_view(digits):
    torch.manual_seed(0)
    found = run_checks(digits_target(ViewBug(), digits), [BatchDependence()])
    assert ids(found) == {"batch-dependence"}
    assert found[0].evidence["other_samples_involved"] > 0


def test_softmax_over_the_batch_axis(digits):
    torch.manual_seed(0)
    t = digits_target(mlp(10, nn.LogSoftmax(dim=0)), digits, loss=nn.NLLLoss())
    assert ids(run_checks(t, [BatchDependence()])) == {"batch-dependence"}


def test_unused_and_detached_layers(digits):
    torch.manual_seed(0)
    (unused,) = run_checks(digits_target(UnusedLayer(), digits), [UnusedParameters()])
    assert unused.check == "unused-parameters"
    assert unused.evidence["parameters"] == ["extra.weight", "extra.bias"]
    (detached,) = run_checks(digits_target(DetachedLayer(), digits), [UnusedParameters()])
    assert detached.evidence["parameters"] == ["a.weight", "a.bias"]


def test_layer_missing_from_the_optimizer(digits):
    torch.manual_seed(0)
    model = mlp()
    t = digits_target(model, digits, optimizer=torch.optim.Adam(model[2].parameters(), lr=1e-3))
    (finding,) = run_checks(t, [UnusedParameters()])
    assert finding.key == "not-in-optimizer" and finding.evidence["parameters"] == ["0.weight", "0.bias"]


def test_frozen_model_cannot_overfit(digits):
    torch.manual_seed(0)
    model = mlp().requires_grad_(False)  # e.g. a backbone frozen and never unfrozen
    t = digits_target(model, digits, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3))
    found = run_checks(t, [OverfitBatch()])
    assert [(f.check, f.severity) for f in found] == [("overfit-batch", Severity.ERROR)]
    # said without training a copy: no parameter can move (batch 16's model.trainable = False)
    assert found[0].key == "nothing-trainable" and found[0].evidence == {"trainable_parameters": 0}


def test_model_ignoring_input_cannot_overfit(digits):
    torch.manual_seed(0)
    found = run_checks(digits_target(IgnoresInput(), digits), [OverfitBatch()])
    assert ids(found) == {"overfit-batch"}


def test_overfit_batch_regression_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    y = (X @ rng.normal(size=5)).astype(np.float32)[:, None]
    torch.manual_seed(0)
    fine = TorchTrainable(nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1)), nn.MSELoss(), None, (X, y))
    assert run_checks(fine, [OverfitBatch()]) == []
    # Only the mean can be learned: the regression cannot be fitted.
    frozen = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    frozen[0].requires_grad_(False)
    frozen[2].weight.requires_grad_(False)
    broken = TorchTrainable(frozen, nn.MSELoss(), torch.optim.Adam(frozen[2].parameters(), lr=1e-2), (X, y))
    assert ids(run_checks(broken, [OverfitBatch()])) == {"overfit-batch"}


def test_learning_rate_far_too_high(digits):
    torch.manual_seed(0)
    model = mlp()
    t = digits_target(model, digits, optimizer=torch.optim.SGD(model.parameters(), lr=10.0))
    found = run_checks(t, [LRTooHigh(), LRTooLow()])
    assert [f.check for f in loud(found)] == ["lr-too-high"]
    assert found[0].evidence["lr"] == 10.0


def test_learning_rate_far_too_low(digits):
    torch.manual_seed(0)
    model = mlp()
    t = digits_target(model, digits, optimizer=torch.optim.SGD(model.parameters(), lr=1e-6))
    found = run_checks(t, [LRTooHigh(), LRTooLow()])
    assert [f.check for f in loud(found)] == ["lr-too-low"]
    assert found[0].evidence["suggested_lr"] > 1e-3


def test_range_test_is_shared_between_the_lr_checks(digits):
    torch.manual_seed(0)
    t = digits_target(mlp(), digits)
    ctx = PreflightContext(t)
    list(LRTooHigh().preflight(ctx))
    sweep = ctx.cache["lr-range-test"]
    list(LRTooLow().preflight(ctx))
    assert ctx.cache["lr-range-test"] is sweep and sweep.suggestion is not None


@pytest.mark.parametrize("scaled", ["times_100", "sum_reduction"])
def test_loss_far_above_its_expected_start(digits, scaled):
    torch.manual_seed(0)
    loss = (
        (lambda out, y: 100 * F.cross_entropy(out, y))
        if scaled == "times_100"
        else nn.CrossEntropyLoss(reduction="sum")
    )
    t = digits_target(mlp(), digits, loss=loss)
    (finding,) = run_checks(t, [LossAtInit()])
    assert finding.check == "loss-at-init" and finding.evidence["expected"] == pytest.approx(np.log(10))
    assert finding.evidence["ratio"] > 20
    if scaled == "sum_reduction":
        # proven a sum (a batch's loss is its halves' sum): INFO, as live; a rate tuned for a mean
        # is what warns (lr-too-high's range test: tests/sanity/test_summed_loss_sanity.py)
        assert finding.key == "summed" and finding.severity == Severity.INFO
        assert "reduction='mean'" in finding.hint
    else:
        assert finding.severity == Severity.WARNING


def test_unscaled_inputs_near_batch_size_times_the_loss_are_not_called_a_summed_loss(digits):
    # inputs never standardised (0-360) start near 32x log(10): close to the batch size (32)
    # by coincidence; the loss is a mean, and the hint must not say otherwise
    x, y = digits
    torch.manual_seed(0)
    t = digits_target(mlp(), (x * 360, y))
    (finding,) = run_checks(t, [LossAtInit()])
    assert abs(finding.evidence["ratio"] / 32 - 1) < 0.25
    assert "reduction='sum'" not in finding.hint and "normalise inputs" in finding.hint


def test_loss_at_init_for_regression_uses_the_targets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 4)).astype(np.float32)
    y = (X.sum(1, keepdims=True)).astype(np.float32)
    torch.manual_seed(0)
    ok = TorchTrainable(nn.Linear(4, 1), nn.MSELoss(), None, (X, y))
    assert run_checks(ok, [LossAtInit()]) == []
    big = nn.Linear(4, 1)
    with torch.no_grad():
        big.weight.mul_(100)  # a badly scaled initialisation
    (finding,) = run_checks(TorchTrainable(big, nn.MSELoss(), None, (X, y)), [LossAtInit()])
    assert finding.check == "loss-at-init"


def test_wall_clock_expiry_is_inconclusive_not_a_warning(digits):
    torch.manual_seed(0)
    model = mlp().requires_grad_(False)  # would be an ERROR given the steps
    model[-1].bias.requires_grad_(True)  # the output bias alone learns (none at all is said untrained)
    t = digits_target(model, digits, optimizer=torch.optim.Adam(model.parameters()))
    ctx = PreflightContext(t, Budget(seconds=1e-9))  # expired at once (0 is rejected)
    found = list(OverfitBatch().preflight(ctx)) + list(InputIndependence().preflight(ctx))
    assert found and all(f.severity == Severity.INFO for f in found)
    assert "inconclusive" in found[0].message and ctx.budget.cut_short


def test_steps_bound_the_work(digits):
    torch.manual_seed(0)
    model = mlp().requires_grad_(False)
    model[-1].bias.requires_grad_(True)  # the output bias alone learns: it cannot fit the batch
    t = digits_target(model, digits, optimizer=torch.optim.Adam(model.parameters()))
    ctx = PreflightContext(t, Budget(steps=30, seconds=120))
    check = OverfitBatch()  # steps from the budget
    (finding,) = check.preflight(ctx)
    assert finding.evidence["steps"] == 30
    # a third at the configured rate, then 10x; both stalled, so the configured rate again for
    # the full steps (the runs listed: that full try, then 10x)
    assert [r.steps for r in check.runs(ctx)] == [30, 30]
    assert finding.evidence["lrs_tried"] == [1e-3, 1e-2]
    explicit = OverfitBatch(steps=12)
    list(explicit.preflight(ctx))
    assert [r.steps for r in explicit.runs(ctx)] == [12, 12]
    sweep_ctx = PreflightContext(t, Budget(steps=40, seconds=120))
    list(LRTooLow().preflight(sweep_ctx))
    assert len(sweep_ctx.cache["lr-range-test"].lrs) <= 40


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class BagOfTokens(nn.Module):
    """Integer token ids into an embedding (batch-dependence cannot take input gradients)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(17, 16)
        self.fc = nn.Linear(16, 10)

    def forward(self, ids):
        return self.fc(self.embed(ids).mean(1))


def test_clean_cnn_and_embedding_models_pass(digits):
    X, y = digits
    torch.manual_seed(0)
    cnn = TorchTrainable(TinyCNN(), nn.CrossEntropyLoss(), None, (X.reshape(-1, 1, 8, 8), y))
    assert loud(run_checks(cnn)) == []
    torch.manual_seed(0)
    tokens = (X * 16).astype(np.int64)  # pixel intensities 0..16 as token ids
    bag = TorchTrainable(BagOfTokens(), nn.CrossEntropyLoss(), None, (tokens, y))
    found = run_checks(bag)
    assert loud(found) == []
    assert any(f.check == "batch-dependence" and f.severity == Severity.INFO for f in found)


def test_lr_too_low_threshold_from_pyproject_changes_the_preflight_verdict(digits, tmp_path):
    """`[tool.mlcheck.checks.lr-too-low]` tunes the pre-flight verdict: at 1e-6 the rate is
    ~1e4x below the range test's suggestion, so a suggestion_ratio of 1e9 keeps it silent."""
    from mlcheck.config import build_checks, load_config

    (tmp_path / "pyproject.toml").write_text(
        "[tool.mlcheck.checks.lr-too-low]\nsuggestion_ratio = 1e9\n", encoding="utf-8"
    )
    (tuned,) = build_checks(["lr-too-low"], config=load_config(tmp_path / "pyproject.toml"))
    assert tuned.suggestion_ratio == 1e9

    def verdict(check):
        torch.manual_seed(0)
        model = mlp()
        t = digits_target(model, digits, optimizer=torch.optim.SGD(model.parameters(), lr=1e-6))
        return ids(run_checks(t, [check]))

    assert verdict(LRTooLow()) == {"lr-too-low"}
    assert verdict(tuned) == set()


def test_regression_output_broadcast_against_flat_targets():
    """(N, 1) outputs against (N,) targets in MSELoss broadcast to N x N: finite but wrong."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    y = (X @ rng.normal(size=5)).astype(np.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    with pytest.warns(UserWarning, match="target size"):  # torch's own hint, easy to miss in a log
        (finding,) = run_checks(TorchTrainable(model, nn.MSELoss(), None, (X, y)), [OutputLossMismatch()])
    assert finding.check == "output-loss-mismatch" and finding.key == "broadcast"
    assert finding.evidence["output_shape"][1:] == [1] and len(finding.evidence["target_shape"]) == 1
    # the same model with matching shapes, and an MAE loss on matching shapes: silent
    assert run_checks(TorchTrainable(model, nn.MSELoss(), None, (X, y[:, None])), [OutputLossMismatch()]) == []
    assert run_checks(TorchTrainable(model, nn.L1Loss(), None, (X, y[:, None])), [OutputLossMismatch()]) == []


def test_a_relu_regression_head_warns_only_when_the_unreachable_targets_cost_variance():
    """Standardised targets under a ReLU head: a third of their variance lies below 0 and no
    weights reach it. Targets at 0..3 with a few at -0.01 (noise around the bound): clipping
    costs < 0.01% of their variance, silent."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1), nn.ReLU())
    standardised = (X @ rng.normal(size=5)).astype(np.float32)[:, None]
    standardised = (standardised - standardised.mean()) / standardised.std()
    found = run_checks(TorchTrainable(model, nn.MSELoss(), None, (X, standardised)), [OutputLossMismatch()])
    (finding,) = [f for f in found if f.key == "target-range"]
    assert 0.2 < finding.evidence["variance_unreachable"] < 0.5
    near_bound = rng.uniform(0, 3, size=(64, 1)).astype(np.float32)
    near_bound[:3] = -0.01
    found = run_checks(TorchTrainable(model, nn.MSELoss(), None, (X, near_bound)), [OutputLossMismatch()])
    assert [f for f in found if f.key == "target-range"] == []


def test_two_classes_encoded_as_0_and_255_are_named_as_such(digits):
    """A 0/255 mask into a binary loss is two classes badly encoded, not 256 classes: the
    finding says so and asks for 0/1 labels, not 256 output units."""
    X, y = digits
    torch.manual_seed(0)
    mask = np.where(y == 0, 255, 0).astype(np.float32)[:, None]
    t = TorchTrainable(mlp(1), nn.BCEWithLogitsLoss(), None, (X, mask))
    (finding,) = run_checks(t, [OutputLossMismatch()])
    assert finding.severity == Severity.ERROR and "are 0 and 255, not 0 and 1" in finding.message
    assert "multi-class" not in finding.message and "256 output units" not in finding.hint
    assert "y / 255" in finding.hint


@pytest.mark.parametrize("lr", [30.0, 100.0])
def test_overfit_batch_retries_a_rising_loss_at_a_smaller_rate(digits, lr):
    """SGD far too fast sends the loss up and keeps it there, so its best is its start: that
    rose, it did not barely move, and the second try is at 1/10, not 10x, the rate. At 1/10
    the network, its units lost to the first steps, stalls at the label prior's loss (1.78),
    so a third try goes to 1/100, which fits the batch: the wiring is fine, the rate is not,
    said with the rate that fitted."""
    torch.manual_seed(0)
    model = mlp()
    t = digits_target(model, digits, optimizer=torch.optim.SGD(model.parameters(), lr=lr))
    ctx = PreflightContext(t, Budget(seconds=120))
    check = OverfitBatch()
    (finding,) = check.preflight(ctx)
    runs = check.runs(ctx)
    assert [r.lr for r in runs] == [lr, lr / 10, lr / 100]
    assert [r.achieved for r in runs] == [False, False, True]
    assert finding.key == "lr-too-high" and finding.severity == Severity.WARNING
    assert f"a hundredth of the learning rate ({lr / 100:.3g})" in finding.message
    assert f"not at the configured {lr:.3g}, where its loss went up from" in finding.message
    assert finding.hint.startswith(f"Lower the learning rate (try {lr / 100:.3g})")
    # a third try costs at most the steps of the second; here it stops at success, within 40
    assert runs[2].steps <= 40


@pytest.mark.parametrize("lr", [300.0, 1000.0])
def test_overfit_batch_that_fails_after_a_rising_loss_names_the_rate_first(digits, lr):
    """When the loss rose at the configured rate and no lower try fits the batch (SGD at 300:
    300 and 30 rise, 3 stalls at the label prior's loss; at 1000: 1000 and 100 rise, 10
    stalls), the rate far too high is the cause the hint names first, with the next rate to
    try, and the wiring bug second."""
    torch.manual_seed(0)
    model = mlp()
    t = digits_target(model, digits, optimizer=torch.optim.SGD(model.parameters(), lr=lr))
    (finding,) = OverfitBatch().preflight(PreflightContext(t, Budget(seconds=120)))
    assert finding.evidence["lrs_tried"] == [lr, lr / 10, lr / 100]
    assert finding.severity == Severity.ERROR
    assert finding.hint.startswith(f"The loss rose at learning rate {lr:.3g} and {lr / 10:.3g}: ")
    assert "a rate far too high is the likelier cause" in finding.hint
    assert f"Try {lr / 1000:.3g} or lower" in finding.hint
    assert finding.hint.index("far too high") < finding.hint.index("wiring bug")


def test_overfit_batch_says_a_loss_that_ends_higher_rose(digits):
    """SGD at 3000: every try (3000, 300, 30) ends above its start, the closest one too."""
    torch.manual_seed(0)
    model = mlp()
    t = digits_target(model, digits, optimizer=torch.optim.SGD(model.parameters(), lr=3000.0))
    (finding,) = OverfitBatch().preflight(PreflightContext(t, Budget(seconds=120)))
    assert finding.evidence["final_loss"] > finding.evidence["initial_loss"]
    assert "the loss rose from" in finding.message and "only went" not in finding.message


def test_class_indices_broadcast_against_a_k_unit_output(digits):
    """Digits' labels as a (N, 1) column under MSELoss with a 10-unit output broadcast to
    N x 10: each unit regresses the class index. Cross-entropy on the same labels, MSE on their
    one-hot (N, 10) form and a 10-output regression on real-valued (N, 1) targets stay silent."""
    X, y = digits
    torch.manual_seed(0)
    model = mlp()
    column = y.astype(np.float32)[:, None]
    with pytest.warns(UserWarning, match="target size"):
        found = run_checks(TorchTrainable(model, nn.MSELoss(), None, (X, column)), [OutputLossMismatch()])
    assert [(f.key, f.severity) for f in found] == [("class-indices-broadcast", Severity.ERROR)]
    assert found[0].evidence["classes_seen"] >= 2 and found[0].evidence["error"] == "squared"
    assert run_checks(TorchTrainable(model, nn.CrossEntropyLoss(), None, (X, y)), [OutputLossMismatch()]) == []
    one_hot = np.eye(10, dtype=np.float32)[y]
    assert run_checks(TorchTrainable(model, nn.MSELoss(), None, (X, one_hot)), [OutputLossMismatch()]) == []
    fractions = column + np.float32(0.5)  # not whole numbers: not class indices
    with pytest.warns(UserWarning, match="target size"):
        assert run_checks(TorchTrainable(model, nn.MSELoss(), None, (X, fractions)), [OutputLossMismatch()]) == []


def test_a_cut_names_a_busy_machine(digits, monkeypatch):
    # the wall-clock net depends on the machine, not the model: where the load average exceeds
    # the cores when it cuts in, the INFO says the machine was busy and to rerun when it is not
    # (os.getloadavg is the system's number, set here; the training is real)
    torch.manual_seed(0)
    model = mlp()
    t = digits_target(model, digits, optimizer=torch.optim.Adam(model.parameters()))
    monkeypatch.setattr(os, "getloadavg", lambda: (9.5, 9.0, 8.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    ctx = PreflightContext(t, Budget(steps=100, seconds=1e-9, max_seconds=1e-9))
    (finding,) = OverfitBatch().preflight(ctx)
    assert finding.severity == Severity.INFO and ctx.budget.cut_short
    assert ctx.budget.steps_taken == 0  # past its hard limit at once: no step taken, none claimed
    assert "budget done" not in finding.message
    assert "the machine was busy (load average 9.5 on 2 CPU cores)" in finding.message, finding.message
    assert finding.hint.startswith("Rerun when the machine is less busy")
    assert finding.evidence["load_average"] == 9.5 and finding.evidence["cpu_count"] == 2

    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    ctx = PreflightContext(t, Budget(steps=100, seconds=1e-9, max_seconds=1e-9))
    (finding,) = OverfitBatch().preflight(ctx)
    assert "busy" not in finding.message and finding.hint.startswith("Give the check more time")
