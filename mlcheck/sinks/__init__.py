"""Where findings go: Python warnings and logging, JSON lines, TensorBoard events.

A sink receives each new finding once (`emit`) and later sightings of the same persisting
problem (`mark`), then `close`. Sinks never raise into the training loop: the monitor guards
them. Library code never prints: the terminal belongs to the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlcheck.findings import Finding

if TYPE_CHECKING:
    from mlcheck.layers import LayerObservation


class Sink:
    """Base class of sinks; every method is optional."""

    def emit(self, finding: Finding, run: str | None = None) -> None:
        """A new finding."""

    def mark(self, finding: Finding, run: str | None = None) -> None:
        """The same problem seen again (an update of an earlier finding)."""

    def summary(self, text: str, run: str | None = None) -> None:
        """A one-line summary of the run, at its end."""

    def layers(self, layers: LayerObservation) -> None:
        """Per-layer statistics of a sampled step (`mlcheck.layers.LayerObservation`)."""

    def flush(self) -> None:
        """Make written output visible to readers."""

    def close(self) -> None:
        """The run ended."""


from mlcheck.sinks.jsonl import JsonlSink  # noqa: E402
from mlcheck.sinks.log import LoggingSink  # noqa: E402
from mlcheck.sinks.tensorboard import TensorBoardSink, TrainValTensorBoardSink  # noqa: E402

__all__ = ["JsonlSink", "LoggingSink", "Sink", "TensorBoardSink", "TrainValTensorBoardSink"]
