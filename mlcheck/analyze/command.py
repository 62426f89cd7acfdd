"""CLI glue of `mlcheck analyze`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from mlcheck.cli_options import nonempty_path, selected_checks
from mlcheck.errors import BadInput
from mlcheck.findings import json_safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        help="TensorBoard log dir (any depth), event file, Keras CSVLogger file, Keras History saved as "
        "JSON or text (json.dump(history.history, f)) or Lightning metrics.csv",
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="TAG=ROLE",
        help="treat a tag or CSV column (glob patterns allowed) as ROLE: train_loss, "
        "epoch_train_loss, val_loss, lr, epoch, train_metric[:NAME], val_metric[:NAME], ignore",
    )


def parse_map(items: list[str]) -> dict[str, str]:
    """["objective=train_loss"] -> {"objective": "train_loss"}; BadInput names a bad item."""
    from mlcheck.analyze.tags import parse_role

    out = {}
    for item in items:
        tag, sep, role = item.rpartition("=")
        if not sep or not tag.strip() or not role.strip():
            raise BadInput(f"--map expects TAG=ROLE, got {item!r}")
        try:
            parse_role(role)
        except ValueError as exc:
            raise BadInput(f"--map {item!r}: {exc}") from None
        tag, role = tag.strip(), role.strip()
        if out.get(tag, role) != role:  # which would win is no guess to make silently
            raise BadInput(f"--map gives {tag!r} two roles: {out[tag]!r} and {role!r}")
        out[tag] = role
    return out


def run(args: argparse.Namespace, console: Any) -> int:
    from rich.markup import escape

    from mlcheck.analyze import run as analyze_logs
    from mlcheck.report import exit_status, render_findings

    nonempty_path(args, "a log directory, an event file or a CSV log (`.` for this directory)")
    checks, fail_on = selected_checks(args)
    select, suppress = _selection(args)
    mapping = parse_map(args.map)
    # a check that fails on a run is one line below; the monitor's log record of it carries a
    # traceback meant for library users, which Python would otherwise print here
    logging.getLogger("mlcheck").addHandler(logging.NullHandler())
    err = _stderr_console()
    with _Progress(err) as progress:
        try:
            result = analyze_logs(
                args.path,
                checks=checks,
                select=select or None,
                suppress=suppress,
                mapping=mapping,
                progress=progress.update,
            )
        except (BadInput, ValueError) as exc:
            raise BadInput(one_line(str(exc))) from None
    # each reason and note names its path: one line per problem, the runs beside it analysed
    for _, reason in result.unreadable:
        err.print(f"[yellow]mlcheck: skipped[/] {escape(one_line(reason))}", highlight=False, soft_wrap=True)
    for run_result in result.runs:
        for note in run_result.notes:
            err.print(f"[yellow]mlcheck:[/] {escape(one_line(note))}", highlight=False, soft_wrap=True)
    findings = result.findings
    if args.json:
        print(json.dumps(json_safe(result.to_dict()), indent=2, allow_nan=False))
    else:
        for run_result in result.runs:
            for check_id, error in run_result.check_errors.items():
                err.print(
                    f"mlcheck: check {check_id} failed on {escape(run_result.name)} and was skipped: {escape(error)}",
                    highlight=False,
                    soft_wrap=True,
                )
        render_findings(
            console,
            findings,
            title=f"mlcheck analyze {args.path}",
            show_run=len(result.runs) > 1 or None,
            sources=result.sources,
        )
        read = ", ".join(f"{r.name} ({_describe(r)})" for r in result.runs)
        console.print(f"[dim]Read {len(result.runs)} run(s): {escape(read)}[/]", highlight=False)
        for run_result in result.runs:
            for line in run_result.info:
                console.print(f"[dim]note: {escape(one_line(line))}[/]", highlight=False, soft_wrap=True)
    return exit_status((f for _, f in findings), fail_on)


# control characters (a newline in a file name) shown escaped: one problem, one line
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), 127]}


def one_line(message: str) -> str:
    return message.translate(_CONTROL)


def _describe(run: Any) -> str:
    parts = [run.format]
    if run.steps is not None:
        parts.append(f"to step {run.steps}")
    if run.epochs is not None:
        parts.append(f"{run.epochs} epochs")
    if run.findings_file is not None:
        parts.append(f"{len(run.live)} finding(s) recorded live")
    if run.same_curves_in:  # a second logger's copy of the same fit
        parts.append(f"the same curves as {', '.join(run.same_curves_in)}")
    return ", ".join(parts)


def _selection(args: argparse.Namespace) -> tuple[list[str] | None, list[str]]:
    """(select, suppress) of the command line and [tool.mlcheck], which also apply to the
    findings recorded live (`selected_checks` has already checked them)."""
    from mlcheck.cli_options import split_ids
    from mlcheck.config import load_config

    config = load_config(Path(args.config) if args.config else None)
    return split_ids(args.select) or config.select, [*split_ids(args.suppress), *config.suppress]


def _stderr_console():
    from mlcheck.cli_options import console

    return console(stderr=True)


class _Progress:
    """A rich progress bar on stderr while reading, only when stderr is a terminal and the
    logs are big enough for it to matter."""

    MIN_BYTES = 8 << 20

    def __init__(self, console: Any) -> None:
        self.console = console
        self.bar = None
        self.task = None
        self.enabled = sys.stderr.isatty()

    def __enter__(self) -> _Progress:
        return self

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total < self.MIN_BYTES:
            return
        if self.bar is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            self.bar = Progress(
                "reading logs",
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("read", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
