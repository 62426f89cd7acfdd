"""The check catalogue: one module per family; each check is a small class with a stable id.

Importing this package registers the built-in checks.
"""

# Built-in families. Each module registers its checks with @register.
from mlcheck.checks import (  # noqa: E402,F401
    data,
    generalization,
    label_shift,
    layers,
    leakage,
    learning_rate,
    optimization,
    preflight,
    samples,
    stale_gradients,
)
from mlcheck.checks.base import Check, default_checks, get_check, register, registry

__all__ = ["Check", "default_checks", "get_check", "register", "registry"]
