"""Validation of the options that `Monitor` and the callbacks share: one rule and one message
per argument, raised where the user passes it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

STOP_ON = (None, "error", "warning")
TASKS = (None, "classification", "regression")


def stop_on(value: Any) -> str | None:
    if value not in STOP_ON:
        raise ValueError(f"stop_on must be None, 'error' or 'warning', got {value!r}")
    return value


def integer(name: str, value: Any, *, minimum: int, hint: str = "") -> int:
    """`value` as an int >= `minimum`; a bool or a float is refused rather than truncated."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}{hint}")
    return int(value)


def optional_integer(name: str, value: Any, *, minimum: int, hint: str = "") -> int | None:
    return None if value is None else integer(name, value, minimum=minimum, hint=hint)


def seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def task(value: Any) -> str | None:
    if value not in TASKS:
        raise ValueError(f"task must be None, 'classification' or 'regression', got {value!r}")
    return value


def check_ids(name: str, ids: Iterable[str] | str | None, also: Iterable[str] = ()) -> tuple[str, ...]:
    """Check ids as a tuple, each registered or in `also` (the ids of unregistered checks the
    user passed); a lone string is one id, not its characters."""
    from mlcheck.checks.base import registry

    if ids is None:
        return ()
    if isinstance(ids, str):
        ids = (ids,)
    try:
        ids = tuple(ids)
    except TypeError:
        raise TypeError(f"{name} must be a list of check ids, got {ids!r}") from None
    if not all(isinstance(i, str) for i in ids):
        raise TypeError(f"{name} must be a list of check ids (strings), got {ids!r}")
    known = list(registry()) + [i for i in also if i not in registry()]
    unknown = sorted(set(ids) - set(known))
    if unknown:
        raise ValueError(f"{name} names unknown check ids {unknown}; available: {', '.join(known)}")
    return ids
