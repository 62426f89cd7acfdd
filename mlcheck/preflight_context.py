"""`PreflightContext` and `Budget`: what a check's `preflight` hook receives.

They live in the core, beside `Trainable`, because checks, the sanity runner and the callbacks'
overfit-a-batch all use them; `mlcheck.sanity.context` re-exports them.
"""

from __future__ import annotations

import bisect
import math
import numbers
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlcheck.trainable import Trainable

#: The hard limit of a check by default: this many times its `Budget.seconds` (30 s at the
#: default 10 s). mlcheck's own choice: 3x is the net every stage of the user's code gets.
LIMIT_FACTOR = 3.0
#: Steps measured before a projection is trusted: the first step may compile or allocate.
MEASURED_STEPS = 3
#: The share of a `StepTimeNet`'s limit a fitted try plans to use (`Budget.fitted_steps`): the
#: rest is kept for its last evaluation and for steps that slow down as the machine's load moves
FIT_SHARE = 0.9
#: A `StepTimeNet` cuts a check at this multiple of its limit: the steps measured on a loaded
#: machine vary by tens of percent from one to the next (2 shared cores here), so a try fitted to
#: `FIT_SHARE` of the limit can run past it by chance
NET_SLACK = 1.25


@dataclass
class StepTimeNet:
    """A safety net counted in the measured time of a training step, shared by the checks of
    one phase (the callbacks' train-start checks): together they may take at most `steps` times
    the median seconds of the training steps measured so far (`Budget.took_step(seconds)`),
    never less than `floor` seconds, counted from the `MEASURED_STEPS`-th measured step (what
    came before is paid once: copies, compilation; see `elapsed`). A training step of a copy of
    the model on a small batch does no more work than one of the run's own steps on its full
    batch (a subset of its rows, without the trainer's loop), so the phase costs at most about
    `steps` of the run's steps on a model whose step is slow; the floor keeps a small model's
    phase, whose steps cost less than the trainer's own loop around a step, from being cut by
    its net (and its verdicts from hanging on the machine's speed).

    Args:
        steps: the measured steps' time the phase may take. The callbacks: 100 (issue 13's
            target: overfit-a-batch at most the time of 100 of the run's own steps).
        floor: seconds the phase may always take.
    """

    steps: float
    floor: float
    #: the measured training steps' seconds, sorted (the median is read at every step)
    step_times: list[float] = field(default_factory=list)
    #: the limit a try was last fitted to (`Budget.fitted_steps`); 0 before
    granted: float = 0.0
    #: when the `MEASURED_STEPS`-th step was measured: the phase's time counts from there
    counting_from: float | None = None

    def add(self, seconds: float) -> None:
        bisect.insort(self.step_times, seconds)
        if self.counting_from is None and len(self.step_times) >= MEASURED_STEPS:
            self.counting_from = time.perf_counter()

    def step_seconds(self) -> float | None:
        """The median measured step, once `MEASURED_STEPS` are measured (the first steps of a
        copy may compile or allocate); else None."""
        times = self.step_times
        if len(times) < MEASURED_STEPS:
            return None
        middle = len(times) // 2
        return times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2

    def limit(self) -> float | None:
        """Seconds the phase may take: `steps` median steps, never below `floor`; None until
        the steps are measured."""
        per_step = self.step_seconds()
        return None if per_step is None else max(self.floor, self.steps * per_step)

    def elapsed(self) -> float:
        """The phase's time from its first `MEASURED_STEPS` steps on, those counted at the
        median: what came before them is paid once, whatever the steps cost (the copies made,
        the other checks' forward passes, and on JAX or TensorFlow their functions and the first
        steps' compiled: 20 s before the third step of a Keras JAX copy at load 10, whose steps
        then took 12 ms); 0 until then."""
        per_step = self.step_seconds()
        if self.counting_from is None or per_step is None:
            return 0.0
        return time.perf_counter() - self.counting_from + MEASURED_STEPS * per_step

    def over(self) -> bool:
        """Past the limit (never below one a try was fitted to: the median moves with the load),
        with `NET_SLACK`: a try fitted to the limit (`Budget.fitted_steps`) ends by `FIT_SHARE`
        of it, so the net cuts only a try that could not be fitted."""
        limit = self.limit()
        return limit is not None and self.elapsed() > NET_SLACK * max(limit, self.granted)


