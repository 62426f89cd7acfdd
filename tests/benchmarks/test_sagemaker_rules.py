"""The SageMaker Debugger rules re-implemented for the layer fault suite's comparison row
(`benchmarks/faults/sagemaker_rules.py`): each fires on a hand-made stream of layer statistics
that breaks it, on the layer that breaks it, and none fires on a healthy stream."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

from mlcheck.layers import LayerObservation, LayerStats

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from faults import sagemaker_rules as sm  # noqa: E402


def healthy_layers() -> list[LayerStats]:
    def common(**kw):
        return dict(nonfinite=0, abs_max=2.0, mean=0.1, std=0.5, zero_fraction=0.0, **kw)

    return [
        LayerStats(
            "net.0",
            "Linear",
            order=0,
            params=640,
            trainable=True,
            grad_norm=0.05,
            weight_norm=3.0,
            update_ratio=1e-3,
            **common(),
        ),
        LayerStats("net.1", "ReLU", activation="relu", order=1, dead_units=0.1, **common()),
        LayerStats(
            "net.2",
            "Linear",
            order=2,
            params=320,
            trainable=True,
            grad_norm=0.02,
            weight_norm=2.0,
            update_ratio=5e-4,
            **common(),
        ),
        LayerStats(
            "net.3", "Tanh", activation="tanh", order=3, saturated_units=0.2, saturated_fraction=0.1, **common()
        ),
    ]


def stream(broken: dict[str, dict] | None = None, steps=(0, 25, 50, 75)) -> list[LayerObservation]:
    """Observations at `steps`; from step 50 on, the layers in `broken` carry its fields."""
    out = []
    for step in steps:
        layers = healthy_layers()
        if broken and step >= 50:
            layers = [replace(s, **broken.get(s.path, {})) for s in layers]
        out.append(LayerObservation(step=step, layers=tuple(layers)))
    return out


def test_healthy_stream_raises_no_rule():
    firings = sm.evaluate(stream())
    assert firings == []
    assert sm.summarize(firings, 4) == {"steps_judged": 4, "rules": [], "first": []}


def test_each_rule_fires_on_the_layer_that_breaks_it_from_the_step_it_breaks():
    cases = {
        "VanishingGradient": {"net.0": {"grad_norm": 1e-7}},  # rms 4e-9 < 1e-7
        "ExplodingTensor": {"net.2": {"nonfinite": 12, "abs_max": math.inf}},
        "DeadRelu": {"net.1": {"dead_units": 0.75}},
        "SaturatedActivation": {"net.3": {"saturated_units": 0.6}},
    }
    for rule, broken in cases.items():
        firings = sm.evaluate(stream(broken))
        (layer,) = broken
        assert {(f.rule, f.layer) for f in firings} == {(rule, layer)}, (rule, firings)
        assert min(f.step for f in firings) == 50
    # a NaN gradient is a NaN in a saved tensor as well
    assert {f.rule for f in sm.evaluate(stream({"net.0": {"grad_norm": math.nan}}))} == {"ExplodingTensor"}
    # a frozen layer (no trainable parameter, no update measured) does not move: ratio 0
    frozen = sm.evaluate(stream({"net.2": {"trainable": False, "grad_norm": None, "update_ratio": None}}))
    assert {(f.rule, f.layer, f.value) for f in frozen} == {("WeightUpdateRatio", "net.2", 0.0)}
    # WeightUpdateRatio: both ends
    for ratio in (20.0, 0.0):
        firings = sm.evaluate(stream({"net.2": {"update_ratio": ratio}}))
        assert [(f.rule, f.layer, f.step) for f in firings] == [
            ("WeightUpdateRatio", "net.2", 50),
            ("WeightUpdateRatio", "net.2", 75),
        ]


def test_boundaries_are_strict_as_in_sagemaker():
    at_edge = {
        "net.1": {"dead_units": 0.5},  # > 50% of the units, not >=
        "net.3": {"saturated_units": 0.5},
        "net.2": {"update_ratio": 10.0},
    }
    assert sm.evaluate(stream(at_edge)) == []


def test_summary_and_score_against_the_planted_fault():
    observations = stream({"net.1": {"dead_units": 0.9}, "net.0": {"update_ratio": 0.0}})
    summary = sm.summarize(sm.evaluate(observations), len(observations))
    assert summary["rules"] == ["DeadRelu", "WeightUpdateRatio"]
    assert [(f["rule"], f["layer"], f["step"]) for f in summary["first"]] == [
        ("WeightUpdateRatio", "net.0", 50),
        ("DeadRelu", "net.1", 50),
    ]
    scored = sm.score(summary, ["dead-units"], "net.1")
    assert scored["caught"] and scored["right_layer"] and scored["first"]["rule"] == "DeadRelu"
    assert not sm.score(summary, ["vanishing-gradient"], "net.0")["caught"]
    # SageMaker's save_interval (500): only step 0 of this stream is saved, before it broke
    assert sm.evaluate(observations, save_interval=sm.SAVE_INTERVAL) == []
