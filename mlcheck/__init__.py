"""mlcheck: catches broken training runs early.

    from mlcheck import Monitor, Finding, Severity
    from mlcheck.integrations.lightning import MLCheckCallback   # or .keras
    mlcheck.sanity("model.py")        # pre-flight checks; same as mlcheck.sanity.run(...)
    mlcheck.analyze("lightning_logs") # existing logs; same as mlcheck.analyze.run(...)

`import mlcheck` imports nothing until a name is used (then numpy): no torch, keras, lightning,
rich or tensorflow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# The public names are imported on first use, like the packages below: `import mlcheck` itself
# imports nothing else, so the `mlcheck` command (`mlcheck.cli`) runs its own heavy imports
# where a Ctrl-C during them is one line and exit status 130, not a traceback.
_LAZY_NAMES = {
    "Check": "mlcheck.checks.base",
    "register": "mlcheck.checks.base",
    "Finding": "mlcheck.findings",
    "MLCheckInternalWarning": "mlcheck.findings",
    "MLCheckWarning": "mlcheck.findings",
    "Severity": "mlcheck.findings",
    "Monitor": "mlcheck.monitor",
    "RunInfo": "mlcheck.run",
}

__all__ = [
    "Check",
    "Finding",
    "MLCheckInternalWarning",
    "MLCheckWarning",
    "Monitor",
    "RunInfo",
    "Severity",
    "__version__",
    "analyze",
    "register",
    "sanity",
]


# `mlcheck.analyze` and `mlcheck.sanity` are packages, imported on first use so that
# `import mlcheck` stays light. Both are callable: `mlcheck.analyze(path)` is
# `mlcheck.analyze.run(path)`, `mlcheck.sanity(target)` is `mlcheck.sanity.run(target)`
# (see mlcheck/callable_package.py).
_LAZY_PACKAGES = ("analyze", "sanity")

# the names as static tools (type checkers, IDEs) should see them; never run (`typing` is not
# imported either: type checkers take a module-level TYPE_CHECKING = False for theirs)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlcheck import analyze, sanity
    from mlcheck.checks.base import Check, register
    from mlcheck.findings import Finding, MLCheckInternalWarning, MLCheckWarning, Severity
    from mlcheck.monitor import Monitor
    from mlcheck.run import RunInfo


def __getattr__(name: str) -> object:  # no `typing` import: the command starts sooner
    if name in _LAZY_PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted((set(globals()) - {"TYPE_CHECKING"}) | set(_LAZY_PACKAGES) | set(_LAZY_NAMES))
