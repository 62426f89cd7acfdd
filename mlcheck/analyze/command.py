"""CLI glue of `mlcheck analyze`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from mlcheck.analyze.search import SKIPPED_HELP
from mlcheck.cli_options import nonempty_path, selected_checks
from mlcheck.errors import BadInput
from mlcheck.findings import json_safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        help="TensorBoard log dir (any depth), event file, Keras CSVLogger file, Keras History saved as "
        "JSON or text (json.dump(history.history, f)), Lightning metrics.csv, a Hugging Face "
        "Trainer's trainer_state.json (or its output_dir), an Ultralytics YOLO results.csv, detectron2's "
        "metrics.json, MMDetection's *.log.json or MMEngine's scalars.json, an MLflow mlruns/ folder, a wandb/ "
        "folder or run-<id>.wandb file, a fastai history.csv, a timm summary.csv, or a "
        "nanoGPT-style printed log (iter N: loss X). In a folder, " + SKIPPED_HELP,
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
    with _Progress(err, root=args.path) as progress:
        try:
            result = analyze_logs(
                args.path,
                checks=checks,
                select=select or None,
                suppress=suppress,
                mapping=mapping,
                progress=progress.update,
                replay_progress=progress.replay,
                search_progress=progress.search,
                examine_progress=progress.examine,
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
        for line in _info_lines(result.runs):
            console.print(f"[dim]note: {escape(one_line(line))}[/]", highlight=False, soft_wrap=True)
        for line in _not_searched_lines(result, args.path):
            console.print(f"[dim]note: {escape(one_line(line))}[/]", highlight=False, soft_wrap=True)
    return exit_status((f for _, f in findings), fail_on)


# control characters (a newline in a file name) shown escaped: one problem, one line
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), 127]}


def one_line(message: str) -> str:
    return message.translate(_CONTROL)


#: Runs that must share a note before it is said once for them all.
SHARED_NOTE_RUNS = 3


def _info_lines(runs: list[Any]) -> list[str]:
    """Each run's notes, in order; a note that `SHARED_NOTE_RUNS` or more runs share word for
    word after their own path (20 versions of one program under `lightning_logs/`, each "the
    training loss ... has 50 logged point(s): too few ...") is said once, where its first run says
    it, naming the runs: twenty lines that differ by a version number hid the others."""
    said: list[tuple[str, str | None]] = []  # (line, the text after the run's path, if it starts so)
    for run in runs:
        for line in run.info:
            head, sep, text = line.partition(": ")
            own = sep and (head == run.path or head.startswith(f"{run.path} (fit "))
            said.append((line, text if own else None))
    sharers: dict[str, list[str]] = {}
    for line, text in said:
        if text is not None:
            sharers.setdefault(text, []).append(line.partition(": ")[0])
    out: list[str] = []
    for line, text in said:
        heads = sharers.get(text, []) if text is not None else []
        if len(heads) < SHARED_NOTE_RUNS:
            out.append(line)
        elif heads[0] == line.partition(": ")[0]:  # the first of them: said once for all
            more = f", and {len(heads) - SHARED_NOTE_RUNS} more" if len(heads) > SHARED_NOTE_RUNS else ""
            out.append(f"{len(heads)} runs ({', '.join(heads[:SHARED_NOTE_RUNS])}{more}): {text}")
    return out


def _not_searched_lines(result: Any, root: str) -> list[str]:
    """The folders below PATH that were not searched: the hidden ones no known tool owns by
    name (they may hold runs), then a count of the others (`.cache`, `.local`, `.git`, packages,
    environments), which were passed over without a word although a run can be written there."""
    lines = []
    if result.not_searched:
        hidden = _some(result.not_searched, root)
        lines.append(f"hidden folders not searched: {hidden}; give one as PATH to read the runs it holds")
    others = result.other_not_searched
    if others:
        other = " other" if result.not_searched else ""
        lines.append(
            f"{len(others):,}{other} folder(s) not searched ({_some(others, root)}: tools' hidden folders, "
            "installed packages, Python environments); give one as PATH to read the runs it holds"
        )
    return lines


def _some(paths: list[str], root: str, shown: int = 3) -> str:
    """The first `shown` of `paths`, relative to `root` where they are below it, and how many more."""
    import os

    def name(path: str) -> str:
        try:
            rel = os.path.relpath(path, root)
        except ValueError:
            return path
        return path if rel.startswith("..") else rel

    more = f", and {len(paths) - shown:,} more" if len(paths) > shown else ""
    return ", ".join(name(p) for p in paths[:shown]) + more


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
    """Progress on stderr once the work has taken `AFTER_S` seconds: the folders and files
    searched, the bytes read so far, and the epochs of the run being replayed through the
    checks. On a terminal, a rich display, transient: it is gone when the command prints.
    Elsewhere (a CI log, a redirect) a plain line, again every `PLAIN_EVERY_S` seconds while
    the work lasts: `mlcheck analyze ~` searched silently for minutes. stdout (the table or the
    JSON) never holds any of it.

    Args:
        console: the stderr console it draws on.
        enabled: whether to draw the rich display (else plain lines). Default: whether stderr
            is a terminal.
        after: seconds before it first shows (tests pass 0).
        root: the PATH searched, as the user gave it.
    """

    #: Work shorter than this shows no progress (a log read and judged in a second or two
    #: flickers a bar for nothing).
    AFTER_S = 2.0
    #: Seconds between two plain lines (a CI log keeps every one).
    PLAIN_EVERY_S = 10.0

    def __init__(self, console: Any, enabled: bool | None = None, after: float = AFTER_S, root: str = "") -> None:
        self.console = console
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.after = after
        self.root = root
        self.start = time.monotonic()
        self.bar: Any = None
        self.read_task: Any = None
        self.replay_task: Any = None
        self.search_task: Any = None
        self.examine_task: Any = None
        self.replaying: str | None = None
        self.said_at: float | None = None  # when the last plain line was written

    def __enter__(self) -> _Progress:
        return self

    def search(self, folders: int, seen: int, found: int) -> None:
        """Searching PATH: `folders` listed, `seen` files in them, `found` of them named like logs."""
        from rich.markup import escape

        what = escape(f"searching {self.root}: {folders:,} folders, {seen:,} files, {found:,} named like logs")
        if not self.enabled:
            self._plain(f"{what} (Ctrl-C stops)")
            return
        bar = self._bar()
        if bar is None:
            return
        if self.search_task is None:
            self.search_task = bar.add_task(what, total=None)
        bar.update(self.search_task, description=what)

    def examine(self, done: int, total: int) -> None:
        """Telling logs from other files among those the search found: `done` of `total` (a
        CSV's header read: a log or a data set). ~7 s for `/`, which showed nothing."""
        what = f"examining the files named like logs: {done:,} of {total:,}"
        if not self.enabled:
            self._plain(what)
            return
        bar = self._bar()
        if bar is None:
            return
        if self.examine_task is None:
            self._drop("search_task")  # the search is over
            self.examine_task = bar.add_task("examining the files named like logs", total=total)
        bar.update(self.examine_task, completed=done, total=total)

    def update(self, done: int, total: int) -> None:
        """Reading: `done` of `total` bytes."""
        if not self.enabled:
            self._plain(f"reading logs: {done / max(total, 1):.0%} of {total / 2**20:,.1f} MiB")
            return
        bar = self._bar()
        if bar is None:
            return
        if self.read_task is None:
            self._drop("search_task")  # the search and the examining are over
            self._drop("examine_task")
            self.read_task = bar.add_task("reading logs", total=total)
        bar.update(self.read_task, completed=done, total=total)

    def replay(self, run_name: str, done: int, total: int) -> None:
        """Replaying run `run_name`: `done` of `total` epochs through the checks."""
        from rich.markup import escape

        if not self.enabled:
            self._plain(f"checking {escape(run_name)}: epoch {done:,} of {total:,}")
            return
        bar = self._bar()
        if bar is None:
            return
        if self.replaying != run_name:
            if self.replay_task is not None:
                bar.remove_task(self.replay_task)
            self.replay_task = bar.add_task(f"checking {escape(run_name)} (epochs)", total=total)
            self.replaying = run_name
        bar.update(self.replay_task, completed=done, total=total)

    def _drop(self, name: str) -> None:
        """Removes the display's task held in attribute `name`, if any."""
        task = getattr(self, name)
        if task is not None and self.bar is not None:
            self.bar.remove_task(task)
        setattr(self, name, None)

    def _plain(self, what: str) -> None:
        """`what` (rich markup) as a line, when `after` seconds have passed since the start and
        `PLAIN_EVERY_S` since the last line."""
        now = time.monotonic()
        if self.said_at is None and now - self.start < self.after:
            return
        if self.said_at is not None and now - self.said_at < self.PLAIN_EVERY_S:
            return
        self.console.print(f"mlcheck: {what}", highlight=False, soft_wrap=True)
        self.said_at = now

    def _bar(self) -> Any:
        """The progress display, started on the first call after `after` seconds; None before,
        or when not enabled."""
        if self.bar is None:
            if not self.enabled or time.monotonic() - self.start < self.after:
                return None
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
        return self.bar

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
