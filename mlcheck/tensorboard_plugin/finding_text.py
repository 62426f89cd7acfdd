"""Findings read back from the Markdown that `mlcheck.sinks.tensorboard.finding_markdown` writes
to the Text tab, so the tab needs nothing but what TensorBoard's data provider serves.

The sink's format, line by line: a header `**SEVERITY** `check-id` (step S, epoch E)`, the
message, an optional `| evidence | value |` table, an optional `**How to fix:** hint` and a
closing `Details: ...` line. Evidence values come back as the sink formatted them (4 significant
digits), which is what a reader needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(r"^\*\*(?P<severity>[A-Z]+)\*\* `(?P<check>[^`]+)` \((?P<where>[^)]*)\)\s*$")
_STEP = re.compile(r"step (-?\d+)")
_EPOCH = re.compile(r"epoch (-?\d+)")
_HINT = "**How to fix:** "
_DETAILS = "Details: "
_TABLE_HEAD = ("| evidence | value |", "|---|---|")


@dataclass(frozen=True)
class ParsedFinding:
    """One finding as the tab shows it (`step` is the finding's own, `event_step` where TensorBoard has it)."""

    check: str
    severity: str
    step: int | None
    epoch: int | None
    message: str
    evidence: dict[str, str] = field(default_factory=dict)
    hint: str = ""
    event_step: int = 0

    def to_json(self) -> dict:
        return {
            "check": self.check,
            "severity": self.severity,
            "step": self.step,
            "epoch": self.epoch,
            "message": self.message,
            "evidence": self.evidence,
            "hint": self.hint,
            "event_step": self.event_step,
        }


def _where(text: str) -> tuple[int | None, int | None]:
    step, epoch = _STEP.search(text), _EPOCH.search(text)
    return (int(step.group(1)) if step else None, int(epoch.group(1)) if epoch else None)


def _evidence_row(line: str) -> tuple[str, str] | None:
    if not (line.startswith("| ") and line.endswith(" |")) or line in _TABLE_HEAD:
        return None
    key, sep, value = line[2:-2].partition(" | ")
    return (key, value) if sep else None


def parse_finding_markdown(text: str, event_step: int = 0) -> ParsedFinding | None:
    """The finding in one text entry of `mlcheck/<id>/text`, or None for text of another shape."""
    lines = text.strip("\n").split("\n")
    header = _HEADER.match(lines[0]) if lines else None
    if header is None:
        return None
    step, epoch = _where(header.group("where"))
    message: list[str] = []
    evidence: dict[str, str] = {}
    hint = ""
    for line in lines[1:]:
        row = _evidence_row(line)
        if row is not None:
            evidence[row[0]] = row[1]
        elif line.startswith(_HINT):
            hint = line[len(_HINT) :]
        elif line.startswith(_DETAILS) or line in _TABLE_HEAD:
            continue
        elif not evidence and not hint and line.strip():
            message.append(line.strip())
    return ParsedFinding(
        check=header.group("check"),
        severity=header.group("severity").lower(),
        step=step,
        epoch=epoch,
        message=" ".join(message),
        evidence=evidence,
        hint=hint,
        event_step=int(event_step),
    )
