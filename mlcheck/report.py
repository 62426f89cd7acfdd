"""Rendering findings for the terminal (rich) and as the CLI's JSON object. CLI only."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from mlcheck.findings import Finding, Severity, shown_evidence

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def exit_status(findings: Iterable[Finding], fail_on: str | Severity = "error") -> int:
    """1 when any finding is at or above `fail_on`, else 0."""
    threshold = Severity.parse(fail_on)
    return 1 if any(f.severity >= threshold for f in findings) else 0


def json_report(findings: Sequence[tuple[str | None, Finding]], **extra: Any) -> str:
    """`{"findings": [Finding dict + "run"], ...extra}` as strict JSON."""
    from mlcheck.findings import json_safe

    payload = {"findings": [f.to_dict() | {"run": run} for run, f in findings]}
    payload.update(json_safe(extra))
    return json.dumps(payload, indent=2, allow_nan=False)


def render_findings(
    console: Any,
    findings: Sequence[tuple[str | None, Finding]],
    title: str = "mlcheck findings",
    show_run: bool | None = None,
    sources: Sequence[str] | None = None,
) -> None:
    """A table grouped by severity (errors first): check, where, message, evidence, fix.
    `sources` ("live" or "analyze", one per finding) marks the findings recorded live during
    training: "live" under their step, and a line below the table."""
    from rich.table import Table
    from rich.text import Text

    if not findings:
        console.print(Text("No problems found.", style="bold green"))
        return
    if show_run is None:
        show_run = len({run for run, _ in findings}) > 1 or any(run for run, _ in findings)
    show_source = sources is not None and "live" in sources
    labelled = list(zip(findings, sources if sources is not None else [None] * len(findings)))
    order = sorted(labelled, key=lambda item: -item[0][1].severity.rank)
    if console.width < NARROW:
        _render_blocks(console, order, title, show_run)
    else:
        table = Table(title=title, show_lines=True, expand=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("check", no_wrap=True)
        if show_run:
            table.add_column("run", overflow="fold", ratio=1)
        table.add_column("where", no_wrap=True)
        table.add_column("finding", ratio=3, overflow="fold")  # a long evidence item folds, never "…"
        for (run, f), source in order:
            row = [Text(f.severity.value, style=_STYLE[f.severity]), f.check]
            if show_run:
                row.append(run or "")
            row += ["\n".join(_where(f, source)) or "-", _body(f)]
            table.add_row(*row)
        console.print(table)
    counts = {s: sum(1 for _, f in findings if f.severity is s) for s in Severity}
    console.print(
        f"{counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]} warning(s), "
        f"{counts[Severity.INFO]} info. `mlcheck explain ID` describes a check."
    )
    if show_source:
        live = sum(s == "live" for s in sources)
        console.print(
            f"(live): {live} recorded during training (findings.jsonl); {len(findings) - live} derived from the "
            "logged curves. Where both name a check, the one recorded live is shown."
        )


#: below this many columns a table leaves the finding ~14 characters a line: one block each instead
NARROW = 100


def _where(f: Finding, source: str | None, live: str = "(live)") -> list[str]:
    """Step, epoch and, for a finding recorded during training, `live`: "(live)" on its own line
    of the table's cell, "recorded live" inside a block's parenthesis."""
    where = []
    if f.step is not None:
        where.append(f"step {f.step}")
    if f.epoch is not None:
        where.append(f"epoch {f.epoch}")
    if source == "live":
        where.append(live)
    return where


def _body(f: Finding) -> Any:
    """The message, the evidence (dim) and the fix of a finding, as rich Text."""
    from rich.text import Text

    body = Text(f.message)
    if shown := shown_evidence(f.evidence):
        body.append("\n" + ", ".join(f"{k}={v}" for k, v in shown), style="dim")
    if f.hint:
        body.append("\nFix: ", style="bold")
        body.append(f.hint)
    return body


def _render_blocks(
    console: Any, order: Sequence[tuple[tuple[str | None, Finding], str | None]], title: str, show_run: bool
) -> None:
    """The findings one block each, for a terminal too narrow for the table: a heading line
    (severity, check, run, where), then the message, the evidence and the fix, wrapped to the width."""
    from rich.text import Text

    console.print(Text(title, style="bold"))
    for (run, f), source in order:
        head = Text()
        head.append(f.severity.value.upper(), style=_STYLE[f.severity])
        head.append(f"  {f.check}", style="bold")
        place = [*([run] if show_run and run else []), ", ".join(_where(f, source, "recorded live"))]
        place = [p for p in place if p]
        if place:
            head.append("  (" + "; ".join(place) + ")", style="dim")
        console.print()
        console.print(head, overflow="fold")
        console.print(_body(f), overflow="fold")
    console.print()
