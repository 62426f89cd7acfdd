"""The findings a run recorded live: `findings.jsonl`, written by the callbacks and `Monitor`.

`mlcheck analyze` shows them beside what it derives from the logged curves. The live callbacks
saw more than any log keeps (every step's loss, gradients, batches, the model), so where both
name the same check on the same run, the recorded finding is kept and the derived one dropped.

Reading never fails a run: a line that is not a finding (not JSON, not an object, a field of the
wrong kind, an unknown severity, a last line cut short while the run is still writing) is
skipped, and one note per file says how many and why the first one was.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mlcheck.findings import Finding

#: the file name the sinks write (`mlcheck.sinks.JsonlSink`)
FINDINGS_FILE = "findings.jsonl"
#: folders a run's findings file may sit in, relative to the run's folder
FINDINGS_FOLDERS = (".", "mlcheck")
# a finding is a few hundred bytes; a longer line is not one (and is not held in memory)
MAX_LINE_BYTES = 1 << 20
_CHUNK = 1 << 16


@dataclass
class Recorded:
    """What one findings file holds: the findings in the order raised, and a note (or none)
    on what could not be read."""

    path: Path
    findings: list[Finding] = field(default_factory=list)
    note: str | None = None
    #: when each finding was raised (Unix seconds; None where its line has no "time")
    times: list[float | None] = field(default_factory=list)


def is_findings_file(name: str) -> bool:
    return name == FINDINGS_FILE


def read_findings(path: str | os.PathLike[str]) -> Recorded:
    """The findings in a `findings.jsonl`. Never raises: a file that cannot be read (missing, a
    FIFO, permission denied) gives no findings and a note naming it."""
    path = Path(path)
    out = Recorded(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block: never opened
            out.note = f"{path}: not a regular file; the findings recorded live there were not read"
            return out
        with open(path, "rb") as f:
            bad, first = _read_lines(f, out.findings, out.times)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        out.note = f"{path}: cannot be read ({reason}); the findings recorded live there are not shown"
        return out
    if bad:
        out.note = f"{path}: {bad} line(s) that are not findings were skipped (first: {first})"
    return out


def _read_lines(f, findings: list[Finding], times: list[float | None]) -> tuple[int, str | None]:
    """Reads findings line by line into `findings`; returns (bad lines, why the first was bad)."""
    bad, first = 0, None
    number = 0
    while True:
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return bad, first
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of the long line
                line = f.readline(_CHUNK)
            why = f"longer than {MAX_LINE_BYTES} bytes"
        else:
            if not line.strip():
                continue
            why = _parse(line, findings, times)
            if why is not None and not line.endswith(b"\n"):
                why = "cut short (the run may still be writing it)"
            elif why is not None and why.startswith("not JSON") and _glued(line, findings, times):
                why += "; the finding a later write appended to it was read"
        if why is not None:
            bad += 1
            first = first or f"line {number}: {why}"


#: How many `{"` inside a line that is not JSON are tried as the start of a finding glued on
GLUED_TRIES = 32


def _glued(line: bytes, findings: list[Finding], times: list[float | None]) -> bool:
    """Reads the finding at the end of `line` where a write cut short (a run killed mid-line)
    had the next run's first finding appended to it on the same line (a resumed fit into the same
    `log_dir`): that finding was lost with the broken one. True when one was read."""
    start = line.find(b'{"', 1)
    for _ in range(GLUED_TRIES):
        if start == -1:
            return False
        if _parse(line[start:], findings, times) is None:
            return True
        start = line.find(b'{"', start + 1)
    return False


def _parse(line: bytes, findings: list[Finding], times: list[float | None]) -> str | None:
    """Appends the finding on `line`; returns why it is not one, or None."""
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except RecursionError:
        return "not JSON (nested too deep)"
    except ValueError as exc:
        return f"not JSON ({exc.msg})" if hasattr(exc, "msg") else "not JSON"
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    for name in ("check", "message"):
        if not isinstance(record.get(name), str) or not record[name]:
            return f"no {name!r} text"
    if not isinstance(record.get("hint", ""), str) or not isinstance(record.get("evidence") or {}, dict):
        return "'hint' or 'evidence' of the wrong kind"
    record.pop("key", None)  # never written; the key of a finding read back is its own
    try:
        findings.append(Finding.from_dict(record))
    except (KeyError, TypeError, ValueError) as exc:
        return f"not a finding ({type(exc).__name__}: {exc})"
    when = record.get("time")
    ok = isinstance(when, (int, float)) and not isinstance(when, bool) and math.isfinite(when)
    times.append(float(when) if ok else None)
    return None
