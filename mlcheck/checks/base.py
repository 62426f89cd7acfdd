"""The `Check` base class and the registry of check ids."""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any, ClassVar, Iterable

from mlcheck.findings import Finding, Severity

if TYPE_CHECKING:
    from mlcheck.run import BatchObservation, RunState
    from mlcheck.sanity.context import PreflightContext

_REGISTRY: dict[str, type[Check]] = {}
_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SECTIONS = ("What it does", "Why it matters", "How to fix")


class Check:
    """Base class of every check. Subclass it, set `id`, `family` and `severity`, write the
    docstring with the sections What it does / Why it matters / How to fix, and implement the
    hooks the check needs. Each hook returns findings (an iterable, possibly empty) and must
    not print, do I/O or import a framework.

    Hooks:
        on_step(run): the step-level curves reached an evaluation point: every 32 steps while
            buckets are narrower (see `Monitor.STEP_EVAL_EVERY`), then at every bucket, and
            at once when a non-finite value arrives.
        on_epoch(run): an epoch's observations (train/val loss, metrics) were recorded.
        on_batch(batch, run): a sampled batch of inputs and targets arrived.
        on_end(run): the run (or the replayed log) ended.
        preflight(ctx): the pre-flight runner (`mlcheck sanity`) asks for a verdict.

    Thresholds are constructor arguments with documented defaults; per-run state lives in
    attributes set by `reset()`, which the monitor calls before a run starts.
    """

    id: ClassVar[str] = ""
    family: ClassVar[str] = ""
    severity: ClassVar[Severity] = Severity.WARNING
    #: False for checks that must be asked for explicitly.
    default: ClassVar[bool] = True

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forgets per-run state. Override to initialise your own; call super().reset()."""

    # -- hooks (all optional) ------------------------------------------------------------------

    def on_step(self, run: RunState) -> Iterable[Finding]:
        return ()

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        return ()

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        return ()

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return ()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        return ()

    # -- helpers -------------------------------------------------------------------------------

    @classmethod
    def implements(cls, hook: str) -> bool:
        """True when the subclass overrides `hook` (the monitor skips hooks nobody implements)."""
        return getattr(cls, hook) is not getattr(Check, hook)

    def finding(
        self,
        message: str,
        *,
        evidence: dict[str, Any] | None = None,
        hint: str = "",
        step: int | None = None,
        epoch: int | None = None,
        severity: Severity | None = None,
        key: str = "",
    ) -> Finding:
        """Builds a Finding of this check (its default severity unless given)."""
        return Finding(
            check=self.id,
            severity=severity or self.severity,
            message=message,
            evidence=dict(evidence or {}),
            hint=hint,
            step=step,
            epoch=epoch,
            key=key,
        )

    def state_dict(self) -> dict[str, Any]:
        """Per-run state to save with a checkpoint. Default: public attributes set by reset()."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    @classmethod
    def doc(cls) -> dict[str, str]:
        """The docstring split into summary, sections and Args, for `mlcheck explain` and docs."""
        return parse_doc(inspect.getdoc(cls) or "")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def parse_doc(text: str) -> dict[str, str]:
    """Splits a check docstring into {"summary", "What it does", "Why it matters", "How to fix",
    "Args", "Example"} (those present)."""
    lines = text.strip().splitlines()
    out: dict[str, str] = {}
    current = "summary"
    buf: list[str] = []
    heads = set(SECTIONS) | {"Args", "Example", "Examples"}
    for line in lines:
        head = line.strip().rstrip(":")
        if line.strip().endswith(":") and head in heads and not line.startswith(" "):
            out[current] = inspect.cleandoc("\n".join(buf)).strip()
            current, buf = head, []
        else:
            buf.append(line)
    out[current] = inspect.cleandoc("\n".join(buf)).strip()
    if "summary" in out:  # one line, for tables and `mlcheck checks`
        out["summary"] = " ".join(out["summary"].split())
    return {k: v for k, v in out.items() if v}


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: adds a check to the catalogue. Users may register their own checks."""
    if not cls.id or not _ID.match(cls.id):
        raise ValueError(f"{cls.__name__}.id must be a lower-case dashed id, got {cls.id!r}")
    existing = _REGISTRY.get(cls.id)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"check id {cls.id!r} is already registered by {existing.__module__}."
            f"{existing.__qualname__}; choose another id"
        )
    _REGISTRY[cls.id] = cls
    return cls


def registry() -> dict[str, type[Check]]:
    """All registered checks by id (built-in ones are loaded on first call)."""
    from mlcheck import checks  # noqa: F401  (imports the built-in families)

    return dict(sorted(_REGISTRY.items()))


def get_check(check_id: str) -> type[Check]:
    reg = registry()
    if check_id not in reg:
        raise KeyError(
            f"Unknown check id {check_id!r}. Available checks are: {', '.join(reg)}"
        )
    return reg[check_id]


def default_checks() -> list[Check]:
    """Fresh instances of every check that is on by default."""
    return [cls() for cls in registry().values() if cls.default]
