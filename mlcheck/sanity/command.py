"""CLI glue of `mlcheck sanity PATH.py[:function]`.

Exit status: 0 clean, 1 findings at or above --fail-on (default error), 2 bad input (a missing
or broken model.py, no target or several, a model that fails on its first batch).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from mlcheck.cli_options import nonempty_path, selected_checks, split_ids
from mlcheck.errors import BadInput

# Loggers of frameworks that chat on stderr while mlcheck builds trainers and clones.
_CHATTY = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        help="model.py, or model.py:NAME for a function returning the target (or the model itself)",
    )
    parser.add_argument(
        "--budget-steps",
        type=_steps,
        default=None,
        metavar="N",
        help="training steps each check may take (default 100)",
    )
    parser.add_argument(
        "--budget-seconds",
        type=_seconds,
        default=None,
        metavar="S",
        help="wall-clock safety net per check (default 10); a check cut short is reported as "
        "inconclusive, never as a problem",
    )
    parser.add_argument(
        "--budget-max-seconds",
        type=_seconds,
        default=None,
        metavar="S",
        help="hard limit per check (default 3x --budget-seconds; not below it): past the safety net a check "
        "finishes its steps when its measured step time says it can within this",
    )


def _steps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:  # nan or inf would never fire, 0 cuts everything
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, got {text!r}")
    return value


def run(args: argparse.Namespace, console: Any) -> int:
    """The command: the options are checked here, then the work runs in a child process that
    this one watches (`mlcheck.sanity.supervisor`), so that nothing the user's code does (an
    endless loop, a blocking read, `os._exit`) can hang the command or pass for a clean run."""
    from mlcheck.sanity.supervisor import supervise

    nonempty_path(args, "the Python file that builds the model")
    _check_budget(args)
    selected_checks(args)  # a bad --select or [tool.mlcheck] is reported before model.py runs
    return supervise(args)


def _check_budget(args: argparse.Namespace) -> None:
    """A hard limit below the safety net was raised to it without a word (`Budget`)."""
    from mlcheck.preflight_context import Budget

    limit = getattr(args, "budget_max_seconds", None)
    seconds = args.budget_seconds if args.budget_seconds is not None else Budget.seconds
    if limit is not None and limit < seconds:
        given = "" if args.budget_seconds is not None else " (the default)"
        raise BadInput(
            f"--budget-max-seconds {limit:g} is below --budget-seconds {seconds:g}{given}: the hard limit cannot "
            "come before the safety net; raise --budget-max-seconds or lower --budget-seconds"
        )


def run_here(args: argparse.Namespace, console: Any) -> int:
    """The command's work, in this process (the child of `run`)."""
    from mlcheck.cli_options import console as make_console
    from mlcheck.report import exit_status, json_report
    from mlcheck.sanity import Budget
    from mlcheck.sanity import run as run_checks
    from mlcheck.sanity.usercode import UserCodeError

    checks, fail_on = selected_checks(args)
    budget = Budget(
        steps=args.budget_steps if args.budget_steps is not None else Budget.steps,
        seconds=args.budget_seconds if args.budget_seconds is not None else Budget.seconds,
        max_seconds=getattr(args, "budget_max_seconds", None),
    )

    err = make_console(stderr=True)
    try:
        # stdout carries only mlcheck's table or JSON: whatever model.py and the frameworks
        # print goes to stderr.
        with _quiet_frameworks(), contextlib.redirect_stdout(sys.stderr), _progress(err) as progress:
            result = run_checks(
                args.path,
                checks=checks,
                select=split_ids(args.select) or None,
                budget=budget,
                progress=progress,
                interface="cli",
            )
    except UserCodeError as exc:
        _print_user_error(err, exc)
        return 2

    if args.json:
        sys.stdout.write(json_report([(None, f) for f in result.findings], **result.to_dict()) + "\n")
    else:
        _render(console, result)
    return exit_status(result.findings, fail_on)


def _render(console: Any, result: Any) -> None:
    from rich.text import Text

    from mlcheck.report import render_findings

    render_findings(console, [(None, f) for f in result.findings], title=f"mlcheck sanity: {result.target}")
    for c in result.checks:
        if c.status == "inconclusive":
            console.print(
                Text(f"{c.check}: {c.detail}; result inconclusive (its finding says what to set).", style="yellow")
            )
        elif c.status == "failed":
            console.print(
                Text(
                    f"{c.check}: the check itself failed ({c.detail}) and was skipped; "
                    "this is a bug in mlcheck, not in your model.",
                    style="magenta",
                )
            )
    for note in result.notes:
        console.print(Text(f"note: {note}", style="dim"))
    slowest = sorted(result.checks, key=lambda c: -c.seconds)[:3]
    console.print(
        Text(
            f"{len(result.checks)} checks in {result.seconds:.1f} s "
            f"(import of the model {result.import_seconds:.1f} s; slowest: "
            + ", ".join(f"{c.check} {c.seconds:.1f} s" for c in slowest)
            + ").",
            style="dim",
        )
    )


def _print_user_error(err: Any, exc: Any) -> None:
    from rich.text import Text

    err.print(Text.assemble(("mlcheck: error: ", "bold red"), str(exc)), soft_wrap=True)
    if exc.user_traceback:
        err.print(Text("---- your code's traceback (not mlcheck's) ----", style="bold"))
        err.print(Text(exc.user_traceback), soft_wrap=True)
        err.print(Text("---- end of your code's traceback ----", style="bold"))


@contextlib.contextmanager
def _quiet_frameworks() -> Iterator[None]:
    """Framework info logs and warnings are noise next to mlcheck's table; restore after."""
    saved = {}
    for name in _CHATTY:
        log = logging.getLogger(name)
        saved[name] = log.level
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _progress(err: Any) -> Iterator[Any]:
    """A rich progress bar on stderr while the checks run, only when stderr is a terminal."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]mlcheck sanity[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),  # none while importing ("0/None" before)
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task("importing the model", total=None, count="")

    def update(done: int, total: int, current: str | None) -> None:
        bar.update(task, completed=done, total=total, description=current or "done", count=f"{done}/{total}")

    with bar:
        yield update
