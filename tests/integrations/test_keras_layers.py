"""Per-layer statistics of real Keras models (torch backend): a planted dead-ReLU layer (large
negative bias) is named by its Keras layer name, a healthy model stays silent, nothing stays
hooked after the fit, and a compiled step is skipped with one notice instead of failing."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

from mlcheck import Severity
from mlcheck.checks.base import default_checks, registry
from mlcheck.integrations.keras import MLCheckCallback

LAYER_IDS = (
    "vanishing-gradient",
    "exploding-gradient",
    "dead-units",
    "saturated-activations",
    "frozen-parameters",
    "nonfinite-origin",
)
pytestmark = pytest.mark.filterwarnings("ignore")


def _data():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16).astype(np.float32)[:1200], y[order].astype(np.int64)[:1200]


def _model(dead_bias: float = 0.0, jit_compile: bool = False) -> keras.Model:
    keras.utils.set_random_seed(0)
    bias = keras.initializers.Constant(dead_bias) if dead_bias else "zeros"
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu", name="hidden"),
            keras.layers.Dense(64, name="pre_dead", bias_initializer=bias),
            keras.layers.ReLU(name="dead_relu"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy", jit_compile=jit_compile)
    return model


def _fit(model, tmp_path, epochs: int = 2):
    x, y = _data()
    checks = [*default_checks(), *(registry()[i]() for i in LAYER_IDS)]
    cb = MLCheckCallback(checks=checks, every_n_steps=5, overfit_batch=False, log_dir=tmp_path)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[cb])
    return cb


def test_dead_relu_layer_is_named_by_its_keras_name(tmp_path):
    cb = _fit(_model(dead_bias=-20.0), tmp_path)
    layer_findings = [(f.check, f.key) for f in cb.findings if f.check in LAYER_IDS]
    assert layer_findings == [("dead-units", "dead_relu")]
    (finding,) = [f for f in cb.findings if f.check == "dead-units"]
    assert finding.evidence["fed_by"] == "pre_dead" and "dead_relu (ReLU after pre_dead)" in finding.message
    assert finding.evidence["dead_unit_fraction"] == 1.0  # every unit: a share, not a count of 1
    last = cb.monitor.run.layers.last
    assert {s.path for s in last.layers} == {"hidden", "pre_dead", "dead_relu", "out"}
    dead = next(s for s in last.layers if s.path == "dead_relu")
    assert dead.dead_units == 1.0 and dead.zero_fraction == 1.0


def test_healthy_keras_model_stays_silent_and_unhooked(tmp_path):
    model = _model()
    cb = _fit(model, tmp_path)
    assert [f.format() for f in cb.findings if f.severity >= Severity.WARNING] == []
    assert cb.monitor.run.layers.total >= 10
    hidden = next(s for s in cb.monitor.run.layers.last.layers if s.path == "hidden")
    assert hidden.grad_norm > 0 and hidden.update_ratio > 0 and hidden.activation == "relu"
    assert hidden.dead_units is not None and hidden.params == 64 * 64 + 64
    assert all(not layer._forward_hooks for layer in model.layers)
    assert all(not v.value._post_accumulate_grad_hooks for v in model.trainable_variables)


@pytest.mark.parametrize("dead_bias", [-20.0, 0.0])
def test_layers20_a_2_epoch_keras_run_gets_its_layer_verdict_and_a_healthy_one_stays_silent(dead_bias, tmp_path):
    """At the default interval of 25 a 76-step fit (2 epochs of 38) samples 4 steps, fewer than
    the patience of 5: the dead layer was never named (before layers20). The planned epochs x
    steps now set the layers' interval to max(10, 76 // 8) = 10: named at step 40; the healthy
    model, sampled as often, stays silent."""
    x, y = _data()
    checks = [*default_checks(), *(registry()[i]() for i in LAYER_IDS)]
    cb = MLCheckCallback(checks=checks, overfit_batch=False, log_dir=tmp_path)
    _model(dead_bias=dead_bias).fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    found = [(f.check, f.key, f.step) for f in cb.findings if f.check in LAYER_IDS]
    assert found == ([("dead-units", "dead_relu", 40)] if dead_bias else [])
    assert [f.check for f in cb.findings if f.severity >= Severity.WARNING] == [c for c, _, _ in found]
    assert cb.live.layer_every == 10 and cb.monitor.run.layers.total == 8


def test_compiled_step_skips_the_layer_checks_with_one_notice(caplog):
    from mlcheck.integrations.keras.layers import KerasLayerRecorder

    model = _model(jit_compile=True)  # torch.compile'd steps: nothing to hook (not fitted: slow)
    with caplog.at_level(logging.INFO, logger="mlcheck"):
        assert KerasLayerRecorder.create(model) is None
    notices = [r for r in caplog.records if "per-layer statistics need" in r.getMessage()]
    assert len(notices) == 1 and "jit_compile" in notices[0].getMessage()
    assert KerasLayerRecorder.create(_model()) is not None


def test_keras_breakpoint_writes_an_npz_snapshot_of_the_dead_layer(tmp_path):
    x, y = _data()
    cb = MLCheckCallback(every_n_steps=5, overfit_batch=False, log_dir=tmp_path, breakpoints=["dead-units"])
    _model(dead_bias=-20.0).fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    (finding,) = [f for f in cb.findings if f.check == "dead-units"]  # turned on by the breakpoint
    (path,) = (tmp_path / "mlcheck" / "snapshots").glob("*.npz")
    assert path.name == f"step{finding.step}-dead_relu.npz"
    snap = np.load(path, allow_pickle=False)
    assert int(snap["step"]) == finding.step and str(snap["layer"]) == "dead_relu"
    assert snap["output"].shape == (32, 64) and (snap["output"] > 0).mean() == 0.0
    assert snap["input"].max() < 0  # the planted bias: every pre-activation negative
    assert snap["batch/0"].shape == (32, 64) and snap["batch/1"].shape == (32,)
    assert str(snap["source"]) == "pre_dead" and snap["source_weights/bias"].mean() == -20.0


def test_keras_breakpoint_turns_on_a_check_that_suppress_left_out(tmp_path):
    x, y = _data()
    cb = MLCheckCallback(
        every_n_steps=5, overfit_batch=False, log_dir=tmp_path, suppress=["dead-units"], breakpoints=["dead-units"]
    )
    _model(dead_bias=-20.0).fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    (finding,) = [f for f in cb.findings if f.check == "dead-units"]
    (path,) = (tmp_path / "mlcheck" / "snapshots").glob("*.npz")
    assert path.name == f"step{finding.step}-dead_relu.npz"
