"""The `mlcheck` command: `sanity`, `analyze`, `checks`, `explain`.

Exit status: 0 clean, 1 findings at or above --fail-on (default error), 2 bad input, 74 the
output could not be written (a full disk), 130 interrupted, 141 stdout closed before the output
was written (`mlcheck ... | head -1`).

Imports go one way: this module imports the commands (`mlcheck.sanity.command`,
`mlcheck.analyze.command`); they take their shared options from `mlcheck.cli_options` and never
import this module.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from mlcheck import __version__

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

#: Exit status after Ctrl-C (SIGINT): 128 + 2, what a shell reports for a command it interrupted.
EXIT_INTERRUPTED = 130


def _cmd_checks(args: argparse.Namespace, console) -> int:
    import json

    from rich.table import Table

    from mlcheck.checks import registry

    rows = [
        {
            "id": check_id,
            "family": cls.family,
            "severity": cls.severity.value,
            "default": cls.default,
            "summary": cls.doc().get("summary", ""),
            "file": cls.__module__.replace(".", "/") + ".py",
        }
        for check_id, cls in registry().items()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not console.is_terminal:  # piped: one line per check, for grep and narrow pagers
        for row in rows:
            default = "default" if row["default"] else "opt-in"
            print(f"{row['id']}\t{row['family']}\t{row['severity']}\t{default}\t{row['summary']}")
        return 0
    table = Table(title="mlcheck checks")
    for column in ("id", "family", "severity", "default"):
        table.add_column(column, no_wrap=True)
    table.add_column("summary", ratio=1, overflow="fold")
    for row in rows:
        table.add_row(row["id"], row["family"], row["severity"], "yes" if row["default"] else "no", row["summary"])
    console.print(table)
    return 0


def _cmd_explain(args: argparse.Namespace, console) -> int:
    from rich.markdown import Markdown

    from mlcheck.checks import get_check
    from mlcheck.docs import check_markdown
    from mlcheck.errors import BadInput

    try:
        cls = get_check(args.id)
    except KeyError as exc:
        raise BadInput(exc.args[0]) from None
    console.print(Markdown(check_markdown(cls)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from mlcheck.analyze import command as analyze_command
    from mlcheck.cli_options import add_common
    from mlcheck.sanity import command as sanity_command

    parser = argparse.ArgumentParser(
        prog="mlcheck",
        description="Catch broken training runs early. Exit status: 0 clean, 1 findings at or "
        "above --fail-on, 2 bad input, 74 output not written (full disk), 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"mlcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    status = (
        "Exit status: 0 clean, 1 findings at or above --fail-on, 2 bad input, 74 output not written (full disk), "
        "130 interrupted."
    )
    p = sub.add_parser(
        "sanity",
        help="pre-flight checks of a model.py before a long job",
        description="Pre-flight checks of a model.py before a long job, in seconds: PATH is imported (training "
        'belongs under `if __name__ == "__main__":`), its model and data are found, and a few training steps '
        f"are run on copies. {status}",
    )
    add_common(p)
    sanity_command.add_arguments(p)
    p.set_defaults(func=sanity_command.run)

    p = sub.add_parser(
        "analyze",
        help="diagnose existing logs (TensorBoard, Keras/Lightning CSV, Keras History and per-epoch records "
        "saved as JSON, Hugging Face trainer_state.json, "
        "YOLO results.csv, detectron2/MMDetection JSON, MLflow, wandb, fastai/timm CSV, nanoGPT-style printouts)",
        description="Diagnose existing logs: the curves under PATH are replayed through the same checks the "
        f"callbacks run live, and the findings recorded live (findings.jsonl) are shown beside them. {status}",
    )
    add_common(p)
    analyze_command.add_arguments(p)
    p.set_defaults(func=analyze_command.run)

    p = sub.add_parser(
        "checks",
        help="list the check catalogue",
        description="List the check catalogue: each check's id, family, severity, whether it is on by default "
        "and what it detects. `mlcheck explain ID` prints one check's documentation.",
    )
    p.add_argument("--json", action="store_true", help="print the catalogue as a JSON list")
    p.set_defaults(func=_cmd_checks)

    p = sub.add_parser(
        "explain",
        help="print one check's documentation",
        description="Print one check's documentation: what it detects, why it matters, how to fix it. "
        "`mlcheck checks` lists the ids.",
    )
    p.add_argument("id", help="check id, e.g. loss-plateau")
    p.set_defaults(func=_cmd_explain)
    return parser


# what to do instead when a command that takes one PATH is given several (`mlcheck analyze *.csv`)
_ONE_PATH = {
    "analyze": "give the folder that holds them (every log under it is a run of its own), e.g. `mlcheck analyze .`",
    "sanity": "check one model file at a time",
}


def _no_extra(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Arguments no option took: several PATHs (a shell glob) are one line saying what to do
    instead (was argparse's "unrecognized arguments: b.csv" under the top-level usage); the
    rest is argparse's error, as before."""
    if not extra:
        return
    import argparse

    from mlcheck.errors import BadInput

    if args.command in _ONE_PATH and not any(e.startswith("-") for e in extra):
        paths = [args.path, *extra]
        shown = ", ".join(paths[:3]) + (f", ... ({len(paths)} in all)" if len(paths) > 3 else "")
        raise BadInput(f"mlcheck {args.command} takes one PATH, got {len(paths)}: {shown}; {_ONE_PATH[args.command]}")
    # the command's own usage, not the top-level one
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = subcommands.choices[args.command]
    command.error(f"unrecognized arguments: {' '.join(extra)}{_option_meant(command, extra)}")


