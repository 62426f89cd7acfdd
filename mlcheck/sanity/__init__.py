"""`mlcheck sanity`: pre-flight checks over the `Trainable` interface."""

from __future__ import annotations

from typing import Any


def sanity(target: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("mlcheck.sanity is being built")
