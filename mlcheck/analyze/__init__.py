"""`mlcheck analyze`: the same checks over logs that already exist.

    >>> import mlcheck
    >>> result = mlcheck.analyze.run("lightning_logs/")       # doctest: +SKIP
    >>> for run, finding in result.findings:                   # doctest: +SKIP
    ...     print(run, finding.format())

PATH is a TensorBoard log directory (any depth of runs; Keras' `train/` and `validation/`
sub-runs are merged into one run), a single event file, a Keras `CSVLogger` file or a Lightning
`CSVLogger` `metrics.csv` (a directory's `*.csv` files are read too). Which tag is which curve
is decided by `mlcheck.analyze.tags` (documented in docs/analyze.md, extendable).

`mlcheck.analyze(path)` is the same call as `mlcheck.analyze.run(path)`: the package is callable
(see `mlcheck.callable_package`), and `mlcheck.analyze.analyze` is another name for `run`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcheck.analyze.csvlogs import CSVLogError, read_csv_log, read_header
from mlcheck.analyze.events import EventFileError, EventRun, find_event_runs, is_event_file, read_event_files
from mlcheck.analyze.replay import Curves, RunLog, build_curves, replay_curves
from mlcheck.analyze.tags import ROLES, parse_role, register_tag
from mlcheck.callable_package import CallablePackage
from mlcheck.checks.base import Check
from mlcheck.errors import BadInput
from mlcheck.findings import Finding

logger = logging.getLogger(__name__)

__all__ = ["AnalyzeResult", "RunResult", "ROLES", "analyze", "register_tag", "run"]


@dataclass
class RunResult:
    """The findings of one run.

    Attributes:
        name: the run's name (its folder relative to PATH, or the file name).
        path: where it was read from.
        format: "tensorboard", "keras-csv" or "lightning-csv".
        findings: what the checks found, in the order raised.
        series: the tag used for each role, e.g. {"train_loss": "train_loss_step"}.
        steps: steps in the log (the last step), or None.
        epochs: epochs in the log, or None.
        check_errors: checks that failed on this run and were switched off, with the error.
    """

    name: str
    path: str
    format: str
    findings: list[Finding]
    series: dict[str, str]
    steps: int | None = None
    epochs: int | None = None
    check_errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "format": self.format,
            "series": self.series,
            "steps": self.steps,
            "epochs": self.epochs,
            "findings": len(self.findings),
            "check_errors": self.check_errors,
        }


@dataclass
class AnalyzeResult:
    """What `analyze` found: one `RunResult` per readable run, and the runs it could not read
    as (path, reason)."""

    runs: list[RunResult]
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def findings(self) -> list[tuple[str, Finding]]:
        """(run name, finding) for every finding of every run."""
        return [(run.name, f) for run in self.runs for f in run.findings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() | {"run": run} for run, f in self.findings],
            "runs": [r.to_dict() for r in self.runs],
            "unreadable": [{"path": p, "error": e} for p, e in self.unreadable],
        }


def run(
    path: str | os.PathLike[str],
    checks: Sequence[Check] | None = None,
    select: Iterable[str] | None = None,
    suppress: Iterable[str] = (),
    mapping: Mapping[str, str] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> AnalyzeResult:
    """Replays the runs logged under `path` through the checks.

    Args:
        path: a TensorBoard log directory, an event file, a Keras CSVLogger file or a Lightning
            metrics.csv.
        checks: check instances to run. Default: the default set (or `select`).
        select: run only these check ids.
        suppress: check ids to silence.
        mapping: tag or column (or glob pattern) -> role, on top of the built-in rules, e.g.
            `{"objective": "train_loss", "val_top1": "val_metric:accuracy"}`; roles: `ROLES`.
        progress: called as progress(bytes_done, bytes_total) while reading.

    Returns:
        An `AnalyzeResult`; `result.findings` lists (run name, Finding).

    Raises:
        mlcheck.errors.BadInput: nothing under `path` could be read (the message says why);
            runs that fail while others are read are listed in `result.unreadable` instead.
        ValueError: an unknown check id or role.
    """
    from mlcheck.config import build_checks

    for spec in (mapping or {}).values():
        parse_role(spec)
    suppress = set(suppress)
    if checks is None:
        checks = build_checks(list(select) if select else None, suppress)
    else:
        wanted = set(select) if select else None
        checks = [c for c in checks if c.id not in suppress and (wanted is None or c.id in wanted)]

    root = Path(path)
    sources = _discover(root)
    total = sum(size for _, _, size in sources)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    runs: list[RunResult] = []
    unreadable: list[tuple[str, str]] = []
    for source, where, size in sources:
        start = done
        try:
            log = _read(source, root, advance)
            curves = build_curves(log, mapping)
            if not curves.has_loss:
                raise BadInput(_no_loss(log))
        except (EventFileError, CSVLogError, BadInput, OSError) as exc:
            unreadable.append((str(where), str(exc)))
            logger.info("mlcheck analyze: skipping %s", exc)
            continue
        finally:
            advance(start + size - done)
        if any(r.name == log.name for r in runs):  # e.g. events and metrics.csv in one folder
            log.name = f"{log.name} ({log.path.name})"
        found, errors = replay_curves(curves, checks, run_name=log.name)
        runs.append(_result(log, curves, found, errors))
    if not runs:
        if len(unreadable) == 1:
            raise BadInput(unreadable[0][1])
        raise BadInput(f"no run under {root} could be read: {unreadable[0][1]} (and {len(unreadable) - 1} more)")
    return AnalyzeResult(runs, unreadable)


def _result(log: RunLog, curves: Curves, found: list[Finding], errors: dict[str, str]) -> RunResult:
    steps = None
    if curves.steps is not None and len(curves.steps) and log.format != "keras-csv":
        steps = int(curves.steps[-1])
    return RunResult(
        name=log.name,
        path=str(log.path),
        format=log.format,
        findings=found,
        series=curves.used,
        steps=steps,
        epochs=curves.info.max_epochs,
        check_errors=errors,
    )


def _no_loss(log: RunLog) -> str:
    if log.format == "tensorboard" and not log.scalars:
        return f"{log.path}: no scalars in its event files (empty, or cut off before the first complete record)"
    what = "columns" if log.format.endswith("csv") else "scalar tags"
    found = ", ".join(sorted(log.columns or log.scalars)) or "none"
    return f"{log.path}: no loss curve found ({what}: {found}); name one with --map TAG=train_loss (or val_loss)"


# -- finding and reading sources ---------------------------------------------------------------

Source = tuple[Any, Path, int]  # (EventRun or CSV path, where, bytes)


def _discover(root: Path) -> list[Source]:
    if not root.exists():
        raise BadInput(f"{root}: no such file or directory")
    if root.is_file():
        if root.stat().st_size == 0:
            raise BadInput(f"{root} is empty")
        if is_event_file(root.name):
            run = EventRun(root.parent.name or root.name, root, {"": [root]})
            return [(run, root, root.stat().st_size)]
        return [(root, root, root.stat().st_size)]
    if not root.is_dir():
        raise BadInput(f"{root} is neither a file nor a directory")
    out: list[Source] = [(run, run.path, run.size) for run in find_event_runs(root)]
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(".csv"):
                csv_path = Path(folder) / name
                if _is_metrics_csv(csv_path):
                    out.append((csv_path, csv_path, csv_path.stat().st_size))
    if not out:
        if not any(root.iterdir()):
            raise BadInput(f"{root} is an empty directory")
        raise BadInput(
            f"{root} holds no TensorBoard event files (*tfevents*) and no metrics CSV "
            "(Keras CSVLogger or Lightning metrics.csv)"
        )
    return out


def _is_metrics_csv(path: Path) -> bool:
    """In a directory scan, only CSVs with an epoch or step column are logs (not data sets)."""
    try:
        header = {c.lower() for c in read_header(path)}
    except OSError:
        return False
    return bool(header & {"epoch", "step"})


def _read(source: Any, root: Path, advance: Callable[[int], None]) -> RunLog:
    if isinstance(source, EventRun):
        scalars = {}
        for prefix, files in source.files.items():
            tags = read_event_files(files, progress=advance)
            for tag, curve in tags.items():
                scalars[f"{prefix}/{tag}" if prefix else tag] = curve
        return RunLog(source.name, source.path, "tensorboard", scalars)
    path = Path(source)
    fmt, scalars, columns = read_csv_log(path, progress=advance)
    if root.is_file():
        name = path.name if path.name != "metrics.csv" else (path.parent.name or path.name)
    else:
        rel = path.relative_to(root).as_posix()
        name = rel[: -len("/metrics.csv")] if rel.endswith("/metrics.csv") else rel
    return RunLog(name, path, fmt, scalars, columns)


# The name this function had first: `from mlcheck.analyze import analyze` keeps working.
analyze = run

# `mlcheck.analyze(path)` calls `run`; see mlcheck/callable_package.py for why.
sys.modules[__name__].__class__ = CallablePackage
