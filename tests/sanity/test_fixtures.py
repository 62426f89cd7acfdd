"""The model.py fixtures: clean targets pass with no warning, each buggy one fails with its
check's id. A representative set goes through the real command; the rest through
`mlcheck.sanity()` with only the check under test selected, to keep the suite fast."""

import copy
import json
import random
import subprocess
import sys

import numpy as np
import pytest

from mlcheck import Severity
from mlcheck.sanity import Budget, sanity
from mlcheck.sanity.import_guard import import_model_file

# fixture -> (check id, the severity it must reach at least)
BUGGY = {
    "buggy_loss_at_init": ("loss-at-init", Severity.WARNING),
    "buggy_overfit_batch": ("overfit-batch", Severity.ERROR),
    "buggy_input_independence": ("input-independence", Severity.WARNING),
    "buggy_batch_dependence": ("batch-dependence", Severity.WARNING),
    "buggy_unused_parameters": ("unused-parameters", Severity.WARNING),
    "buggy_lightning_unused": ("unused-parameters", Severity.WARNING),
    "buggy_output_loss_mismatch": ("output-loss-mismatch", Severity.WARNING),
    "buggy_keras_softmax_from_logits": ("output-loss-mismatch", Severity.WARNING),
    "buggy_lr_too_high": ("lr-too-high", Severity.WARNING),
    "buggy_lr_too_low": ("lr-too-low", Severity.WARNING),
    "buggy_nonfinite_input": ("nonfinite-input", Severity.ERROR),
    "buggy_unnormalized_input": ("unnormalized-input", Severity.WARNING),
    "buggy_train_val_overlap": ("train-val-overlap", Severity.ERROR),
    "buggy_feature_leakage": ("feature-leakage", Severity.ERROR),
    "buggy_unshuffled_data": ("unshuffled-data", Severity.WARNING),
    "buggy_frozen_parameters": ("frozen-parameters", Severity.WARNING),
    "buggy_keras_frozen_layer": ("frozen-parameters", Severity.WARNING),
    # 1:50 is worth a look, not a mistake in itself (the check warns from 1:100)
    "buggy_class_imbalance": ("class-imbalance", Severity.INFO),
    "buggy_unscaled_targets": ("unnormalized-input", Severity.WARNING),
    # class ids or ordinal scores look alike from the labels: worth a look (a WARNING needs a
    # logged accuracy, which only a live run has)
    "buggy_class_indices": ("output-loss-mismatch", Severity.INFO),
}
THROUGH_CLI = {"buggy_nonfinite_input", "buggy_output_loss_mismatch"}
# Steps decide verdicts; the wall-clock safety net is widened so that a loaded test machine
# cannot turn a verdict into "inconclusive".
GENEROUS = Budget(seconds=300)


def cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", *map(str, args), "--budget-seconds", "300"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("name", sorted(set(BUGGY) - THROUGH_CLI))
def test_buggy_target_is_caught_by_its_check(fixtures, name):
    check_id, severity = BUGGY[name]
    from mlcheck.checks import get_check

    if not (get_check(check_id).implements("preflight") or get_check(check_id).implements("on_batch")):
        pytest.skip(f"{check_id} has no pre-flight part yet (the learning-rate range test)")
    result = sanity(fixtures / f"{name}.py", select=[check_id], budget=GENEROUS)
    ids = {f.check for f in result.at_or_above(severity)}
    assert check_id in ids, [f.format() for f in result.findings] + [str(c) for c in result.checks]


def test_buggy_overfit_batch_gives_the_same_numbers_every_run(fixtures):
    """The fixture seeds its model: two runs (each imports the file afresh) train the same
    weights, so the finding's losses are equal, not one draw of the initialisation."""
    runs = [sanity(fixtures / "buggy_overfit_batch.py", select=["overfit-batch"], budget=GENEROUS) for _ in range(2)]
    evidence = [[f.evidence for f in r.findings if f.check == "overfit-batch"] for r in runs]
    assert evidence[0] and evidence[0] == evidence[1]


def test_buggy_targets_through_the_command(fixtures):
    proc = cli(fixtures / "buggy_nonfinite_input.py", "--json", "--select", "nonfinite-input,unused-parameters")
    assert proc.returncode == 1, proc.stderr  # an error: fails at the default --fail-on error
    payload = json.loads(proc.stdout)
    assert [f["check"] for f in payload["findings"]] == ["nonfinite-input"]
    assert payload["findings"][0]["severity"] == "error"
    assert {c["check"] for c in payload["checks"]} == {"nonfinite-input", "unused-parameters"}

    # the table, and a warning failing only from --fail-on warning
    path = fixtures / "buggy_output_loss_mismatch.py"
    proc = cli(path, "--select", "output-loss-mismatch", "--fail-on", "warning")
    assert proc.returncode == 1, proc.stderr
    table = " ".join(proc.stdout.split())
    assert "output-loss-mismatch" in table and "warning" in table and "Fix:" in table
    assert "0 error(s), 1 warning(s)" in table


