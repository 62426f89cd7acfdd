"""Runs one program of the suite in the current process and scores what was reported.

`run_program(program, mode, seed)` trains it once:
- "mlcheck": with `MLCheckCallback()` at its defaults, after `mlcheck.sanity(...)` on the same
  model and data (what a user running `mlcheck sanity` before the job would see);
- "safety_net": with the framework's own nets instead (Keras `TerminateOnNaN` + `EarlyStopping`;
  Lightning `EarlyStopping(check_finite=True, divergence_threshold=...)`);
- "plain": neither (a reference for the curves).

`MLCHECK_FAULTS_EXTRA_CHECKS=weak-slice,noisy-labels` (ids, comma-separated) adds opt-in checks
to the callback, to see what they would raise on the suite (docs/benchmarks.md, section 2b).

Scoring (see docs/benchmarks.md):
- a fault is *caught* when a WARNING or ERROR finding carries one of the program's `catches` ids,
  from the live callback or from sanity; its *latency* is the global step at which the first such
  finding appeared divided by the run's planned steps (0 for sanity, before training);
- a clean run has a *false alarm* when any WARNING or ERROR finding appears, from either path;
- the safety net catches a fault when it stops the run (any reason; the stricter reading counts
  only non-finite/divergence stops), at the step where it stopped.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import tempfile
import time
import traceback
import warnings
from typing import Any

from faults.catalog import Program
from faults.data import load

ALARM = ("warning", "error")


def _framework(program: Program) -> Any:
    module = importlib.import_module(f"faults.{program.framework}_program")
    _silence_loggers()  # after the import: Lightning configures its loggers when imported
    return module


def _silence_loggers() -> None:
    for name in (
        "lightning",
        "lightning.pytorch",
        "pytorch_lightning",
        "lightning.fabric",
        "lightning.pytorch.utilities.rank_zero",
        "mlcheck",
        "torch",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


def _callback_factory(program: Program, workdir: str) -> Any:
    """`MLCheckCallback()` at its defaults; for a layer program, the defaults plus the opt-in
    layer checks (`checks=[*default_checks(), *layer checks]`); plus the checks named in
    `MLCHECK_FAULTS_EXTRA_CHECKS`."""
    from mlcheck.checks.base import default_checks, registry

    module = importlib.import_module(f"mlcheck.integrations.{program.framework}")
    kwargs: dict[str, Any] = {}
    if program.layer_checks:
        from faults.catalog import LAYER_CHECKS

        kwargs["checks"] = [*default_checks(), *(registry()[i]() for i in LAYER_CHECKS)]
    extra = [i for i in os.environ.get("MLCHECK_FAULTS_EXTRA_CHECKS", "").split(",") if i]
    if extra:  # opt-in checks added to what the program runs
        kwargs["checks"] = [*kwargs.get("checks", default_checks()), *(registry()[i]() for i in extra)]
    return lambda: module.MLCheckCallback(log_dir=os.path.join(workdir, "mlcheck"), **kwargs)


def _finding_dict(finding: Any, observed: int | None) -> dict[str, Any]:
    d = finding.to_dict() if hasattr(finding, "to_dict") else dict(finding)
    d["observed_step"] = observed
    d["message"] = str(d.get("message", ""))[:300]
    d.pop("hint", None)
    return d


def run_sanity(program: Program, data: Any, seed: int) -> dict[str, Any]:
    """`mlcheck.sanity` on the program's model and data. Returns findings and seconds, or the
    error when sanity is not available or failed."""
    import mlcheck

    target = _framework(program).sanity_target(program.config, data, seed)
    start = time.perf_counter()
    try:
        report = mlcheck.sanity(target)
    except NotImplementedError as exc:
        return {"available": False, "error": f"NotImplementedError: {exc}"}
    except Exception as exc:  # noqa: BLE001 - a benchmark records failures, it does not stop
        return {"available": True, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
    seconds = time.perf_counter() - start
    findings = getattr(report, "findings", report)
    return {
        "available": True,
        "seconds": seconds,
        "findings": [_finding_dict(f, 0) for f in (findings or [])],
    }


def run_program(
    program: Program, mode: str, seed: int, sanity: bool | None = None, workdir: str | None = None
) -> dict[str, Any]:
    """Trains `program` once in `mode` and returns its scored result (a JSON-ready dict)."""
    if sanity is None:
        sanity = mode == "mlcheck"
    result: dict[str, Any] = {
        "program": program.name,
        "framework": program.framework,
        "fault": program.fault,
        "clean": program.clean,
        "catches": list(program.catches),
        "preflight": program.preflight,
        "layer": program.layer,
        "mode": mode,
        "seed": seed,
    }
    own_dir = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="mlcheck-fault-")
    start = time.perf_counter()
    try:
        data = load(program.config["data"], program.config["data_fault"], seed=seed)
        if sanity:
            result["sanity"] = run_sanity(program, data, seed)
        make_callback = _callback_factory(program, workdir) if mode == "mlcheck" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = _framework(program).train(program.config, data, mode, seed, workdir, make_callback=make_callback)
        observed = raw.pop("observed_steps")
        layer_observations = raw.pop("layer_observations", None) or []
        if layer_observations and program.layer_checks:  # the --layers suite's comparison row
            result["sagemaker"] = sagemaker_rules(layer_observations)
        findings = raw.pop("findings")
        raw["findings"] = [
            _finding_dict(f, observed[i] if i < len(observed) else raw["steps_run"]) for i, f in enumerate(findings)
        ]
        result.update(raw)
    except Exception as exc:  # noqa: BLE001
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=8)
    result["seconds"] = time.perf_counter() - start
    if own_dir:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    result.update(score(result))
    result.update(score_sagemaker(result))
    return result


def sagemaker_rules(observations: list[Any]) -> dict[str, Any]:
    """SageMaker Debugger's built-in layer rules re-implemented (`faults.sagemaker_rules`) on the
    layer statistics the run recorded: on every sampled step, and on the steps SageMaker's
    default `save_interval` (500) would have saved."""
    from faults import sagemaker_rules as sm

    every = sm.summarize(sm.evaluate(observations), len(observations))
    saved = [o for o in observations if o.step % sm.SAVE_INTERVAL == 0]
    every["at_save_interval"] = sm.summarize(sm.evaluate(saved), len(saved))
    every["sampled_steps"] = sorted({o.step for o in observations})[:3]
    return every


def score_sagemaker(result: dict[str, Any]) -> dict[str, Any]:
    """For a fault run with layer statistics: did a SageMaker rule matching the fault fire, on
    every sampled step and on the steps save_interval 500 keeps (see `sagemaker_rules`)."""
    sage = result.get("sagemaker")
    if sage is None or result.get("error") or result["clean"]:
        return {}
    from faults import sagemaker_rules as sm

    return {
        "sagemaker_score": sm.score(sage, result["catches"], result.get("layer")),
        "sagemaker_saved_score": sm.score(sage["at_save_interval"], result["catches"], result.get("layer")),
    }


def score(result: dict[str, Any]) -> dict[str, Any]:
    """Caught / latency / false alarm for one result (see the module docstring)."""
    out: dict[str, Any] = {}
    if result.get("error"):
        return {"valid": False}
    out["valid"] = True
    catches = set(result["catches"])
    total = max(1, int(result.get("total_steps") or 1))
    if result["mode"] == "mlcheck":
        live = [f for f in result.get("findings", []) if f["severity"] in ALARM]
        pre = [f for f in (result.get("sanity") or {}).get("findings", []) if f["severity"] in ALARM]
        out["alarms"] = sorted({f["check"] for f in live + pre})
        if result["clean"]:
            out["false_alarm"] = bool(live or pre)
            return out
        hits_live = [f for f in live if f["check"] in catches]
        hits_pre = [f for f in pre if f["check"] in catches]
        out["caught_by"] = [p for p, hits in (("sanity", hits_pre), ("live", hits_live)) if hits]
        out["caught"] = bool(hits_live or hits_pre)
        out["caught_live"] = bool(hits_live)
        out["caught_sanity"] = bool(hits_pre)
        # the mutation-testing reading: any WARNING/ERROR flags the run as broken
        out["flagged"] = bool(live or pre)
        if hits_live:
            first_live = min(hits_live, key=lambda f: f["observed_step"])
            out["latency_live"] = min(1.0, first_live["observed_step"] / total)
            out["first_hit_live"] = first_live["check"]
        if hits_pre:
            out["first_hit_sanity"] = hits_pre[0]["check"]
        out["info_only"] = (not out["caught"]) and any(f["check"] in catches for f in result.get("findings", []))
        if hits_pre:
            out["latency"] = 0.0
            out["first_hit"] = hits_pre[0]["check"]
        elif hits_live:
            first = min(hits_live, key=lambda f: f["observed_step"])
            out["latency"] = min(1.0, first["observed_step"] / total)
            out["first_hit"] = first["check"]
        out["wrong_ids"] = sorted({f["check"] for f in live + pre} - catches)
        if result.get("layer"):  # a per-layer fault: does its first finding name the planted layer?
            out |= _named_layer(result["layer"], hits_live, "") | _named_layer(result["layer"], hits_pre, "_sanity")
        return out
    stopped = result.get("stopped")
    if result["mode"] == "safety_net":
        if result["clean"]:
            out["false_alarm"] = bool(stopped and stopped["reason"] != "patience")
            out["stopped_early"] = bool(stopped)
            return out
        out["caught"] = bool(stopped)
        out["caught_strict"] = bool(stopped and stopped["reason"] != "patience")
        if stopped:
            out["latency"] = min(1.0, stopped["step"] / total)
    return out


def _named_layer(layer: str, hits: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    """`named_layer{suffix}` (the layer the first hit names) and `named_right{suffix}`; {} without a hit."""
    if not hits:
        return {}
    named = (hits[0].get("evidence") or {}).get("layer")
    return {f"named_layer{suffix}": named, f"named_right{suffix}": named == layer}


def quiet() -> None:
    """Keeps the worker's output to the results: no framework chatter, no warnings."""
    warnings.simplefilter("ignore")
    _silence_loggers()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def median(values: list[float]) -> float:
    values = sorted(v for v in values if v is not None and math.isfinite(v))
    if not values:
        return math.nan
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])
