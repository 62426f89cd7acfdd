"""CLI glue of `mlcheck analyze`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="TensorBoard log dir, Keras CSVLogger file or Lightning metrics.csv")


def run(args: argparse.Namespace, console) -> int:
    raise NotImplementedError
