"""`mlcheck sanity`: pre-flight checks over the `Trainable` interface, in seconds, before a
long job. See `run()`, and `docs/sanity.md`.

`mlcheck.sanity(target)` is the same call as `mlcheck.sanity.run(target)`: the package is
callable (see `mlcheck.callable_package`), and `mlcheck.sanity.sanity` is another name for `run`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

from mlcheck.callable_package import CallablePackage
from mlcheck.checks.base import Check
from mlcheck.preflight_context import KNOBS, Budget, PreflightContext
from mlcheck.sanity.runner import CheckRun, Progress, SanityResult

__all__ = ["Budget", "CheckRun", "PreflightContext", "SanityResult", "run", "sanity"]


def run(
    target: Any,
    *,
    checks: Sequence[Check] | None = None,
    select: Iterable[str] | None = None,
    suppress: Iterable[str] = (),
    budget: Budget | None = None,
    progress: Progress | None = None,
    interface: str = "api",
) -> SanityResult:
    """Runs the pre-flight checks on a model and its data, without changing either.

    Args:
        target: what to check: a path to a model.py ("model.py" or "model.py:function"),
            a dict like `mlcheck_target()` returns (`model`, `train_data`, optionally
            `val_data`, `loss`, `optimizer`), or a `mlcheck.trainable.Trainable`.
        checks: check instances to run. Default: every default check that has a pre-flight
            part (`preflight` or `on_batch`).
        select: check ids to run instead of the defaults (ignored when `checks` is given).
        suppress: check ids not to run.
        budget: per-check budget: `Budget(steps=100, seconds=10.0)` by default. Steps bound the
            work; seconds are only a safety net (running out gives an INFO "inconclusive"),
            which a check whose measured steps would finish within `Budget.limit` (3x the
            seconds, or `max_seconds`) passes to finish its steps. The stages of your code
            around the checks have nets derived from it: importing model.py 12x the seconds,
            building the target, the first batch, forward pass, loss and step and reading the
            data 3x (at least the seconds + 5).
        progress: called as `progress(done, total, check_id)` before each check and with
            `check_id=None` at the end.
        interface: how findings' hints name the budget's settings: "api" (`Budget(...)`,
            default) or "cli" (`--budget-...` options; the `mlcheck sanity` command passes it).

    Returns:
        A `SanityResult`: `.findings`, `.inconclusive`, `.timings`, `.failed`, `.notes`.

    Raises:
        mlcheck.errors.BadInput: the target cannot be found or built, or the model fails
            on its first batch (`mlcheck.sanity.usercode.UserCodeError`, with the user's
            traceback in `.user_traceback`).
        mlcheck.sanity.watchdog.StageTimeout: a stage of your code did not return within its net
            (an endless loop, a data loader that blocks); also a `TimeoutError` and a
            `BadInput`. The nets use SIGALRM, so they work when called from the main thread
            on Unix; the caller's own SIGALRM handler and timer are restored afterwards.

    Example:
        >>> result = mlcheck.sanity.run("model.py")                   # doctest: +SKIP
        >>> [f.check for f in result.findings]                        # doctest: +SKIP
        []
    """
    from mlcheck import options as opt
    from mlcheck.config import ConfigError, build_checks
    from mlcheck.sanity import discovery, runner

    if interface not in KNOBS:
        raise ValueError(f"interface must be one of {sorted(KNOBS)}, got {interface!r}")
    checks, select, suppress = opt.selection(checks, select, suppress)
    suppress = set(suppress)
    opt.instance("budget", budget, Budget, optional=True)
    if checks is None:
        try:
            checks = build_checks(list(select or ()), suppress)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    else:
        wanted = set(select) if select else None
        checks = [c for c in checks if c.id not in suppress and (wanted is None or c.id in wanted)]
    runnable = [c for c in checks if type(c).judges_before_training()]
    idle = [c.id for c in checks if c not in runnable]
    found = discovery.resolve(target, (budget or Budget()).seconds)
    result = runner.run(found, runnable, budget, progress, interface=interface)
    if select and idle:
        result.notes.append(f"not run (they watch training and have no pre-flight part): {', '.join(idle)}")
    return result


# The name this function had first: `from mlcheck.sanity import sanity` keeps working.
sanity = run

# `mlcheck.sanity(target)` calls `run`; see mlcheck/callable_package.py for why.
sys.modules[__name__].__class__ = CallablePackage
