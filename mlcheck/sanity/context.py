"""Re-export: `PreflightContext` and `Budget` live in `mlcheck.preflight_context`, beside
`Trainable`, so that checks need not import the sanity runner."""

from mlcheck.preflight_context import Budget, PreflightContext

__all__ = ["Budget", "PreflightContext"]