@dataclass
class Budget:
    """Bounds one check's work. Steps are the real budget (findings must not depend on machine
    speed); `seconds` is only a safety net, and running out of it makes the result an INFO
    "inconclusive", never a warning.

    The net scales with the measured step time: when `seconds` have passed, a check that counts
    its steps (`took_step`) and says how many it still plans (`expired(remaining)`) goes on
    while the time it has taken plus its measured seconds per step times the steps left stays
    within `limit` (`max_seconds`, 3x `seconds` by default), so a step budget that is cheap to
    finish is finished on a slow machine instead of being cut; until `MEASURED_STEPS` steps
    are measured it goes on to measure them. Past `limit` nothing goes on.

    Args:
        steps: training steps a check may take. Default 100.
        seconds: the safety net, in seconds. Default 10.
        max_seconds: the hard limit up to which a projected finish may extend the net.
            Default None: `LIMIT_FACTOR` x `seconds`. Set it to `seconds` for a fixed net.

    Raises:
        ValueError: `steps` is not a whole number >= 1, `seconds` (or `max_seconds`) is not a
            finite number > 0, or `max_seconds` is below `seconds`.
    """

    steps: int = 100
    seconds: float = 10.0
    max_seconds: float | None = None
    started: float = field(default_factory=lambda: time.perf_counter())  # read at call time: clocks in tests
    #: Set when `expired()` first answers True: the check stopped early, so the runner turns
    #: its WARNING/ERROR findings into one INFO "inconclusive".
    cut_short: bool = False
    #: training steps counted by `took_step` (they give the measured step time)
    steps_taken: int = 0
    #: seconds after `started` at which the net cut in (None: it did not)
    cut_after: float | None = None
    #: the finish time (seconds after `started`) projected when the net cut in (None: no
    #: projection could be made: the check did not count its steps, or too few were measured)
    projected: float | None = None
    #: (1-minute load average, CPU cores) when the net cut in, where the system tells them
    load: tuple[float, int] | None = None
    #: a net in measured step times shared with the other checks of a phase (None: none)
    step_net: StepTimeNet | None = None
    #: set when `step_net` cut the check (its limit in seconds, for the finding's words)
    step_net_limit: float | None = None

    def __post_init__(self) -> None:
        # A NaN or infinite net would never fire, and 0 would cut every check at once.
        if isinstance(self.steps, bool) or not isinstance(self.steps, numbers.Integral) or self.steps < 1:
            raise ValueError(f"Budget(steps=...) must be a whole number of at least 1, got {self.steps!r}")
        _check_seconds("seconds", self.seconds)
        if self.max_seconds is not None:
            _check_seconds("max_seconds", self.max_seconds)
            if self.max_seconds < self.seconds:  # was raised to `seconds` without a word
                raise ValueError(
                    f"Budget(max_seconds={self.max_seconds:g}) is below seconds={self.seconds:g}: the hard limit "
                    f"cannot come before the safety net; give max_seconds >= seconds, or leave it out "
                    f"({LIMIT_FACTOR:g} x seconds)"
                )

    @property
    def limit(self) -> float:
        """The hard limit in seconds: `max_seconds`, else `LIMIT_FACTOR` x `seconds` (never
        below `seconds`: a `max_seconds` below it is refused when the budget is made)."""
        limit = self.max_seconds if self.max_seconds is not None else LIMIT_FACTOR * self.seconds
        return max(limit, self.seconds)

    def took_step(self, seconds: float | None = None) -> None:
        """Counts one training step (the measured step time is the time taken per step);
        `seconds`, the step's own time, feeds `step_net`."""
        self.steps_taken += 1
        if seconds is not None and self.step_net is not None:
            self.step_net.add(seconds)

    def step_seconds(self) -> float | None:
        """Measured seconds per step: the time taken so far over the steps counted (setup
        included, so the projection errs on the long side); None before the first step."""
        return self._taken() / self.steps_taken if self.steps_taken else None

    def fitted_steps(self, planned: int, least: int) -> int:
        """The steps a try that starts now may plan: `planned`, or fewer where `step_net` has
        measured its steps and `planned` would run past its limit: as many as the time left
        allows (`FIT_SHARE` of the limit) at the phase's own cost per measured step so far (its
        evaluations and copies included, so it errs on the short side), never fewer than
        `least`. Where fewer than `least` fit, `planned` (the net then cuts the try: an INFO
        "inconclusive", never a verdict from a try too short to tell)."""
        left = self._steps_left()
        if left is None:
            return planned
        fit = int(left)
        if fit < least or fit >= planned:
            return planned
        net = self.step_net
        net.granted = max(net.granted, net.limit())
        return fit

    def room_for(self, least: int) -> bool:
        """True when a try of `least` steps that starts now fits in the time left: always
        without a measured `step_net`; else as `fitted_steps` counts the time left."""
        left = self._steps_left()
        return left is None or left >= least

    def _steps_left(self) -> float | None:
        """The steps `FIT_SHARE` of `step_net`'s limit still allows at the phase's cost per
        measured step so far; None where nothing bounds them (no net, its steps not measured)."""
        net = self.step_net
        limit = net.limit() if net is not None else None
        if net is None or limit is None:
            return None
        elapsed = net.elapsed()
        return (FIT_SHARE * limit - elapsed) * len(net.step_times) / elapsed if elapsed > 0 else None

    def expired(self, remaining: int = 0) -> bool:
        """True when the check must stop now. `remaining`: the steps the check still plans to
        take (the one about to start included); with it the net scales with the measured step
        time (see the class docstring); without it, the net is `seconds`."""
        if self.cut_short:
            return True
        net = self.step_net
        if net is not None and net.over():
            self.cut_short, self.cut_after, self.step_net_limit = True, self.elapsed(), net.limit()
            self.load = machine_load()
            return True
        elapsed = self.elapsed()
        if elapsed <= self.seconds:
            return False
        per_step = self.step_seconds()
        projected = elapsed + per_step * remaining if per_step is not None and remaining > 0 else None
        if remaining > 0 and elapsed <= self.limit:
            if self.steps_taken < MEASURED_STEPS:
                return False  # the first steps are still being measured
            if projected is not None and projected <= self.limit:
                return False  # cheap to finish: finish
        self.cut_short, self.cut_after, self.projected = True, elapsed, projected
        self.load = machine_load()
        return True

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _taken(self) -> float:
        """Seconds the check ran: until the net cut in, else until now."""
        return self.cut_after if self.cut_after is not None else self.elapsed()

    @property
    def busy(self) -> bool:
        """Whether the machine was busy when the net cut in: more runnable processes than CPU
        cores (a 1-minute load average above the core count), so other work slowed each step."""
        return self.load is not None and self.load[0] > self.load[1]

    def busy_detail(self) -> str:
        """ "; the machine was busy (load average 7.9 on 2 CPU cores): other work slowed every
        step" when `busy`, else ""."""
        if not self.busy:
            return ""
        load, cores = self.load
        return f"; the machine was busy (load average {load:.1f} on {cores} CPU cores): other work slowed every step"

    def restart(self) -> Budget:
        return Budget(self.steps, self.seconds, self.max_seconds, step_net=self.step_net)

    def cut_detail(self) -> str:
        """Why the net cut in, with the numbers: " after 10.0 s: at 0.40 s a step (27 steps
        measured), finishing would take about 40 s in all, past its limit of 30 s"."""
        after = self._taken()
        net = self.step_net
        if self.step_net_limit is not None and net is not None:
            return (
                f" after {after:.2f} s: the train-start checks had taken {net.elapsed():.2f} s from their first "
                f"{MEASURED_STEPS} training steps on, past the time of {net.steps:g} of those steps "
                f"({net.step_seconds():.2g} s a step, median of {len(net.step_times)} measured; never less than "
                f"{net.floor:g} s)"
            )
        if self.projected is None and after > self.limit:
            return f" after {after:.1f} s (past its limit of {self.limit:g} s)"
        if self.projected is None:
            return f" after {after:.1f} s (its safety net: {self.seconds:g} s)"
        return (
            f" after {after:.1f} s: at {self.step_seconds():.2g} s a step ({self.steps_taken} steps "
            f"measured), finishing would take about {self.projected:.0f} s in all, past its limit of "
            f"{self.limit:g} s"
        )

    def cut_evidence(self) -> dict[str, Any]:
        """The numbers behind `cut_detail`, for a finding's evidence."""
        evidence: dict[str, Any] = {
            "seconds": round(self._taken(), 2),
            "budget_seconds": self.seconds,
            "budget_steps": self.steps,
            "limit_seconds": self.limit,
            "steps_taken": self.steps_taken,
        }
        if self.projected is not None:
            evidence["step_seconds"] = round(self.step_seconds() or 0.0, 4)
            evidence["projected_seconds"] = round(self.projected, 1)
        if self.step_net_limit is not None and self.step_net is not None:
            evidence["step_net_seconds"] = round(self.step_net_limit, 3)
            evidence["step_net_steps"] = self.step_net.steps
            evidence["median_step_seconds"] = round(self.step_net.step_seconds() or 0.0, 5)
        if self.load is not None:
            evidence["load_average"], evidence["cpu_count"] = round(self.load[0], 2), self.load[1]
        return evidence

    def more_time(self, interface: str) -> str:
        """What to set, in `interface`'s words, for the check to finish next time."""
        if self.step_net_limit is not None:  # lifted where the steps are given: the user chose them
            return knob(interface, "steps", self.steps)
        if self.projected is not None:
            wanted = max(math.ceil(1.5 * self.projected), math.ceil(self.limit) + 1)
            return knob(interface, "max_seconds", wanted)
        return knob(interface, "seconds", f"{LIMIT_FACTOR * self.seconds:g}")


