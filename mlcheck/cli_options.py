"""The options `mlcheck sanity` and `mlcheck analyze` share (--json, --fail-on, --select,
--suppress, --config) and the checks they select with [tool.mlcheck].

Its own module so that `mlcheck.cli` imports the commands and the commands import this, never
`mlcheck.cli`: no import cycle between the CLI and its commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlcheck.checks.base import Check
from mlcheck.config import ConfigError, build_checks, load_config
from mlcheck.errors import BadInput


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options shared by `sanity` and `analyze`."""
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--fail-on",
        choices=["info", "warning", "error"],
        default=None,
        help="exit 1 when a finding is at or above this severity (default: error, or fail-on in [tool.mlcheck])",
    )
    parser.add_argument("--select", action="append", metavar="IDS", help="run only these check ids (comma-separated)")
    parser.add_argument("--suppress", action="append", metavar="IDS", help="silence these check ids (comma-separated)")
    parser.add_argument(
        "--config", metavar="PYPROJECT", help="pyproject.toml with a [tool.mlcheck] table (default: nearest)"
    )


def split_ids(values: Sequence[str] | None) -> list[str]:
    """["a,b", "c"] (repeated, comma-separated options) -> ["a", "b", "c"]."""
    out: list[str] = []
    for value in values or ():
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def selected_checks(args: argparse.Namespace) -> tuple[list[Check], str]:
    """(checks, fail_on) from --select/--suppress/--fail-on and [tool.mlcheck]."""
    try:
        config = load_config(Path(args.config) if args.config else None)
        checks = build_checks(split_ids(args.select), split_ids(args.suppress), config)
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    if config.source is not None:
        # a parent folder's pyproject.toml can silence checks: never let it do so unannounced
        print(f"mlcheck: using configuration from {config.source}", file=sys.stderr)
    return checks, args.fail_on or config.fail_on or "error"
