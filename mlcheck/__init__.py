"""mlcheck: catches broken training runs early.

    from mlcheck import Monitor, Finding, Severity
    from mlcheck.integrations.lightning import MLCheckCallback   # or .keras

`import mlcheck` imports numpy only: no torch, keras, lightning, rich or tensorflow.
"""

from __future__ import annotations

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


def analyze(path: Any, **kwargs: Any) -> Any:
    """Diagnoses existing logs; see `mlcheck.analyze.analyze`."""
    from mlcheck.analyze import analyze as _analyze

    return _analyze(path, **kwargs)


def sanity(target: Any, **kwargs: Any) -> Any:
    """Runs the pre-flight checks; see `mlcheck.sanity.sanity`."""
    from mlcheck.sanity import sanity as _sanity

    return _sanity(target, **kwargs)
