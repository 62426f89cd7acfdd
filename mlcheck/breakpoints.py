"""Layer breakpoints: conditions on layers that, when they trip, save what the layer saw and
(on request) open a debugger there.

A condition is a per-layer check id (`"dead-units"`, `"nonfinite-origin"`, ...: it trips when
that check raises a finding naming a layer) or a function of one layer's statistics on a
sampled step (`mlcheck.layers.LayerStats` -> bool). When one trips, the adapter writes a
snapshot of the step (the batch, the layer's input, output and weights) to
`<log_dir>/mlcheck/snapshots/step<N>-<layer>.pt` (torch) or `.npz` (Keras), and with `pdb=True`
opens the debugger (`breakpoint()`, so `PYTHONBREAKPOINT` applies) in a frame whose locals hold
the finding, the snapshot and the layer.

This module is framework-free; `mlcheck.integrations.torch_breakpoints` and the Keras recorder
do the framework's part.

Example:
    >>> from mlcheck.breakpoints import Breakpoints
    >>> bp = Breakpoints(["nonfinite-origin", lambda s: s.abs_max > 1e4], pdb=False)
    >>> bp.check_ids
    ('nonfinite-origin',)
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcheck.findings import Finding, Severity
from mlcheck.layers import LayerObservation, LayerStats

logger = logging.getLogger(__name__)

__all__ = ["BREAKPOINT_CHECK", "Breakpoints", "LayerCondition", "Trip", "open_debugger", "snapshot_path"]

#: A user's condition over one layer's statistics on a sampled step.
LayerCondition = Callable[[LayerStats], Any]
#: The check id of findings raised by a user's condition (not a registered check).
BREAKPOINT_CHECK = "breakpoint"
#: Where snapshots go, under the run's log directory.
SNAPSHOT_DIR = Path("mlcheck") / "snapshots"


@dataclass(frozen=True)
class Trip:
    """One tripped breakpoint: the condition's name, the layer (module path; "" for code outside
    any module), the step and the finding it raised."""

    condition: str
    layer: str
    step: int | None
    finding: Finding
    stats: LayerStats | None = None


def _layer_check_ids() -> list[str]:
    from mlcheck.checks.base import Signal, registry

    return [i for i, cls in registry().items() if Signal.LAYER_STATS in cls.signals()]


class Breakpoints:
    """Conditions on layers, checked on every sampled step of the layer recorder.

    Args:
        conditions: one condition or a list of them: a per-layer check id (`mlcheck checks`
            lists them: "vanishing-gradient", "exploding-gradient", "dead-units",
            "saturated-activations", "frozen-parameters", "nonfinite-origin"), or a function
            `LayerStats -> bool` (true: trip), or a mapping of names to such functions (the name
            is what the finding and the snapshot file say). A function is called for every
            recorded layer on every sampled layer step (`every_n_steps`, or more often on a
            short planned run: docs/layers.md, "Sampling"); one that raises is switched off
            with one warning.
        pdb: open the debugger where a breakpoint trips (`breakpoint()`, so `PYTHONBREAKPOINT`
            chooses it; 0 switches it off). Default False.

    Raises:
        ValueError, TypeError: naming the `breakpoints` argument, for an unknown id, an id of a
            check that does not look at layers, or a value that is neither id nor function.
    """

    def __init__(
        self,
        conditions: str | LayerCondition | Mapping[str, LayerCondition] | Sequence[Any],
        *,
        pdb: bool = False,
    ) -> None:
        if not isinstance(pdb, bool):
            raise TypeError(f"pdb must be True or False, got {pdb!r}")
        self.pdb = pdb
        ids: list[str] = []
        functions: list[tuple[str, LayerCondition]] = []
        for item in _items(conditions):
            if isinstance(item, tuple):
                functions.append(item)
            elif isinstance(item, str):
                ids.append(item)
            elif callable(item):
                name = getattr(item, "__name__", "")
                functions.append((name if name and name != "<lambda>" else f"condition {len(functions) + 1}", item))
            else:
                raise TypeError(_refused(item))
        if ids:
            layer_ids = _layer_check_ids()
            unknown = [i for i in ids if i not in layer_ids]
            if unknown:
                from mlcheck.checks.base import did_you_mean

                guess = did_you_mean(unknown, layer_ids)
                raise ValueError(
                    f"breakpoints names {unknown}, which are not per-layer checks{f' ({guess})' if guess else ''}; "
                    f"available: {', '.join(layer_ids)}, or a function of a layer's statistics"
                )
        if not ids and not functions:
            raise ValueError("breakpoints is empty: give check ids (e.g. 'nonfinite-origin') or functions")
        self.check_ids: tuple[str, ...] = tuple(dict.fromkeys(ids))
        self.functions: tuple[tuple[str, LayerCondition], ...] = tuple(functions)
        self._broken: set[str] = set()

    @property
    def watches_nonfinite(self) -> bool:
        """True when one names the NaN origin, which needs every step's loss watched (adapters
        then watch it on accelerators too, where it is off by default)."""
        return "nonfinite-origin" in self.check_ids

    @classmethod
    def parse(cls, value: Any) -> Breakpoints | None:
        """`value` as the callbacks' `breakpoints=` argument takes it: None, a `Breakpoints`, or
        what its constructor takes."""
        if value is None or isinstance(value, Breakpoints):
            return value
        return cls(value)

    # -- which checks must run -----------------------------------------------------------------

    def checks(self, present: Iterable[str] = ()) -> list[Any]:
        """Fresh instances of the per-layer checks the ids name, except those `present`; a
        function alone needs none (the recorder runs for any breakpoint)."""
        from mlcheck.checks.base import registry

        have = set(present)
        return [registry()[i]() for i in self.check_ids if i not in have]

    def with_checks(self, checks: Sequence[Any] | None) -> list[Any]:
        """`checks` (None: the default set) plus the checks the breakpoints need, so that setting
        breakpoints turns on the layer recorder."""
        from mlcheck.checks.base import default_checks

        base = list(checks) if checks is not None else default_checks()
        return base + self.checks(c.id for c in base)

    # -- tripping ------------------------------------------------------------------------------

    def from_findings(self, findings: Iterable[Finding]) -> list[Trip]:
        """The new findings of the named checks that name a layer."""
        out = []
        for f in findings:
            # a NaN made by code outside any module names no layer, but is where to stop all the same
            if f.check in self.check_ids and ("layer" in f.evidence or f.check == "nonfinite-origin"):
                out.append(Trip(f.check, str(f.evidence.get("layer") or ""), f.step, f))
        return out

    def from_stats(self, observation: LayerObservation) -> list[Trip]:
        """The user's functions over each layer of one sampled step; a trip's finding is not yet
        reported (its key is the condition and the layer: once per run each)."""
        out = []
        for name, fn in self.functions:
            if name in self._broken:
                continue
            for stats in observation.layers:
                try:
                    tripped = bool(fn(stats))
                except Exception as exc:  # a user's condition must not break the run
                    self._broken.add(name)
                    from mlcheck.monitor import internal_notice

                    internal_notice(
                        f"mlcheck: breakpoint condition {name!r} raised {type(exc).__name__}: {exc}; it is "
                        "switched off for this run",
                        exc,
                    )
                    break
                if tripped:
                    out.append(Trip(name, stats.path, observation.step, _finding(name, stats, observation)))
        return out


#: what `breakpoints=` takes, said in every refusal of a value of the wrong type
_ACCEPTS = (
    "breakpoints takes per-layer check ids (strings such as 'dead-units'), functions of a layer's "
    "statistics (LayerStats -> bool), a {name: function} mapping, a list of these, or a Breakpoints"
)


def _refused(value: Any) -> str:
    """The TypeError text for a `breakpoints` value (or item) of the wrong type."""
    text = f"{_ACCEPTS}; got {value!r:.80} ({type(value).__name__})"
    if isinstance(value, (bytes, bytearray)):  # iterated, bytes are numbers: say what to pass
        text += f"; pass the id as a str: {bytes(value).decode(errors='replace')!r}"
    return text


def _items(conditions: Any) -> list[Any]:
    if isinstance(conditions, str) or callable(conditions):
        return [conditions]
    if isinstance(conditions, (bytes, bytearray)):
        raise TypeError(_refused(conditions))
    if isinstance(conditions, Mapping):
        items = []
        for name, fn in conditions.items():
            if not isinstance(name, str) or not callable(fn):
                raise TypeError(f"breakpoints as a mapping takes names -> functions, got {name!r}: {fn!r}")
            items.append((name, fn))
        return items
    try:
        items = list(conditions)
    except TypeError:
        raise TypeError(_refused(conditions)) from None
    return [x for item in items for x in (_items(item) if isinstance(item, Mapping) else [item])]


def _number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return str(value)


def _finding(name: str, s: LayerStats, observation: LayerObservation) -> Finding:
    return Finding(
        check=BREAKPOINT_CHECK,
        severity=Severity.WARNING,
        message=f"Breakpoint {name!r} tripped at step {observation.step} on layer {s.name}.",
        evidence={
            "condition": name,
            "layer": s.path,
            "kind": s.kind,
            "nonfinite": s.nonfinite,
            "abs_max": _number(s.abs_max),
            "mean": _number(s.mean),
            "std": _number(s.std),
            "zero_fraction": _number(s.zero_fraction),
            "grad_norm": _number(s.grad_norm),
            "update_ratio": _number(s.update_ratio),
        },
        hint=(
            f"Load the step's snapshot, {SNAPSHOT_DIR.as_posix()}/step{observation.step}-*.pt under the log "
            "directory (torch.load(path, weights_only=True); a .npz under Keras: numpy.load(path)), to look at "
            "the batch and the layer's input, output and weights."
        ),
        step=observation.step,
        epoch=observation.epoch,
        key=f"{name}:{s.path}",
    )


def snapshot_path(log_dir: str | Path | None, step: int | None, layer: str, suffix: str) -> Path | None:
    """`<log_dir>/mlcheck/snapshots/step<N>-<layer><suffix>`, a fresh name (None without a log
    directory)."""
    if log_dir is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", layer) or "outside"
    folder = Path(log_dir) / SNAPSHOT_DIR
    path = folder / f"step{step if step is not None else 'na'}-{safe}{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"step{step}-{safe}-{n}{suffix}"
    return path


def open_debugger(trip: Trip, snapshot: dict[str, Any], path: Path | None, layer: Any, batch: Any) -> None:
    """Opens the debugger (`breakpoint()`) where a breakpoint tripped. Its frame's locals:
    `trip` (the condition, layer path and step), `finding`, `snapshot` (the dict of tensors or
    arrays that was saved), `path` (the snapshot file, or None), `layer` (the module or Keras
    layer), `batch`. `c` continues training, `q` stops it."""
    finding = trip.finding
    logger.info("mlcheck: breakpoint %r on layer %s at step %s", trip.condition, trip.layer, trip.step)
    breakpoint()  # mlcheck breakpoint: look at finding, snapshot, layer, batch; c continues, q quits
    del finding, snapshot, path, layer, batch  # (names for the debugger's frame)
