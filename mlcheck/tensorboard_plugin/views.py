"""The JSON the tab's frontend draws, aggregated from what TensorBoard's data provider returns:
one row per run for the runs table, and one page per run (findings, loss curves, markers, layer
heat map). Pure functions over plain values; `plugin.py` does the reading.

A Keras run is written as two TensorBoard runs, `<name>/train` and `<name>/validation`: the tab
shows them as one run `<name>` (train loss from one, validation loss from the other).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

from mlcheck.tensorboard_plugin.finding_text import ParsedFinding

SEVERITIES = ("error", "warning", "info")
_RANK = {s: i for i, s in enumerate(reversed(SEVERITIES))}
SUBRUN_ROLES = {"train": "train", "validation": "val"}
LAYER_PREFIX = "mlcheck/layers/"
CURVES_PREFIX = "mlcheck/curves/"  # `mlcheck.sinks.curves.CURVE_TAG`
# Heat map columns: finer than a screen can show adds bytes, not information.
MAX_HEATMAP_STEPS = 200
_VAL_TAG = re.compile(r"(?i)(^|[^a-z])val(idation)?([^a-z]|$)")


def group_of(run: str) -> tuple[str, str]:
    """(`<name>`, role) for a Keras sub-run `<name>/train` or `<name>/validation`, else (run, "")."""
    head, _, tail = run.rpartition("/")
    if tail in SUBRUN_ROLES:
        return (head or ".", tail)
    return (run, "")


def groups(runs: list[str]) -> dict[str, list[str]]:
    """Run name as shown -> the TensorBoard runs it is made of, in a stable order."""
    found: dict[str, list[str]] = defaultdict(list)
    for run in sorted(runs):
        found[group_of(run)[0]].append(run)
    return dict(found)


def worst(severities) -> str | None:
    ranked = [s for s in severities if s in _RANK]
    return max(ranked, key=_RANK.__getitem__) if ranked else None


def run_row(name: str, findings: list[ParsedFinding], recorded: int, watched: bool, extras: dict) -> dict:
    """One row of the runs table. `recorded`: the findings count TensorBoard holds as a scalar
    (`mlcheck/findings`), which can exceed the texts it keeps (it samples 10 texts per tag)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for f in findings:
        counts[f.check][f.severity] += 1
    steps = [f.event_step for f in findings]
    return {
        "run": name,
        "watched": watched,
        "count": len(findings),
        "recorded": max(recorded, len(findings)),
        "worst": worst(f.severity for f in findings),
        "first_step": min(steps) if steps else None,
        "counts": {check: dict(c) for check, c in sorted(counts.items())},
        **extras,
    }


def loss_split(run: str, tag: str) -> str | None:
    """'train' or 'val' for a loss curve, None for a tag that is not a loss. Of mlcheck's own
    tags, only the curves `Monitor` writes for a loop without a logger (`mlcheck/curves/...`)."""
    if (tag.startswith("mlcheck/") and not tag.startswith(CURVES_PREFIX)) or "loss" not in tag.lower():
        return None
    if group_of(run)[1] == "validation" or _VAL_TAG.search(tag):
        return "val"
    return "train"


def timeline_axis(tags: list[str]) -> str:
    """'epoch' for Keras-style curves (`epoch_loss` is written at the epoch index, not the step),
    else 'step'. On an epoch axis only the `epoch_*` curves are drawn and findings sit at their epoch."""
    return "epoch" if any(t.rpartition("/")[2].startswith("epoch_") for t in tags) else "step"


def timeline_x(finding: ParsedFinding, axis: str) -> int | None:
    """Where a finding sits on the timeline: its event step, or its epoch on an epoch axis."""
    return finding.epoch if axis == "epoch" else finding.event_step


def finite_points(points) -> list[list[float | None]]:
    """[[step, value]] with non-finite values as None (a gap in the curve; JSON has no NaN)."""
    return [[p.step, p.value if math.isfinite(p.value) else None] for p in points]


def layer_tag(tag: str) -> tuple[str, str] | None:
    """(module path, statistic) of `mlcheck/layers/<module path>/<stat>`."""
    if not tag.startswith(LAYER_PREFIX):
        return None
    layer, _, stat = tag[len(LAYER_PREFIX) :].rpartition("/")
    return (layer, stat) if layer and stat else None


def _columns(steps: list[int]) -> list[int]:
    if len(steps) <= MAX_HEATMAP_STEPS:
        return steps
    stride = len(steps) / MAX_HEATMAP_STEPS
    return [steps[int(i * stride)] for i in range(MAX_HEATMAP_STEPS)]


def _cell(points: list, columns: list[int]) -> list[float | None]:
    """The value of each column: the largest finite value of the points from that column's step
    up to the next one's (the largest, so a spike is not averaged away)."""
    out: list[float | None] = [None] * len(columns)
    j = 0
    for p in points:
        while j + 1 < len(columns) and p.step >= columns[j + 1]:
            j += 1
        if p.step >= columns[0] and math.isfinite(p.value):
            out[j] = p.value if out[j] is None else max(out[j], p.value)
    return out


def _naming_texts(finding: ParsedFinding) -> list[str]:
    """Where a finding names its layer: evidence entries such as `layer` or `module` when it has
    them (a message may name other layers for comparison), else its message."""
    named = [v for k, v in finding.evidence.items() if "layer" in k.lower() or "module" in k.lower()]
    return named or [finding.message]


def flagged_layers(layers: list[str], findings: list[ParsedFinding]) -> dict[str, list[str]]:
    """Layer -> ids of the findings that name it."""
    flagged: dict[str, list[str]] = {}
    for layer in layers:
        pattern = re.compile(r"(?<![\w.])" + re.escape(layer) + r"(?![\w.])")
        for f in findings:
            texts = _naming_texts(f)
            if any(pattern.search(t) for t in texts) and f.check not in flagged.get(layer, []):
                flagged.setdefault(layer, []).append(f.check)
    return flagged


def layer_heatmap(series: dict[str, list], findings: list[ParsedFinding]) -> dict | None:
    """Layer x step matrices, one per statistic, from `mlcheck/layers/...` scalar series
    (tag -> points); None when the run has none."""
    by_stat: dict[str, dict[str, list]] = defaultdict(dict)
    for tag, points in series.items():
        parsed = layer_tag(tag)
        if parsed and points:
            by_stat[parsed[1]][parsed[0]] = points
    if not by_stat:
        return None
    steps = sorted({p.step for layers in by_stat.values() for points in layers.values() for p in points})
    columns = _columns(steps)
    layers = sorted({layer for layers in by_stat.values() for layer in layers})
    # The recorder writes no statistic of an output that held NaN/Inf: it counts them in the
    # `nonfinite` statistic instead, so a layer with a count above 0 is listed under every one.
    counted = {layer for layer, points in by_stat.get("nonfinite", {}).items() if any(p.value != 0 for p in points)}
    nonfinite = {
        stat: sorted(
            counted | {layer for layer, points in ls.items() if any(not math.isfinite(p.value) for p in points)}
        )
        for stat, ls in by_stat.items()
    }
    return {
        "steps": columns,
        "layers": layers,
        "stats": sorted(by_stat),
        "values": {
            stat: [_cell(ls[layer], columns) if layer in ls else None for layer in layers]
            for stat, ls in by_stat.items()
        },
        "nonfinite": {k: v for k, v in nonfinite.items() if v},
        "flagged": flagged_layers(layers, findings),
    }
