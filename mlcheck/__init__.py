"""mlcheck: catches broken training runs early.

    from mlcheck import Monitor, Finding, Severity
    from mlcheck.integrations.lightning import MLCheckCallback   # or .keras
    mlcheck.sanity("model.py")        # pre-flight checks; same as mlcheck.sanity.run(...)
    mlcheck.analyze("lightning_logs") # existing logs; same as mlcheck.analyze.run(...)

`import mlcheck` imports numpy only: no torch, keras, lightning, rich or tensorflow.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from mlcheck.checks.base import Check, register
from mlcheck.findings import Finding, MLCheckInternalWarning, MLCheckWarning, Severity
from mlcheck.monitor import Monitor
from mlcheck.run import RunInfo

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


def __getattr__(name: str) -> Any:
    if name in _LAZY_PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_PACKAGES))
