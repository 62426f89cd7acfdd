"""`nonfinite-origin` under Keras (torch backend): a real `model.fit` whose custom layer computes
log(0), sqrt of a negative or a division by zero from a late step on names that layer, by its
Keras name, at that step; so does one whose layer makes a NaN gradient only (backward pass); the
re-run of the batch leaves the model's state as it was."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

from mlcheck.checks.base import default_checks, registry
from mlcheck.integrations.keras import MLCheckCallback

pytestmark = pytest.mark.filterwarnings("ignore")

LAYER_IDS = (
    "vanishing-gradient",
    "exploding-gradient",
    "dead-units",
    "saturated-activations",
    "frozen-parameters",
    "nonfinite-origin",
)
LATE = 30  # the custom layer turns bad after this many training calls


class BadOpAt(keras.layers.Layer):
    """Computes `op` on its input from training call `at` on (before: the identity). Not
    registered for serialisation and holding a Python counter: a copy made from its config
    would neither build nor remember the step."""

    def __init__(self, op: str, at: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.op = op
        self.at = at
        self.calls = 0

    def call(self, x, training=None):
        if training:
            self.calls += 1
        if not training or self.calls <= self.at:
            return x
        if self.op == "log":
            return keras.ops.log(keras.ops.relu(x))  # log(0) = -inf on inactive units
        if self.op == "sqrt":
            return keras.ops.sqrt(x)  # NaN on negative inputs
        if self.op == "distance":  # each row's distance to itself is sqrt(0): finite, NaN gradient
            diff = keras.ops.expand_dims(x, 0) - keras.ops.expand_dims(x, 1)
            return x + keras.ops.mean(keras.ops.sqrt(keras.ops.sum(diff**2, -1)), 1, keepdims=True)
        return x / keras.ops.zeros_like(x[:, :1])  # division by zero: +-inf


def _data():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16).astype(np.float32)[:640], y[order].astype(np.int64)[:640]


def _model(op: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu", name="hidden"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.Dropout(0.1, name="drop"),
            keras.layers.Dense(32, name="pre"),
            BadOpAt(op, LATE, name="bad"),
            keras.layers.Dense(10, name="out"),
        ]
    )
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


@pytest.mark.parametrize(("op", "value"), [("log", "-inf"), ("sqrt", "nan"), ("div", "inf")])
def test_keras_fit_names_the_custom_layer_that_produced_the_nonfinite_value(tmp_path, op, value):
    x, y = _data()
    model = _model(op)
    checks = [*default_checks(), *(registry()[i]() for i in LAYER_IDS)]
    cb = MLCheckCallback(checks=checks, every_n_steps=5, overfit_batch=False, log_dir=tmp_path)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    (origin,) = [f for f in cb.findings if f.check == "nonfinite-origin"]
    assert origin.key == "bad" and origin.evidence["layer"] == "bad" and origin.evidence["kind"] == "BadOpAt"
    assert origin.evidence["phase"] == "forward" and origin.evidence["value"] in (value, "nan")
    assert origin.step == LATE  # the first step whose loss was non-finite
    assert origin.evidence["previous_layer"] == "pre"
    assert "by layer bad (BadOpAt) in the forward pass" in origin.message
    # the re-run went through the model itself and put its Python state back: one call per step
    assert model.get_layer("bad").calls == 2 * (640 // 32)
    assert all(not layer._forward_hooks and not layer._backward_hooks for layer in model.layers)


def test_a_nan_born_in_the_backward_pass_is_located_before_the_optimizer_step(tmp_path):
    x, y = _data()
    model = _model("distance")
    checks = [*default_checks(), *(registry()[i]() for i in LAYER_IDS)]
    cb = MLCheckCallback(checks=checks, every_n_steps=5, overfit_batch=False, log_dir=tmp_path)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    (origin,) = [f for f in cb.findings if f.check == "nonfinite-origin"]
    assert (origin.key, origin.step) == ("bad", LATE)  # the loss of that step was still finite
    assert origin.evidence["phase"] == "backward" and origin.evidence["value"] == "nan"
    assert model.get_layer("bad").calls == 2 * (640 // 32)
    assert all(not v.value._post_accumulate_grad_hooks for v in model.trainable_variables)


def test_rerun_leaves_weights_gradients_statistics_and_random_state_as_they_were():
    from mlcheck.integrations.keras.layers import leaf_layers
    from mlcheck.integrations.keras.torch_origin import locate_nonfinite

    x, y = _data()
    model = _model("log")
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0)  # built, optimizer and BN statistics moved
    model.get_layer("bad").calls = LATE  # its next training call is bad
    before = [v.value.detach().clone() for v in model.variables]
    grads = [None if v.value.grad is None else v.value.grad.clone() for v in model.trainable_variables]
    rng = torch.get_rng_state()
    capture: dict = {}
    origin = locate_nonfinite(model, list(leaf_layers(model)), (x[:32], y[:32], None), capture=capture)
    assert origin is not None and origin.path == "bad" and origin.value == "-inf"
    assert capture["output"].shape == (32, 32) and capture["input"].shape == (32, 32)
    assert all(torch.equal(b, v.value) for b, v in zip(before, model.variables))
    for g, v in zip(grads, model.trainable_variables):
        assert (g is None and v.value.grad is None) or torch.equal(g, v.value.grad)
    assert torch.equal(rng, torch.get_rng_state()) and model.get_layer("bad").calls == LATE
    # a layer allowed to produce infinities is passed over: the next one to make a NaN is named
    allowed = locate_nonfinite(model, list(leaf_layers(model)), (x[:32], y[:32], None), allow=["BadOpAt"])
    assert allowed is not None and allowed.path == "out" and allowed.phase == "forward"
    # nothing bad in the batch: a finite re-run names nothing
    model.get_layer("bad").calls = -(10**6)
    assert locate_nonfinite(model, list(leaf_layers(model)), (x[:32], y[:32], None)) is None


def test_nonfinite_origin_breakpoint_writes_the_layer_snapshot(tmp_path):
    x, y = _data()
    cb = MLCheckCallback(every_n_steps=5, overfit_batch=False, log_dir=tmp_path, breakpoints=["nonfinite-origin"])
    _model("log").fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    assert [f.key for f in cb.findings if f.check == "nonfinite-origin"] == ["bad"]  # turned on by the breakpoint
    (path,) = (tmp_path / "mlcheck" / "snapshots").glob("*.npz")
    snap = np.load(path, allow_pickle=False)
    assert path.name == f"step{LATE}-bad.npz" and str(snap["layer"]) == "bad"
    assert snap["input"].shape == (32, 32) and np.isneginf(snap["output"]).any()
    assert snap["batch/0"].shape == (32, 64)


def test_layer_checks_and_nan_watch_leave_training_bitwise_unchanged(tmp_path):
    x, y = _data()
    plain = _model("log")  # turns bad after step 30 of 20 steps: a healthy fit
    plain.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False)
    watched = _model("log")
    checks = [*default_checks(), *(registry()[i]() for i in LAYER_IDS)]
    cb = MLCheckCallback(checks=checks, every_n_steps=5, overfit_batch=False, log_dir=tmp_path, timing=True)
    watched.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False, callbacks=[cb])
    assert cb.monitor.run.layers.total >= 4  # sampled steps were recorded
    assert "nonfinite_origin" in cb.timer.table  # the NaN watch read every step's loss and gradient
    for a, b in zip(plain.variables, watched.variables):
        assert torch.equal(a.value, b.value), a.path


def test_weights_that_overflowed_are_blamed_on_the_step_size_not_the_layer(tmp_path):
    """SGD at 1e37: after one update the weights are ~1e36 and the next step's Dense output
    overflows to NaN. The finding said "Guard the operation in out: clamp before log/sqrt",
    the fix for a log(0) in a custom layer; the layer's operation is fine, its inputs and
    weights grew: lower the learning rate or clip gradients."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.int64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"), keras.layers.Dense(2, name="out")]
    )
    model.compile(keras.optimizers.SGD(1e37), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(overfit_batch=False, log_dir=tmp_path)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    (origin,) = [f for f in cb.findings if f.check == "nonfinite-origin"]
    assert (origin.evidence["layer"], origin.evidence["cause"], origin.step) == ("out", "overflow", 1)
    assert "had grown too large for the float type" in origin.message
    assert origin.hint.startswith("Weights grew until they overflowed (at layer out (Dense)): lower the learning rate")
    assert "clipnorm=1.0" in origin.hint and "clamp before log" not in origin.hint


def test_a_nan_target_is_named_as_the_batch_s_not_as_a_fault_of_the_loss(tmp_path):
    """A NaN in one batch's targets: Keras locates the origin inside the train step, before the
    batch's `nonfinite-input` finding exists, so nothing linked the two and the origin read as a
    separate fault ("produced by code outside any module ... from finite inputs"); it says now
    that the batch of that step already held NaN/Inf."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (x[:, :1] - x[:, 1:2]).astype(np.float32)
    y[32 * 3 + 5, 0] = np.nan  # batch 3 (step 3)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    cb = MLCheckCallback(overfit_batch=False, log_dir=tmp_path)
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0, callbacks=[cb])
    checks = [f.check for f in cb.findings]
    assert checks.index("nonfinite-origin") < checks.index("nonfinite-input")  # no cause to point to yet
    (origin,) = [f for f in cb.findings if f.check == "nonfinite-origin"]
    (data,) = [f for f in cb.findings if f.check == "nonfinite-input"]
    assert origin.step == data.step == 3 and origin.evidence["cause"] == "batch"
    assert "from finite inputs" not in origin.message
    assert "but the batch of step 3 already held NaN/Inf in its inputs or targets (`nonfinite-input`)" in origin.message
    assert origin.hint.startswith("Find where NaN/Inf enter the data")


def test_nonfinite_origin_argument_turns_the_watch_off_as_in_lightning(tmp_path):
    """The Keras callback had no `nonfinite_origin=` (Lightning has): the same argument, the same
    default (on where the loss lives on the CPU), False turns the re-run off (nonfinite-loss
    still reports the step), and a string is refused as for the other flags."""
    x, y = _data()
    found = {}
    for value in (None, False, True):
        cb = MLCheckCallback(
            nonfinite_origin=value, every_n_steps=5, overfit_batch=False, log_dir=tmp_path / str(value)
        )
        _model("log").fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
        found[value] = [f.check for f in cb.findings if f.check in ("nonfinite-origin", "nonfinite-loss")]
    assert found[None] == found[True] and "nonfinite-origin" in found[None]
    assert "nonfinite-origin" not in found[False] and "nonfinite-loss" in found[False]
    with pytest.raises(TypeError, match="nonfinite_origin must be True, False or None"):
        MLCheckCallback(nonfinite_origin="no")
    # a nonfinite-origin breakpoint watches on accelerators too, unless told otherwise
    assert MLCheckCallback(breakpoints=["nonfinite-origin"]).options.nonfinite_origin is True
    assert MLCheckCallback(breakpoints=["nonfinite-origin"], nonfinite_origin=False).options.nonfinite_origin is False