def machine_load() -> tuple[float, int] | None:
    """(1-minute load average, CPU cores), or None where the system does not tell (Windows)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    return load, os.cpu_count() or 1


def _check_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Budget({name}=...) must be a finite number above 0, got {value!r}")


#: The interfaces a pre-flight check runs under, and how each spells the budget's settings, so
#: that a finding's hint names the knob of the interface the user is in: the `mlcheck sanity`
#: command ("cli"), `mlcheck.sanity.run` ("api"), the callbacks' train-start checks ("live",
#: their constructor arguments; their net is fixed, so more time is `overfit_seconds`).
KNOBS: dict[str, dict[str, str]] = {
    "cli": {"steps": "--budget-steps {}", "seconds": "--budget-seconds {}", "max_seconds": "--budget-max-seconds {}"},
    "api": {
        "steps": "budget=Budget(steps={})",
        "seconds": "budget=Budget(seconds={})",
        "max_seconds": "budget=Budget(max_seconds={})",
    },
    "live": {"steps": "overfit_steps={}", "seconds": "overfit_seconds={}", "max_seconds": "overfit_seconds={}"},
}


def knob(interface: str, name: str, value: Any) -> str:
    """The setting `name` ("steps", "seconds", "max_seconds") of the budget set to `value`, as
    `interface` ("cli", "api", "live") spells it: knob("cli", "steps", 400) == "--budget-steps 400"."""
    try:
        return KNOBS[interface][name].format(value)
    except KeyError:
        raise ValueError(
            f"unknown interface {interface!r} or budget setting {name!r}; interfaces: {sorted(KNOBS)}"
        ) from None


@dataclass
class PreflightContext:
    """Shared state of one pre-flight run.

    Attributes:
        trainable: the model under test (checks train only on `trainable.clone()`).
        budget: the per-check budget.
        cache: results shared between checks (e.g. the learning-rate range test serves both
            `lr-too-high` and `lr-too-low`); use `memo`.
        info: free-form facts from discovery (e.g. {"target": "model.py:mlcheck_target"}).
        interface: who runs the checks: "api" (`mlcheck.sanity.run`, default), "cli" (the
            `mlcheck sanity` command) or "live" (a callback at train start); hints name the
            budget's settings in its words (`knob`).
    """

    trainable: Trainable
    budget: Budget = field(default_factory=Budget)
    cache: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    interface: str = "api"

    def __post_init__(self) -> None:
        if self.interface not in KNOBS:
            raise ValueError(f"interface must be one of {sorted(KNOBS)}, got {self.interface!r}")

    def knob(self, name: str, value: Any) -> str:
        """The budget's setting `name` at `value`, as this context's interface spells it."""
        return knob(self.interface, name, value)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]
