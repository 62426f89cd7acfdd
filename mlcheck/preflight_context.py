"""`PreflightContext` and `Budget`: what a check's `preflight` hook receives.

They live in the core, beside `Trainable`, because checks, the sanity runner and the callbacks'
overfit-a-batch all use them; `mlcheck.sanity.context` re-exports them.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlcheck.trainable import Trainable


@dataclass
class Budget:
    """Bounds one check's work. Steps are the real budget (findings must not depend on machine
    speed); `seconds` is only a safety net, and running out of it makes the result an INFO
    "inconclusive", never a warning.

    Raises:
        ValueError: `steps` is not a whole number >= 1, or `seconds` is not a finite number > 0.
    """

    steps: int = 100
    seconds: float = 10.0
    started: float = field(default_factory=time.perf_counter)
    #: Set when `expired()` first answers True: the check stopped early, so the runner turns
    #: its WARNING/ERROR findings into one INFO "inconclusive".
    cut_short: bool = False

    def __post_init__(self) -> None:
        # A NaN or infinite net would never fire, and 0 would cut every check at once.
        if isinstance(self.steps, bool) or not isinstance(self.steps, numbers.Integral) or self.steps < 1:
            raise ValueError(f"Budget(steps=...) must be a whole number of at least 1, got {self.steps!r}")
        if (
            isinstance(self.seconds, bool)
            or not isinstance(self.seconds, numbers.Real)
            or not math.isfinite(self.seconds)
            or self.seconds <= 0
        ):
            raise ValueError(f"Budget(seconds=...) must be a finite number above 0, got {self.seconds!r}")

    def expired(self) -> bool:
        if time.perf_counter() - self.started > self.seconds:
            self.cut_short = True
        return self.cut_short

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def restart(self) -> Budget:
        return Budget(self.steps, self.seconds)


@dataclass
class PreflightContext:
    """Shared state of one pre-flight run.

    Attributes:
        trainable: the model under test (checks train only on `trainable.clone()`).
        budget: the per-check budget.
        cache: results shared between checks (e.g. the learning-rate range test serves both
            `lr-too-high` and `lr-too-low`); use `memo`.
        info: free-form facts from discovery (e.g. {"target": "model.py:mlcheck_target"}).
    """

    trainable: Trainable
    budget: Budget = field(default_factory=Budget)
    cache: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]
