"""Layer breakpoints for torch models: snapshot files and the debugger where one trips.

`TorchBreakpoints` takes what a `mlcheck.breakpoints.Breakpoints` takes. The Lightning callback
builds one from its `breakpoints=` argument; a plain loop hands one to `LayerRecorder.step` and
`LayerRecorder.locate`:

    >>> from mlcheck.integrations.torch_breakpoints import TorchBreakpoints
    >>> from mlcheck.integrations.torch_layers import LayerRecorder
    >>> breakpoints = TorchBreakpoints([NonfiniteOriginCheck.id, DeadUnits.id])  # doctest: +SKIP
    >>> recorder = LayerRecorder(model)                                        # doctest: +SKIP
    >>> monitor = Monitor(breakpoints.with_checks(), log_dir="runs/x")           # doctest: +SKIP
    >>> with recorder.step(monitor, step, sample=step % 25 == 0, batch=(x, y), breakpoints=breakpoints):
    ...     ...                                                                 # doctest: +SKIP

A snapshot, `<log_dir>/mlcheck/snapshots/step<N>-<layer>.pt`, is a dict of tensors, strings and
numbers that `torch.load(path, weights_only=True)` reads: "step", "layer", "condition",
"check", "batch", "input", "output", "weights" (name -> tensor: the weights that produced the
output, before that step's update) and, where known, "source" and "source_weights" (the
weighted layer feeding an activation) or, for a NaN born in the backward pass, "grad_output",
"grad_input" and "weight_grads".
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import torch

from mlcheck.breakpoints import BREAKPOINT_CHECK, Breakpoints, Trip, open_debugger, snapshot_path
from mlcheck.findings import Finding
from mlcheck.layers import LayerObservation
from mlcheck.monitor import internal_notice

logger = logging.getLogger(__name__)

__all__ = ["TorchBreakpoints", "portable"]


def portable(value: Any) -> Any:
    """`value` (a batch) as `torch.load(weights_only=True)` can read it back: tensors detached on
    the CPU, numpy arrays as tensors, containers of them; anything else as its repr."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        return torch.from_numpy(np.array(value))
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(portable(v) for v in value) if type(value) in (list, tuple) else [portable(v) for v in value]
    return repr(value)[:200]