def test_clean_torch_target_passes_the_command(fixtures):
    proc = cli(fixtures / "torch_clean.py", "--json", "--fail-on", "warning")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["target"] == "torch_clean.py:model"
    assert not [f for f in payload["findings"] if f["severity"] != "info"]
    assert not payload["failed"]
    assert len(payload["checks"]) >= 12


@pytest.mark.parametrize("name", ["lightning_clean", "keras_clean", "keras_frozen_backbone"])
def test_clean_targets_raise_no_warning(fixtures, name):
    result = sanity(fixtures / f"{name}.py")
    assert not result.at_or_above("warning"), [f.format() for f in result.findings]
    assert not result.failed
    assert result.framework == name.split("_")[0]


def _snapshot_torch(model, optimizer):
    import torch

    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        copy.deepcopy(optimizer.state_dict()),
        torch.get_rng_state(),
        np.random.get_state()[1].copy(),
        random.getstate(),
        model.training,
    )


def _same(a, b):
    import torch

    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_the_users_model_optimizer_and_random_state_are_unchanged(fixtures):
    module, _ = import_model_file(fixtures / "torch_clean.py")
    model, optimizer, loss_fn = module.model, module.optimizer, module.loss_fn
    for xb, yb in list(module.train_loader)[:3]:  # give Adam some state to keep
        optimizer.zero_grad()
        loss_fn(model(xb), yb).backward()
        optimizer.step()
    before = _snapshot_torch(model, optimizer)
    target = {
        "model": model,
        "loss": loss_fn,
        "optimizer": optimizer,
        "train_data": module.train_loader,
        "val_data": module.val_loader,
    }
    sanity(target)
    assert _same(before, _snapshot_torch(model, optimizer))


def test_keras_model_is_unchanged(fixtures):
    module, _ = import_model_file(fixtures / "keras_clean.py")
    weights = [w.copy() for w in module.model.get_weights()]
    optimizer_vars = [np.array(v) for v in module.model.optimizer.variables]
    sanity(
        {"model": module.model, "train_data": (module.x_train, module.y_train)},
        select=["overfit-batch", "unused-parameters", "nonfinite-input"],
    )  # trains clones
    assert all(np.array_equal(a, b) for a, b in zip(weights, module.model.get_weights()))
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(optimizer_vars, module.model.optimizer.variables))


def test_inputs_the_model_rescales_itself_are_not_unnormalized(fixtures):
    import keras

    from digits_data import digits

    x_train, y_train, x_val, y_val = digits(scaled=False)
    raw = (x_train * 16).round()  # 0..256 pixel values
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Dense(10),
        ]
    )
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    result = sanity({"model": model, "train_data": (raw, y_train)}, select=["unnormalized-input"])
    assert not result.findings, [f.format() for f in result.findings]
    # the same pixels without the Rescaling layer are raw
    plain = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    plain.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    result = sanity({"model": plain, "train_data": (raw, y_train)}, select=["unnormalized-input"])
    assert "unnormalized-input" in {f.check for f in result.findings}


def test_token_ids_into_an_embedding_are_not_unnormalized():
    import torch
    from torch import nn

    torch.manual_seed(0)
    ids = torch.randint(0, 5000, (256, 12))
    y = torch.randint(0, 2, (256,))
    model = nn.Sequential(nn.Embedding(5000, 8), nn.Flatten(), nn.Linear(96, 2))
    target = {
        "model": model,
        "train_data": (ids, y),
        "loss": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.Adam(model.parameters()),
    }
    result = sanity(target, select=["unnormalized-input"])
    assert not result.findings, [f.format() for f in result.findings]


def test_a_frozen_middle_layer_fails_the_command_naming_it(fixtures):
    proc = cli(fixtures / "buggy_frozen_parameters.py", "--json", "--fail-on", "warning")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    loud = [f for f in json.loads(proc.stdout)["findings"] if f["severity"] != "info"]
    assert [f["check"] for f in loud] == ["frozen-parameters"], loud
    assert loud[0]["evidence"]["layer"] == "2" and "Layer 2 (Linear) never learns" in loud[0]["message"]
    assert "requires_grad_(True)" in loud[0]["hint"] and "suppress" in loud[0]["hint"]
    # frozen on purpose: suppressed, as the hint says
    proc = cli(fixtures / "buggy_frozen_parameters.py", "--fail-on", "warning", "--suppress", "frozen-parameters")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_frozen_pretrained_backbone_passes_the_command(fixtures):
    proc = cli(fixtures / "torch_frozen_backbone.py", "--json", "--fail-on", "warning")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    payload = json.loads(proc.stdout)
    assert "frozen-parameters" in {c["check"] for c in payload["checks"]}
    assert not [f for f in payload["findings"] if f["severity"] != "info"]
