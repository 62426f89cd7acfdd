"""Findings as JSON lines: one strict-JSON object per finding, appended to `findings.jsonl`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mlcheck import sinks
from mlcheck.findings import Finding, json_safe


class JsonlSink(sinks.Sink):
    """Appends each new finding to `path` as one JSON object per line.

    Args:
        path: the file; its folder is created on first write. Nothing is written for a run
            without findings.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file = None

    def emit(self, finding: Finding, run: str | None = None) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        record = finding.to_dict()
        record["run"] = json_safe(run)
        # which problem within its check (`Finding.key`): `mlcheck analyze` of the run's folder
        # matches a recorded WARNING and the later INFO that took it back by it
        record["key"] = json_safe(finding.key)
        # when it was raised (Unix seconds): `mlcheck analyze` gives each finding to its own fit
        # where two fits wrote into one folder (their event files say when each began)
        record["time"] = round(time.time(), 3)
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
