"""The options `mlcheck sanity` and `mlcheck analyze` share (--json, --fail-on, --select,
--suppress, --config) and the checks they select with [tool.mlcheck].

Its own module so that `mlcheck.cli` imports the commands and the commands import this, never
`mlcheck.cli`: no import cycle between the CLI and its commands.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlcheck.checks.base import Check
from mlcheck.config import ConfigError, build_checks, load_config
from mlcheck.errors import BadInput

#: Exit status when the reader of stdout went away before the output was written (`| head -1`):
#: 128 + SIGPIPE, what a shell reports for a command its pipe ended.
EXIT_PIPE_CLOSED = 141


def discard_stdout() -> int:
    """After a BrokenPipeError on stdout: stdout goes to /dev/null, so that the output still
    buffered is dropped instead of raising again at exit; returns EXIT_PIPE_CLOSED."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout closed or replaced by an object with no file
        pass
    return EXIT_PIPE_CLOSED


#: Exit status when stdout could not be written (a full disk, an I/O error): sysexits' EX_IOERR,
#: so that a script does not read it as "findings" (1), as it did with a traceback.
EXIT_OUTPUT_FAILED = 74


def is_output_error(exc: OSError) -> bool:
    """Whether an OSError that reached a command's top is a failed write of its output: the
    errors of reading the user's files carry their path and become `BadInput` before this."""
    return exc.filename is None and not isinstance(exc, BrokenPipeError)


def output_failed(exc: OSError) -> int:
    """After a failed write to stdout: one line on stderr naming the error, stdout to /dev/null
    (the output still buffered would raise again at exit); returns EXIT_OUTPUT_FAILED."""
    try:
        print(f"mlcheck: error: cannot write the output: {exc.strerror or exc}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr is gone too: the exit status says it
        pass
    discard_stdout()
    return EXIT_OUTPUT_FAILED


def console(stderr: bool = False) -> Any:
    """A rich Console for the commands' output. Emoji codes are text: a path or message holding
    ":a:" or ":smile:" is printed as it is. On stdout, a closed pipe raises BrokenPipeError,
    handled as above: rich's own handling exits with status 1, which reads as "findings", and in
    `mlcheck sanity`'s child process as the user's code ending the process."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _Console(stderr=stderr, emoji=False)


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options shared by `sanity` and `analyze`."""
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--fail-on",
        type=str.lower,  # "Warning" as "warning", as the Python API's fail_on= (Severity.parse)
        choices=["info", "warning", "error"],
        default=None,
        help="exit 1 when a finding is at or above this severity (default: error, or fail-on in [tool.mlcheck])",
    )
    parser.add_argument("--select", action="append", metavar="IDS", help="run only these check ids (comma-separated)")
    parser.add_argument("--suppress", action="append", metavar="IDS", help="silence these check ids (comma-separated)")
    parser.add_argument(
        "--config", metavar="PYPROJECT", help="pyproject.toml with a [tool.mlcheck] table (default: nearest)"
    )


def nonempty_path(args: argparse.Namespace, what: str) -> None:
    """BadInput for an empty PATH (`mlcheck analyze "$LOGDIR"` with LOGDIR unset), which would
    otherwise be read as the current directory; for a URL (`gs://bucket/logs`, which
    TensorBoard reads, was "gs:/bucket/logs: no such file"), and for `-` (stdin), neither of
    which is read; and for a PATH that does not exist, a hint where one helps (a quoted `~`,
    spaces around the name)."""
    if not args.path.strip():
        raise BadInput(f"PATH is empty ({args.path!r}); give {what}")
    if _URL.match(args.path):
        raise BadInput(
            f"{args.path} is a URL: mlcheck reads local files only; copy them here first (gsutil cp -r, "
            "aws s3 cp --recursive, curl -O) and give their path"
        )
    if args.path == "-" and not Path("-").exists():
        raise BadInput(f"PATH is '-': mlcheck does not read standard input; give {what}")
    if not os.path.lexists(args.path):
        hint = missing_path_hint(args.path)
        if hint:
            raise BadInput(f"{args.path}: no such file or directory; {hint}")


# a scheme and "://" (gs://, s3://, hdfs://, https://): Path() would make "gs:/bucket" of it
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def missing_path_hint(path: str) -> str:
    """What a PATH that does not exist probably meant, or ''."""
    if path.startswith("~"):
        return f"a quoted ~ is not expanded: write {os.path.expanduser(path)!r} (or leave the ~ unquoted)"
    if path != path.strip() and os.path.lexists(path.strip()):
        return f"the name has spaces around it: {path.strip()!r} exists"
    return ""


def split_ids(values: Sequence[str] | None) -> list[str]:
    """["a,b", "c"] (repeated, comma-separated options) -> ["a", "b", "c"]."""
    out: list[str] = []
    for value in values or ():
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def selected_checks(args: argparse.Namespace) -> tuple[list[Check], str]:
    """(checks, fail_on) from --select/--suppress/--fail-on and [tool.mlcheck]."""
    if args.select is not None and not split_ids(args.select):  # `--select "$IDS"` with IDS unset
        given = " ".join(f"--select {v!r}" for v in args.select)
        raise BadInput(f"{given} names no check id; name the checks to run, or leave --select out to run the defaults")
    try:
        if args.config:
            given = f"--config {args.config}"
            config = load_config(Path(args.config), given=given, otherwise=" (without --config: the nearest one)")
        else:
            config = load_config()
        checks = build_checks(split_ids(args.select), split_ids(args.suppress), config)
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    if config.source is not None:
        # a parent folder's pyproject.toml can silence checks: never let it do so unannounced
        print(f"mlcheck: using configuration from {config.source}", file=sys.stderr)
    return checks, args.fail_on or config.fail_on or "error"
