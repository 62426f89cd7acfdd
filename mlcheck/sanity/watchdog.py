"""Wall-clock safety nets around the user's code: no stage of `mlcheck sanity` may hang.

Every stage that runs the user's code (importing model.py, building the target, the first
forward pass, loss and training step, reading the data, each check) runs inside `stage()`. Its
net is a SIGALRM timer: an endless Python loop, or a blocking wait (a queue `get`, a lock, a
`sleep`), is interrupted there and becomes a `StageTimeout` naming the stage and the file. The
timer works in the main thread of a Unix process only; elsewhere the caller's process is never
stopped from the outside, so `mlcheck.sanity.run` is bounded only where SIGALRM is available.

The caller's own SIGALRM handler and timer are put back when a stage ends, exception or not,
with the time the caller's timer had left (minus the time spent). The command runs the work in
a child process (`mlcheck.sanity.supervisor`) that this module tells, through `listener`, which
stage runs and for how long: a stage stuck where no signal reaches (C code that never returns to
Python) is ended from outside.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mlcheck.sanity.usercode import Interrupted, UserCodeError, user_traceback

#: The net of a stage of the user's code: this many times the budget's seconds, and at least the
#: seconds plus STAGE_GRACE (a first forward pass may compile or allocate). The checks' hard
#: limit is the same (`runner.HARD_LIMIT_*`): one rule for every stage.
STAGE_FACTOR = 3.0
STAGE_GRACE = 5.0
#: Importing model.py imports torch, Lightning or Keras too (10-20 s on a loaded machine), and
#: building its target may import more (torch's optimizers), so their net is this many times
#: the budget's seconds: 120 s at the default 10 s.
IMPORT_FACTOR = 12.0
#: Once fired, the timer fires again this often, in case the user's code swallows the first
#: interrupt (a bare `except:` in a retry loop).
REFIRE_SECONDS = 1.0

#: Told `announced(what, where, seconds)` when a stage begins and `None` when it ends; set by
#: the command's child process, which forwards it to its parent (`mlcheck.sanity.worker`).
listener: Callable[[Announced | None], None] | None = None


@dataclass(frozen=True)
class Announced:
    """A stage that began: what runs, in which file, and its net in seconds."""

    what: str
    where: str
    seconds: float

    def timeout_message(self) -> str:
        """ "model.py: the first forward pass did not return within 30 s" """
        return f"{self.where}: {self.what} did not return within {_seconds(self.seconds)}"


@contextlib.contextmanager
def announce(what: str, where: str, seconds: float) -> Iterator[Announced]:
    """Tells `listener` (when set) that a stage runs; no net of its own."""
    stage = Announced(what, where, seconds)
    if listener is not None:
        listener(stage)
    try:
        yield stage
    finally:
        if listener is not None:
            listener(None)


def stage_seconds(budget_seconds: float) -> float:
    """The net of a stage of the user's code for a per-check budget of `budget_seconds`."""
    return max(STAGE_FACTOR * budget_seconds, budget_seconds + STAGE_GRACE)


def import_seconds(budget_seconds: float) -> float:
    """The net of importing model.py for a per-check budget of `budget_seconds`."""
    return max(IMPORT_FACTOR * budget_seconds, stage_seconds(budget_seconds))


class StageTimeout(UserCodeError, TimeoutError):
    """A stage of the user's code did not return within its safety net (an endless loop, a data
    loader that blocks). A `mlcheck.errors.BadInput` (the command exits 2) and a `TimeoutError`;
    `user_traceback` shows where the user's code was when it was stopped."""


class Alarm:
    """Raises `Interrupted` in the main thread after `seconds`, then every REFIRE_SECONDS until the
    block ends; restores the caller's SIGALRM handler and timer after. A no-op where SIGALRM
    cannot be used (not the main thread, no setitimer, a handler installed from C that could not
    be put back), or when the caller's own timer would fire first anyway.

    `armed` says whether the net is in place."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = False
        self._closing = False
        self._saved: tuple[Any, float, float] | None = None
        self._started = 0.0

    def __enter__(self) -> Alarm:
        if not _usable():
            return self
        handler = signal.getsignal(signal.SIGALRM)
        delay, interval = signal.getitimer(signal.ITIMER_REAL)
        if handler is None or (0 < delay <= self.seconds):
            return self  # cannot put a C handler back; or the caller's timer comes first
        self._saved = (handler, delay, interval)
        self._started = time.monotonic()
        signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds, REFIRE_SECONDS)
        self.armed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self._closing = True
        if self._saved is None:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        handler, delay, interval = self._saved
        signal.signal(signal.SIGALRM, handler)
        if delay > 0:  # the caller's timer goes on with the time it had left
            left = delay - (time.monotonic() - self._started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), interval)
        self._saved = None

    def _fire(self, signum: int, frame: Any) -> None:
        if not self._closing:
            raise Interrupted("its time limit ran out")


def _usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stage(what: str, where: str, seconds: float, user_dirs: tuple[str, ...] = ()) -> Iterator[None]:
    """Runs a stage of the user's code under its safety net: past `seconds`, a `StageTimeout`
    "{where}: {what} did not return within {seconds} s", with the user's traceback of where it
    was stopped (`user_dirs`: folders of the user's code)."""
    with announce(what, where, seconds) as announced:
        try:
            with Alarm(seconds):
                yield
        except Interrupted as exc:
            raise StageTimeout(
                f"{announced.timeout_message()}. {TIMEOUT_HINT}",
                user_traceback(exc, user_dirs, raising_frame=False),
            ) from None


#: What a StageTimeout's message advises.
TIMEOUT_HINT = (
    "An endless loop, or a data loader that waits forever? If it is only slow, give it more "
    "time with --budget-seconds (budget=Budget(seconds=...) from Python)"
)


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 or value == math.floor(value) else f"{value:.1f} s"