def _flat_arrays(value: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """A snapshot as numpy arrays that `numpy.load(allow_pickle=False)` reads, nested keys
    joined with "/" (None left out)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(value))
    elif value is None:
        return {}
    elif isinstance(value, torch.Tensor):
        return {prefix: value.detach().cpu().numpy()}
    else:
        return {prefix: np.asarray(value)}
    out: dict[str, np.ndarray] = {}
    for key, item in items:
        out.update(_flat_arrays(item, f"{prefix}/{key}" if prefix else str(key)))
    return out


class TorchBreakpoints:
    """Breakpoints on the layers of a torch model (see `mlcheck.breakpoints.Breakpoints` for the
    conditions): writes the snapshot of each tripped one, once per condition and layer, and with
    `pdb=True` opens the debugger there.

    Args:
        conditions: a `Breakpoints`, or what it takes (check ids, functions `LayerStats ->
            bool`, a mapping of names to functions).
        pdb: open the debugger where one trips (ignored when `conditions` is a `Breakpoints`,
            which carries its own). Default False.
        file_format: "pt" (`torch.save`, default) or "npz" (`numpy.savez`, nested keys joined
            with "/": "weights/kernel", "batch/0"; the Keras callback's choice).
        log_dir: where `mlcheck/snapshots/` goes. Default None: the monitor's `log_dir`.
    """

    def __init__(self, conditions: Any, *, pdb: bool = False, file_format: str = "pt", log_dir: Any = None) -> None:
        if file_format not in ("pt", "npz"):
            raise ValueError(f"file_format must be 'pt' or 'npz', got {file_format!r}")
        self.breakpoints = conditions if isinstance(conditions, Breakpoints) else Breakpoints(conditions, pdb=pdb)
        self.file_format = file_format
        self.log_dir = log_dir
        #: every tripped breakpoint of the run, in order, with its snapshot file (None: no log dir)
        self.reset()

    def reset(self) -> None:
        """Forgets the trips of a previous run (a callback calls it at the start of each fit)."""
        self.trips: list[tuple[Trip, Any]] = []
        self._done: set[tuple[str, str]] = set()
        self._verified = False
        self._save_failed = False

    def checks(self, present: Any = ()) -> list[Any]:
        """The checks the breakpoints' ids need that are not `present` (ids)."""
        return self.breakpoints.checks(present)

    def with_checks(self, checks: Any = None) -> list[Any]:
        """`checks` (None: the default set) plus the checks the breakpoints need and `checks`
        lacks: what the `Monitor` of a plain loop takes."""
        return self.breakpoints.with_checks(checks)

    def _verify(self, monitor: Any) -> None:
        if self._verified:
            return
        have = {c.id for c in monitor.checks}
        missing = [i for i in self.breakpoints.check_ids if i not in have]
        if missing:
            raise ValueError(
                f"breakpoints {missing} need their checks in the Monitor: Monitor(breakpoints.with_checks(), ...)"
            )
        self._verified = True

    # -- the adapters call these ---------------------------------------------------------------

    def on_layers(
        self, monitor: Any, observation: LayerObservation, findings: list[Finding] | None, recorder: Any, batch: Any
    ) -> list[Trip]:
        """After a sampled step's statistics went to the checks (`findings`: the new ones)."""
        self._verify(monitor)
        trips = self.breakpoints.from_findings(findings or ()) + self.breakpoints.from_stats(observation)
        modules = {layer.path: layer.module for layer in recorder.layers}
        by_path = {s.path: s for s in observation.layers}
        done = []
        for trip in trips:
            tensors = dict(recorder.kept.get(trip.layer, {}))
            stats = by_path.get(trip.layer)
            if stats is not None and stats.source and stats.source in recorder.kept:
                tensors["source"] = stats.source
                tensors["source_weights"] = recorder.kept[stats.source]["weights"]
            if self._trip(monitor, trip, tensors, modules.get(trip.layer), batch):
                done.append(trip)
        recorder.kept = {}
        return done

    def on_origin(
        self, monitor: Any, findings: list[Finding] | None, capture: dict[str, Any], model: Any, batch: Any
    ) -> list[Trip]:
        """After the NaN origin was located on a copy (`capture`: the module's tensors there)."""
        self._verify(monitor)
        done = []
        for trip in self.breakpoints.from_findings(findings or ()):
            module = dict(model.named_modules()).get(trip.layer) if trip.layer else None
            if self._trip(monitor, trip, capture, module, batch):
                done.append(trip)
        return done

    # -- one trip ------------------------------------------------------------------------------

    def _trip(self, monitor: Any, trip: Trip, tensors: dict[str, Any], module: Any, batch: Any) -> bool:
        key = (trip.condition, trip.layer)
        if key in self._done:
            return False
        self._done.add(key)
        snapshot = {
            "step": trip.step,
            "layer": trip.layer,
            "condition": trip.condition,
            "check": trip.finding.check,
            **tensors,
        }
        try:
            snapshot["batch"] = portable(batch)
        except Exception:  # an odd batch object must not break the run: the rest is still saved
            snapshot["batch"] = repr(type(batch))
        path = self._save(monitor, trip, snapshot)
        if trip.finding.check == BREAKPOINT_CHECK:  # a user's condition: its finding is reported here
            evidence = {**trip.finding.evidence, "snapshot": str(path) if path is not None else None}
            hint = trip.finding.hint
            if path is not None:  # the file itself, where the generic hint can only name the folder
                load = "numpy.load(path)" if path.suffix == ".npz" else "torch.load(path, weights_only=True)"
                hint = f"Load {path} ({load}) to look at the batch and the layer's input, output and weights."
            monitor.report(dataclasses.replace(trip.finding, evidence=evidence, hint=hint))
        logger.warning(
            "mlcheck: breakpoint %r tripped at step %s on layer %s; snapshot: %s",
            trip.condition,
            trip.step,
            trip.layer or "(outside any module)",
            path or "none (no log_dir)",
        )
        self.trips.append((trip, path))
        if self.breakpoints.pdb:
            open_debugger(trip, snapshot, path, module, batch)
        return True

    def _save(self, monitor: Any, trip: Trip, snapshot: dict[str, Any]) -> Any:
        log_dir = self.log_dir if self.log_dir is not None else getattr(monitor, "log_dir", None)
        path = snapshot_path(log_dir, trip.step, trip.layer, f".{self.file_format}")
        if path is None or self._save_failed:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if self.file_format == "npz":
                np.savez(path, **_flat_arrays(snapshot))
            else:
                torch.save(snapshot, path)
        except Exception as exc:  # a snapshot must not break the run
            self._save_failed = True
            internal_notice(
                f"mlcheck: could not write the breakpoint snapshot {path} ({exc}); no more are written", exc
            )
            return None
        return path
