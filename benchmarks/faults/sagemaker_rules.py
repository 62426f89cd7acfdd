"""SageMaker Debugger's built-in per-layer rules, re-implemented on mlcheck's layer statistics.

A comparison row for the per-layer fault suite (`run_faults.py --layers`), not a check of
mlcheck: the rules read the same `mlcheck.layers.LayerStats` the layer checks read, one sampled
step at a time, with SageMaker's default parameters (AWS developer guide, "List of Debugger
built-in rules"; awslabs/sagemaker-debugger). Where the statistics do not hold what a rule reads,
the nearest statistic stands in, as each rule says:

- VanishingGradient: a gradient tensor with mean |g| < 1e-7. Stand-in: the layer's gradient RMS
  (`grad_rms`, over all its own parameters) < 1e-7. RMS >= mean |g|, so the stand-in fires no
  more often than the rule; SageMaker judges weight and bias tensors apart, this one per layer.
- ExplodingTensor: any NaN or Inf in a saved tensor (default `only_nan=False`; it has no
  magnitude threshold). Reads the forward output's non-finite count and abs_max, and the
  gradient and weight norms (a non-finite norm means a non-finite value in the tensor).
- DeadRelu: a unit is dead when active on < 1% of the values (`threshold_inactivity=1.0`); fires
  when > 50% of a ReLU layer's units are (`threshold_layer=50.0`). `dead_units` is that share,
  over the sampled batch: the same rule.
- SaturatedActivation: a tanh input outside +-9.5, a sigmoid input below -23 or above 17, same
  1%/50% rule. Stand-in: `saturated_units` > 0.5, where mlcheck calls a value saturated when the
  slope is below 1% of its maximum (tanh |x| > ~3.0, sigmoid |x| > ~5.3): looser than
  SageMaker's cut, so the stand-in fires at least as often as the rule.
- WeightUpdateRatio: |w_t - w_t-1| / |w_t-1| > 10 or < 1e-8 (needs consecutive steps saved).
  `update_ratio` is the sampled step's own update: the same ratio, on the sampled steps only.
  mlcheck measures no update for a layer without trainable parameters; smdebug's PyTorch hook
  saves every parameter (`_log_params`: `module.named_parameters()`, frozen or not), whose ratio
  is then 0, so a frozen layer's ratio is taken as 0 here.

Cadence: SageMaker's rule configs save tensors every 500 steps (`save_interval`) and judge each
saved step. mlcheck samples layers every 25 steps by default; `evaluate` judges every sampled
step it is given, and `Firing.step` lets a caller keep only the steps SageMaker would have saved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

VANISHING = 1e-7
DEAD_LAYER_SHARE = 0.5
SATURATED_LAYER_SHARE = 0.5
UPDATE_LARGE = 10.0
UPDATE_SMALL = 1e-8
SAVE_INTERVAL = 500

RULES = ("VanishingGradient", "ExplodingTensor", "DeadRelu", "SaturatedActivation", "WeightUpdateRatio")

#: the SageMaker rules that count as catching a planted fault, by the mlcheck check id the fault
#: program expects (a frozen layer's weights do not move: WeightUpdateRatio < 1e-8)
CATCHES = {
    "vanishing-gradient": ("VanishingGradient",),
    "exploding-gradient": ("ExplodingTensor", "WeightUpdateRatio"),
    "dead-units": ("DeadRelu",),
    "saturated-activations": ("SaturatedActivation",),
    "frozen-parameters": ("WeightUpdateRatio",),
    "nonfinite-origin": ("ExplodingTensor",),
}


@dataclass(frozen=True)
class Firing:
    """One rule that returned True on one layer at one sampled step."""

    rule: str
    layer: str
    step: int
    value: float

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "layer": self.layer, "step": self.step, "value": self.value}


def judge(stats: Any, step: int) -> list[Firing]:
    """The rules that fire on one layer's statistics (`mlcheck.layers.LayerStats`) at `step`."""
    out: list[Firing] = []
    path = stats.path
    rms = stats.grad_rms
    if rms is not None and math.isfinite(rms) and rms < VANISHING:
        out.append(Firing("VanishingGradient", path, step, rms))
    # abs_max is NaN when not recorded, so only an Inf there counts; a NaN or Inf norm means a
    # NaN or Inf in the gradient or weight tensor
    norms = [v for v in (stats.grad_norm, stats.weight_norm) if v is not None]
    if stats.nonfinite or math.isinf(stats.abs_max) or not all(math.isfinite(v) for v in norms):
        out.append(Firing("ExplodingTensor", path, step, float(stats.nonfinite)))
    if stats.activation == "relu" and stats.dead_units is not None and stats.dead_units > DEAD_LAYER_SHARE:
        out.append(Firing("DeadRelu", path, step, stats.dead_units))
    if (
        stats.activation in ("tanh", "sigmoid")
        and stats.saturated_units is not None
        and stats.saturated_units > SATURATED_LAYER_SHARE
    ):
        out.append(Firing("SaturatedActivation", path, step, stats.saturated_units))
    ratio = stats.update_ratio
    if ratio is None and stats.params and not stats.trainable and stats.weight_norm is not None:
        ratio = 0.0  # frozen: the optimizer never moves it, yet smdebug saves it (see above)
    if ratio is not None and math.isfinite(ratio) and (ratio > UPDATE_LARGE or ratio < UPDATE_SMALL):
        out.append(Firing("WeightUpdateRatio", path, step, ratio))
    return out


def evaluate(observations: Iterable[Any], save_interval: int | None = None) -> list[Firing]:
    """Every firing over `observations` (`mlcheck.layers.LayerObservation`, in step order). With
    `save_interval`, only the steps SageMaker would have saved (step % save_interval == 0)."""
    out: list[Firing] = []
    for obs in observations:
        if save_interval and obs.step % save_interval:
            continue
        for stats in obs.layers:
            out += judge(stats, obs.step)
    return out


def summarize(firings: list[Firing], steps_judged: int) -> dict[str, Any]:
    """JSON-ready: the first firing per (rule, layer), the rules that fired, steps judged."""
    first: dict[tuple[str, str], Firing] = {}
    for f in firings:
        key = (f.rule, f.layer)
        if key not in first or f.step < first[key].step:
            first[key] = f
    # by step; within a step in the order judged (forward order of the layers)
    ordered = sorted(first.values(), key=lambda f: f.step)
    return {
        "steps_judged": steps_judged,
        "rules": sorted({f.rule for f in ordered}, key=RULES.index),
        "first": [f.to_dict() for f in ordered],
    }


def score(summary: dict[str, Any], catches: Iterable[str], layer: str | None) -> dict[str, Any]:
    """Did a rule that matches the planted fault fire, first on which layer, and on the planted one?"""
    wanted = {rule for c in catches for rule in CATCHES.get(c, ())}
    hits = [f for f in summary["first"] if f["rule"] in wanted]
    out: dict[str, Any] = {"caught": bool(hits)}
    if hits:
        out["first"] = hits[0]
        out["on_layer"] = [f for f in hits if f["layer"] == layer][:1]
        out["right_layer"] = bool(out["on_layer"])
    return out
