"""CLI glue of `mlcheck sanity`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="model.py, or model.py:function")


def run(args: argparse.Namespace, console) -> int:
    raise NotImplementedError
