"""Findings in TensorBoard, beside the user's own curves, written without TensorFlow.

For each new finding: a Markdown text summary under `mlcheck/<id>/text` (Text tab), the scalar
`mlcheck/<id>` = 1 and the running count `mlcheck/findings` (Scalars tab) at its step. Later
sightings of the same problem add `mlcheck/<id>` = 1 at their steps. Once per run, a
custom-scalars layout puts losses and the mlcheck markers in one chart.
Text and scalars use different tags because TensorBoard files a tag under the first plugin
that writes it.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck import sinks
from mlcheck.findings import Finding, shown_evidence

TEXT_TAG = "mlcheck/{id}/text"
MARKER_TAG = "mlcheck/{id}"
COUNT_TAG = "mlcheck/findings"
SUMMARY_TAG = "mlcheck/summary"
_MAX_STEP = 2**63 - 1  # an event's step is an int64
LAYER_TAG = "mlcheck/layers/{path}/{stat}"
#: The histogram of a layer's forward output at sampled steps (TensorBoard's Histograms tab).
LAYER_HISTOGRAM = "activations"
#: The per-layer statistics charted at sampled steps (`mlcheck.layers.LayerStats` fields).
LAYER_CHARTS = (
    "grad_norm",
    "weight_norm",
    "update_ratio",
    "mean",
    "std",
    "abs_max",
    "zero_fraction",
    "saturated_fraction",
    "dead_units",
    "nonfinite",
)
#: the charted statistics of one `LayerStats`, as a tuple in `LAYER_CHARTS` order
_layer_charts = operator.attrgetter(*LAYER_CHARTS)
LAYOUT_TAG = "custom_scalars__config__"
#: how the names of mlcheck's own event files end (`mlcheck analyze` tells them from the user's)
EVENT_FILE_SUFFIX = ".mlcheck"


def _crc32c_function() -> Any:
    """CRC-32C of bytes: google-crc32c's C code (a dependency), else tensorboard's own
    pure-Python loop (~0.13 us a byte: 0.3 ms for one sampled step's layer scalars)."""
    try:
        import google_crc32c

        return google_crc32c.value
    except ImportError:  # pragma: no cover - a dependency; kept for a broken install
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c

        return crc32c


class EventFile:
    """A local TensorBoard event file written in the caller's thread: the TFRecord framing
    tensorboard's `EventFileWriter` writes (length, masked CRC-32C of the length, the
    serialised `Event`, masked CRC-32C of it), without its writer thread, whose wake-ups and
    pure-Python checksums cost more than the few hundred bytes a write hands over. Writes are
    buffered; `flush` (and any write `FLUSH_SECS` after the last flush) puts them on disk."""

    FLUSH_SECS = 30
    _uid = itertools.count()

    def __init__(self, log_dir: Path, suffix: str) -> None:
        from tensorboard.compat.proto import event_pb2

        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
        self.path = log_dir / f"{name}.{next(self._uid)}{suffix}"
        self._crc = _crc32c_function()
        self._file = open(self.path, "ab")  # noqa: SIM115 - open until close()
        self._flushed = time.monotonic()
        self.add_event(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def _masked(self, data: bytes) -> bytes:
        crc = self._crc(data) & 0xFFFFFFFF
        return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

    def add_event(self, event: Any) -> None:
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        self._file.write(header + self._masked(header) + data + self._masked(data))
        if time.monotonic() - self._flushed > self.FLUSH_SECS:
            self.flush()

    def flush(self) -> None:
        self._file.flush()
        self._flushed = time.monotonic()

    def close(self) -> None:
        self._file.close()


def finding_markdown(finding: Finding, run: str | None = None) -> str:
    """The Markdown shown in TensorBoard's Text tab for one finding."""
    where = f"step {finding.step}" if finding.step is not None else "no step"
    if finding.epoch is not None:
        where += f", epoch {finding.epoch}"
    lines = [
        f"**{finding.severity.value.upper()}** `{finding.check}` ({where})",
        "",
        finding.message,
        "",
    ]
    if shown := shown_evidence(finding.evidence):
        lines += ["| evidence | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in shown]
        lines.append("")
    if finding.hint:
        lines.append(f"**How to fix:** {finding.hint}")
    lines.append("")
    lines.append(f"Details: `mlcheck explain {finding.check}`")
    return "\n".join(lines)


class TensorBoardSink(sinks.Sink):
    """Writes findings as TensorBoard events into `log_dir` (a run directory).

    Args:
        log_dir: the run's directory (e.g. a Lightning `TensorBoardLogger.log_dir`).
        loss_tags: regular expressions for the custom-scalars chart that overlays losses and
            findings. Default: any tag containing "loss".
        default_step: the step used for findings without one (e.g. pre-flight findings).
    """

    #: the default `loss_tags`: the user's losses
    LOSS_TAGS = (r"(?i)^(?!mlcheck/).*loss.*",)

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        loss_tags: tuple[str, ...] = LOSS_TAGS,
        default_step: int = 0,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.loss_tags = loss_tags
        self.default_step = default_step
        self.count = 0
        self._writer: Any = None
        # TensorBoard reads a step that goes back on a tag as a restarted run and drops that
        # tag's later points (`purge_orphaned_data`); two points of a tag at one step show as
        # one. So each tag's steps only go forward: a finding without a step is written at the
        # latest step seen, one at an earlier step or at a step its tag already holds goes to
        # the tag's next step. The finding's own step stays in its text.
        self._last: dict[str, int] = {}
        self._latest = default_step
        self._layer_tags: dict[str, list[str]] = {}  # layer path -> its chart tags

    # -- low level -----------------------------------------------------------------------------

    def _open(self) -> Any:
        if self._writer is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = EventFile(self.log_dir, EVENT_FILE_SUFFIX)
            self._write_layout()
        return self._writer

    def _event(self, step: int, values: list[Any]) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        writer = self._open()
        summary = summary_pb2.Summary(value=values)
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    @staticmethod
    def scalar_value(tag: str, value: float) -> Any:
        from tensorboard.compat.proto import summary_pb2

        return summary_pb2.Summary.Value(tag=tag, simple_value=float(value))

    @staticmethod
    def histogram_value(tag: str, histogram: tuple[float, float, tuple[float, ...]]) -> Any:
        """A legacy `histo` value (TensorBoard migrates it to its Histograms plugin; no
        TensorFlow needed): equal-width buckets from `lo` to `hi`, right edges as limits."""
        from tensorboard.compat.proto import summary_pb2

        lo, hi, counts = histogram
        edges = np.linspace(lo, hi, len(counts) + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        weights = np.asarray(counts, dtype=np.float64)
        proto = summary_pb2.HistogramProto(
            min=lo,
            max=hi,
            num=float(weights.sum()),
            sum=float(weights @ centres),
            sum_squares=float(weights @ centres**2),
            bucket_limit=edges[1:].tolist(),
            bucket=weights.tolist(),
        )
        return summary_pb2.Summary.Value(tag=tag, histo=proto)

    @staticmethod
    def text_value(tag: str, text: str) -> Any:
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.text import metadata as text_metadata
        from tensorboard.util import tensor_util

        return summary_pb2.Summary.Value(
            tag=tag,
            metadata=text_metadata.create_summary_metadata(display_name=tag, description=""),
            tensor=tensor_util.make_tensor_proto([text.encode("utf-8")], shape=[1]),
        )

    def _write_layout(self) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.custom_scalar import layout_pb2
        from tensorboard.plugins.custom_scalar import metadata as cs_metadata
        from tensorboard.util import tensor_util

        chart = layout_pb2.Chart
        layout = layout_pb2.Layout(
            category=[
                layout_pb2.Category(
                    title="mlcheck",
                    chart=[
                        chart(
                            title="loss with mlcheck findings",
                            multiline=layout_pb2.MultilineChartContent(tag=[*self.loss_tags, r"^mlcheck/findings$"]),
                        ),
                        chart(
                            title="mlcheck markers (1 where a check fired)",
                            multiline=layout_pb2.MultilineChartContent(tag=[r"^mlcheck/[^/]+$"]),
                        ),
                    ],
                )
            ]
        )
        value = summary_pb2.Summary.Value(
            tag=LAYOUT_TAG,
            metadata=cs_metadata.create_summary_metadata(),
            tensor=tensor_util.make_tensor_proto(layout.SerializeToString(), dtype="string"),
        )
        self._writer.add_event(
            event_pb2.Event(wall_time=time.time(), step=0, summary=summary_pb2.Summary(value=[value]))
        )

    # -- Sink ----------------------------------------------------------------------------------

    def _step_for(self, tags: list[str], wanted: int | None, distinct: bool) -> int:
        """The step to write `tags` at: `wanted` (None: the latest step seen), moved forward
        past what the tags already hold (`distinct`: strictly past, so no point hides another)."""
        step = self._latest if wanted is None else int(wanted)
        for tag in tags:
            last = self._last.get(tag)
            if last is not None:
                step = max(step, min(last + 1, _MAX_STEP) if distinct else last)
        for tag in tags:
            self._last[tag] = step
        self._latest = max(self._latest, step)
        return step

    def emit(self, finding: Finding, run: str | None = None) -> None:
        self.count += 1
        text, marker = TEXT_TAG.format(id=finding.check), MARKER_TAG.format(id=finding.check)
        step = self._step_for([text, marker, COUNT_TAG], finding.step, distinct=True)
        self._event(
            step,
            [
                self.text_value(text, finding_markdown(finding, run)),
                self.scalar_value(marker, 1.0),
                self.scalar_value(COUNT_TAG, self.count),
            ],
        )
        self.flush()

    def mark(self, finding: Finding, run: str | None = None) -> None:
        marker = MARKER_TAG.format(id=finding.check)
        step = self._step_for([marker], finding.step, distinct=False)
        self._event(step, [self.scalar_value(marker, 1.0)])

    def summary(self, text: str, run: str | None = None) -> None:
        step = self._step_for([SUMMARY_TAG], None, distinct=True)
        self._event(step, [self.text_value(SUMMARY_TAG, text)])
        self.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Writes plain scalars (used by adapters that log curves themselves, e.g. Keras)."""
        self._latest = max(self._latest, int(step))
        self._event(step, [self.scalar_value(k, v) for k, v in values.items()])

    def layers(self, layers: Any) -> None:
        """Per-layer scalars of a sampled step under `mlcheck/layers/<path>/<stat>`, so the layer
        findings sit beside their numbers (`LAYER_CHARTS` lists the statistics), in one event."""
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary()
        add = summary.value.add
        isfinite = math.isfinite
        for stats in layers:
            tags = self._layer_tags.get(stats.path)
            if tags is None:  # one list per layer: formatting the tags cost more than the writes
                names = (*LAYER_CHARTS, LAYER_HISTOGRAM)
                tags = self._layer_tags[stats.path] = [LAYER_TAG.format(path=stats.path, stat=n) for n in names]
            # the ten statistics in one call (a getattr each was a fifth of this method's calls)
            for tag, value in zip(tags, _layer_charts(stats)):
                if value is not None and isfinite(value):
                    add(tag=tag, simple_value=value)
            if stats.histogram is not None:
                summary.value.append(self.histogram_value(tags[-1], stats.histogram))
        if summary.value:
            event = event_pb2.Event(wall_time=time.time(), step=int(layers.step), summary=summary)
            self._open().add_event(event)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class TrainValTensorBoardSink(sinks.Sink):
    """TensorBoard output laid out like Keras' `TensorBoard` callback: `<log_dir>/train/` and
    `<log_dir>/validation/`, each a run of its own. Findings go to train/, those about the
    validation split (`Check.findings_split`, else `evidence["split"]`) to validation/."""

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.train = TensorBoardSink(Path(log_dir) / "train")
        self.validation = TensorBoardSink(Path(log_dir) / "validation")

    def begin(self) -> None:
        """Opens the training side's event file now, at the fit's start: its first event then
        says when the fit began, before any finding it raises (`mlcheck analyze` gives each line
        of a `findings.jsonl` that several fits appended to the fit begun last before it)."""
        self.train._open()

    def _side(self, finding: Finding) -> TensorBoardSink:
        from mlcheck.checks.base import registry

        check = registry().get(finding.check)
        split = check.findings_split if check is not None else None
        return self.validation if (split or finding.evidence.get("split")) == "val" else self.train

    def epoch(self, epoch: int, metrics: Any, lr: float | None) -> None:
        """Copies an epoch's curves (`mlcheck.live.EpochMetrics`), named as Keras' callback names
        them: `epoch_loss`, `epoch_<metric>`, `epoch_learning_rate`."""
        train = {f"epoch_{k}": v for k, v in metrics.train.items()}
        if metrics.train_loss is not None:
            train["epoch_loss"] = metrics.train_loss
        if lr is not None:
            train["epoch_learning_rate"] = lr
        self.train.scalars(epoch, train)
        val = {f"epoch_{k}": v for k, v in metrics.val.items()}
        if metrics.val_loss is not None:
            val["epoch_loss"] = metrics.val_loss
        if val:
            self.validation.scalars(epoch, val)
        self.flush()

    def emit(self, finding: Finding, run: str | None = None) -> None:
        self._side(finding).emit(finding, run)

    def summary(self, text: str, run: str | None = None) -> None:
        self.train.summary(text, run)

    def layers(self, layers: Any) -> None:
        self.train.layers(layers)

    def mark(self, finding: Finding, run: str | None = None) -> None:
        self._side(finding).mark(finding, run)

    def flush(self) -> None:
        self.train.flush()
        self.validation.flush()

    def close(self) -> None:
        self.train.close()
        self.validation.close()