#: options users bring from other tools, and the one meant (`--format json`: mlcheck's is `--json`)
_OTHER_TOOLS_OPTIONS = {
    "--format": "--json",
    "--output-format": "--json",
    "--output": "--json",
    "--fail-level": "--fail-on",
}


def _option_meant(command: argparse.ArgumentParser, extra: list[str]) -> str:
    """'; did you mean --json?' for the first unknown option in `extra` that is a near miss of one
    the command takes (`--jsno`, `--suppres`) or another tool's name for it (`--format json`)."""
    from mlcheck.spelling import meant as spelt

    options = [o for action in command._actions for o in action.option_strings if o.startswith("--")]
    for item in extra:
        if not item.startswith("--"):
            continue
        name = item.split("=", 1)[0].lower().replace("_", "-")
        close = spelt(name, [*options, *_OTHER_TOOLS_OPTIONS])
        meant = _OTHER_TOOLS_OPTIONS.get(close, close) if close else None
        if meant in options:
            return f"; did you mean {meant}? (`mlcheck {command.prog.split()[-1]} --help` lists the options)"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns its exit status. A Ctrl-C at any point, the imports of the first
    half second included, is one line and EXIT_INTERRUPTED."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before the command's own handler (imports, parsing) or after it
        try:
            print("mlcheck: interrupted", file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr is gone: the exit status says it
            pass
        return EXIT_INTERRUPTED


def _command_meant(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """A command that is a near miss of one (`mlcheck analyse`, British spelling as in mlcheck's
    own messages; `Analyze`; `explian`) is refused with the one meant: argparse listed the
    choices only."""
    import argparse

    from mlcheck.spelling import meant

    given = next((a for a in argv if not a.startswith("-")), None)
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if given is None or given in subcommands.choices:
        return
    guess = meant(given.lower().replace("analyse", "analyze"), subcommands.choices)
    if guess is not None:
        choices = ", ".join(repr(c) for c in subcommands.choices)
        parser.error(f"argument COMMAND: invalid choice: {given!r} (choose from {choices}); did you mean {guess}?")


def _main(argv: Sequence[str] | None) -> int:
    from mlcheck.cli_options import console as make_console
    from mlcheck.cli_options import discard_stdout, is_output_error, output_failed
    from mlcheck.errors import BadInput

    parser = build_parser()
    _command_meant(parser, sys.argv[1:] if argv is None else list(argv))
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        parser.print_help()
        return 2
    console = make_console()
    err = make_console(stderr=True)
    try:
        _no_extra(parser, args, extra)
        status = int(args.func(args, console))
        sys.stdout.flush()  # a closed pipe is found here, not at exit with a traceback
        return status
    except BrokenPipeError:  # the reader went away (`| head -1`): the rest is not wanted
        return discard_stdout()
    except BadInput as exc:
        from rich.markup import escape  # "[tool.mlcheck]" or "x[i]" in a message is text

        err.print(f"[bold red]mlcheck: error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # one line
        return 2
    except KeyboardInterrupt:
        err.print("mlcheck: interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # stdout on a full disk: a message, not a traceback and exit 1 ("findings")
        if not is_output_error(exc):
            raise
        return output_failed(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
