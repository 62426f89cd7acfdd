"""`mlcheck analyze`: the same checks over logs that already exist.

    >>> import mlcheck
    >>> result = mlcheck.analyze.run("lightning_logs/")       # doctest: +SKIP
    >>> for run, finding in result.findings:                   # doctest: +SKIP
    ...     print(run, finding.format())

PATH is a TensorBoard log directory (any depth of runs; Keras' `train/` and `validation/`
sub-runs are merged into one run), a single event file, a Keras `CSVLogger` file or a Lightning
`CSVLogger` `metrics.csv` (a directory's `*.csv` files are read too). Which tag is which curve
is decided by `mlcheck.analyze.tags` (documented in docs/analyze.md, extendable). The findings
a callback or `Monitor` recorded live in a run's folder (`findings.jsonl`) are shown beside those
derived from its curves (`mlcheck.analyze.recorded`).

`mlcheck.analyze(path)` is the same call as `mlcheck.analyze.run(path)`: the package is callable
(see `mlcheck.callable_package`), and `mlcheck.analyze.analyze` is another name for `run`.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck import options as opt
from mlcheck.analyze.csvlogs import (
    MAX_INDEX,
    ULTRALYTICS_FORMAT,
    CSVLogError,
    read_csv_runs,
    read_header,
    ultralytics_augmented,
    ultralytics_pretrained,
)
from mlcheck.analyze.events import (
    KERAS_SUBRUNS,
    PARTIAL_RECORD,
    EventFileError,
    EventRun,
    Scalars,
    first_wall_time,
    group_event_runs,
    is_event_file,
    read_event_files,
    sorted_scalars,
)
from mlcheck.analyze.history import holds_lists, is_history_name, looks_like_history
from mlcheck.analyze.jsonlogs import is_json_lines, is_json_lines_name
from mlcheck.analyze.mlflow import FOLDER as MLFLOW_FOLDER
from mlcheck.analyze.mlflow import looks_like_metric_file, read_mlflow_run
from mlcheck.analyze.printed import looks_printed
from mlcheck.analyze.recorded import FINDINGS_FILE, FINDINGS_FOLDERS, Recorded, is_findings_file, read_findings
from mlcheck.analyze.replay import (
    EPOCH_ROW_FORMATS,
    HF_TRAINER_WRITER,
    Curves,
    RunLog,
    build_curves,
    is_hf_trainer_events,
    on_steps,
    passed_rises_demoted,
    replay_curves,
)
from mlcheck.analyze.samples import TABLE, SamplesCSVError, find_tables, judge_table, run_folder, sample_checks
from mlcheck.analyze.search import Listing, search
from mlcheck.analyze.tags import ROLES, classify, parse_role, register_tag
from mlcheck.analyze.trainer_state import FILE_NAME as TRAINER_STATE
from mlcheck.analyze.trainer_state import FORMATS as TRAINER_FORMATS
from mlcheck.analyze.wandb import is_wandb_file, read_wandb_run
from mlcheck.callable_package import CallablePackage
from mlcheck.checks.base import Check
from mlcheck.checks.curve import curve_minimums
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
        format: "tensorboard", "keras-csv", "keras-history", "json-epoch-records" (a JSON list of
            per-epoch dicts), "lightning-csv", "test-tube-csv"
            (Lightning 0.x's `TestTubeLogger` metrics.csv), "hf-trainer-state" (Hugging
            Face's trainer_state.json), "ultralytics-csv" (YOLO's results.csv), "detectron2-json",
            "mmdet-log-json", "mmengine-json", "json-lines", "mlflow", "wandb", "wandb-history", "printed-log", or
            "findings" for a folder that holds the findings recorded live but no loss curve.
        findings: the findings recorded live during training (`live`), then those the checks
            derived from the curves, less the checks that were recorded live (see docs/analyze.md).
        series: the tag used for each role, e.g. {"train_loss": "train_loss_step"}.
        steps: steps in the log (the last step), or None.
        epochs: epochs in the log, or None.
        check_errors: checks that failed on this run and were switched off, with the error.
        notes: what the reader could not take in, e.g. a file cut short by a corrupt record
            (each a line naming the file).
        live: the findings recorded live during training (`findings.jsonl` in the run's folder).
        findings_file: where those were read from, or None.
        info: what is worth knowing about the analysis but is no problem of the files, e.g. a
            loss curve too short for some checks to judge (each a line naming the run).
        same_curves_in: files of another format that hold the same loss curves (a second
            logger of the same fit: Lightning's `TensorBoardLogger` and `CSVLogger` together),
            analysed once, as this run.
        started: when the fit began (Unix seconds), where one folder of event files was read
            as several fits; None otherwise.
    """

    name: str
    path: str
    format: str
    findings: list[Finding]
    series: dict[str, str]
    steps: int | None = None
    epochs: int | None = None
    check_errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    live: list[Finding] = field(default_factory=list)
    findings_file: str | None = None
    info: list[str] = field(default_factory=list)
    same_curves_in: list[str] = field(default_factory=list)
    started: float | None = None

    def source(self, finding: Finding) -> str:
        """ "live" for a finding recorded during training, "analyze" for one derived now."""
        return "live" if any(finding is f for f in self.live) else "analyze"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "format": self.format,
            "series": self.series,
            "steps": self.steps,
            "epochs": self.epochs,
            "findings": len(self.findings),
            "live_findings": len(self.live),
            "findings_file": self.findings_file,
            "check_errors": self.check_errors,
            "notes": self.notes,
            "info": self.info,
            "same_curves_in": self.same_curves_in,
        }


@dataclass
class AnalyzeResult:
    """What `analyze` found: one `RunResult` per readable run, and the runs it could not read
    as (path, reason)."""

    runs: list[RunResult]
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: hidden folders under PATH that were not searched and may hold runs (not a known tool's:
    #: `mlcheck.analyze.search.TOOL_FOLDERS`); name one as PATH to read it
    not_searched: list[str] = field(default_factory=list)
    #: the other folders under PATH not searched: known tools' hidden folders (`.cache`,
    #: `.local`, `.git`, ...), installed packages, Python environments. Runs there were passed
    #: over without a word; the command now counts them in a note
    other_not_searched: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[tuple[str, Finding]]:
        """(run name, finding) for every finding of every run."""
        return [(run.name, f) for run in self.runs for f in run.findings]

    @property
    def sources(self) -> list[str]:
        """ "live" or "analyze" for each of `findings`, in the same order."""
        return [run.source(f) for run in self.runs for f in run.findings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [
                f.to_dict() | {"run": run.name, "source": run.source(f)} for run in self.runs for f in run.findings
            ],
            "runs": [r.to_dict() for r in self.runs],
            "unreadable": [{"path": p, "error": e} for p, e in self.unreadable],
            "not_searched": list(self.not_searched),
            "folders_not_searched": len(self.not_searched) + len(self.other_not_searched),
        }


def run(
    path: str | os.PathLike[str],
    checks: Sequence[Check] | None = None,
    select: Iterable[str] | None = None,
    suppress: Iterable[str] = (),
    mapping: Mapping[str, str] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    replay_progress: Callable[[str, int, int], None] | None = None,
    search_progress: Callable[[int, int, int], None] | None = None,
    examine_progress: Callable[[int, int], None] | None = None,
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
        replay_progress: called as replay_progress(run_name, epochs_done, epochs_total) while
            each run's curves go through the checks (every 256 epochs, and at its end).
        search_progress: called as search_progress(folders, files_seen, files_found) while a
            folder is searched for logs (every 64 folders, and at its end). Below `path`,
            hidden folders, `node_modules`, `site-packages`, `__pycache__`, Python environments
            and `/proc`, `/sys`, `/dev` are not searched (`mlcheck.analyze.search`).
        examine_progress: called as examine_progress(files_done, files_total) while the files
            the search found named like logs are told apart (a CSV's header read: a log or a
            data set), every 256 files and at the end; between the search and the reading, this
            took ~7 s for `/`.

    `select` and `suppress` also apply to the findings recorded live (`findings.jsonl`).

    Returns:
        An `AnalyzeResult`; `result.findings` lists (run name, Finding).

    Raises:
        mlcheck.errors.BadInput: nothing under `path` could be read (the message says why);
            runs that fail while others are read are listed in `result.unreadable` instead.
        ValueError: an unknown check id or role.
    """
    path, checks, select, suppress, mapping = _arguments(path, checks, select, suppress, mapping)
    opt.optional_function("progress", progress, "a function progress(bytes_done, bytes_total)")
    opt.optional_function(
        "search_progress", search_progress, "a function search_progress(folders, files_seen, files_found)"
    )
    opt.optional_function("examine_progress", examine_progress, "a function examine_progress(files_done, files_total)")
    opt.optional_function(
        "replay_progress", replay_progress, "a function replay_progress(run_name, epochs_done, epochs_total)"
    )
    wanted = _wanted(checks, select, suppress)
    per_sample = sample_checks(checks, select, suppress)
    checks = _select_checks(checks, select, suppress)

    root = Path(path)
    listing = _search(root, search_progress)
    tables = (find_tables(root) if listing is None else sorted(listing.of("table"))) if per_sample else []
    sources, unreadable, recorded = _discover_beside(root, tables, listing, examine_progress)
    total = sum(size for _, _, size in sources)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    runs: list[RunResult] = []
    read: list[Curves] = []  # each run's curves, in the order of `runs`
    own: list[tuple[RunLog, str]] = []  # mlcheck's own event files, without a loss curve
    for source, where, size in sources:
        start = done
        notes: list[str] = []
        each = _load(source, where, root, advance, notes, mapping)
        advance(start + size - done)
        for k, loaded in enumerate(each):  # the reader's notes are on the file: said with its first run
            _add_run(loaded, where, notes if k == 0 else [], checks, runs, read, own, unreadable, replay_progress)
    runs += _attach_recorded(root, runs, own, [read_findings(p) for p in recorded], wanted, unreadable)
    _judge_sample_tables(tables, per_sample, root, runs, unreadable)
    for where, reason in unreadable:
        logger.info("mlcheck analyze: skipping %s: %s", where, reason)
    if not runs:
        if len(unreadable) == 1:
            raise BadInput(unreadable[0][1])
        raise BadInput(_none_read(root, unreadable))
    hidden = [str(p) for p in listing.hidden_beside()] if listing is not None else []
    others = [str(p) for p in listing.skipped if str(p) not in hidden] if listing is not None else []
    return AnalyzeResult(runs, unreadable, hidden, others)


def _add_run(
    loaded: tuple[RunLog, Curves] | _OwnFiles | str,
    where: Path,
    notes: list[str],
    checks: list[Check],
    runs: list[RunResult],
    read: list[Curves],
    own: list[tuple[RunLog, str]],
    unreadable: list[Skipped],
    replay_progress: Callable[[str, int, int], None] | None = None,
) -> None:
    """Replays one loaded run through the checks and adds its result to `runs` (its curves to
    `read`), unless it is mlcheck's own files (`own`), unreadable, or a second logger's copy
    of a run already read."""
    if isinstance(loaded, _OwnFiles):
        own.append((loaded.log, loaded.reason))
        return
    if isinstance(loaded, str):
        unreadable.append((str(where), loaded))
        return
    log, curves = loaded
    twin = next((r for r, c in zip(runs, read) if r.format != log.format and _same_curves(c, curves)), None)
    if twin is not None:  # one fit, two loggers: its findings once
        twin.same_curves_in.append(str(log.path))
        example = (
            "the Hugging Face Trainer's trainer_state.json and its TensorBoard events"
            if log.from_hf_trainer or twin.format in TRAINER_FORMATS
            else "Keras' CSVLogger and its History saved with json.dump(history.history, f)"
            if {log.format, twin.format} <= {"keras-csv", "keras-history"}
            else "Lightning's TensorBoardLogger and CSVLogger together"
        )
        twin.info.append(
            f"{log.where} holds the same loss curves as {twin.name} (two loggers of one fit, e.g. {example}): "
            "analysed once, as that run."
        )
        return
    if any(r.name == log.name for r in runs):  # e.g. events and metrics.csv in one folder
        log.name = f"{log.name} ({log.path.name})"
    progress = None
    if replay_progress is not None:
        name = log.name

        def progress(done: int, total: int) -> None:
            replay_progress(name, done, total)

    curves, switched = _epoch_loss_where_the_stream_is_short(log, curves, checks)
    found, errors = replay_curves(curves, checks, run_name=log.name, progress=progress)
    if curves.by_step:
        found = [on_steps(f, curves.epochs, curves.step_epochs) for f in found]
        evaluations = f"{len(curves.epochs)} evaluation{'s' if len(curves.epochs) != 1 else ''}"
        what = "no epoch tag" if log.format == "tensorboard" else "a step column and no epoch column"
        log.info.append(
            f"{log.where} is a Hugging Face Trainer's log: its rows are its {evaluations} "
            "(the training loss as logged every `logging_steps`), each named by its step"
            if log.from_hf_trainer
            else f"{log.where} has {what}: its rows are read as steps, and each validation point is named by its step"
        )
    elif curves.validations_per_epoch_dropped:
        # `MLCheckCallback` judges the validation metrics at each epoch's end, the last of them:
        # the same curve here, said so that "epoch 3" is not read as the run's 13th validation
        with_val = sum(r.val_loss is not None for r in curves.epochs)
        log.info.append(
            f"{log.where} holds {curves.validations} validation losses in {with_val} epochs (Lightning's "
            "`val_check_interval` below 1, or an int): each epoch's last is judged, as MLCheckCallback does live"
        )
    if curves.validated_before_fit:
        log.info.append(
            f"{log.where} holds a validation loss at step 0, before the fit's first training step (a "
            "`trainer.validate()` before `fit`): the untrained model's, not judged as an epoch's"
        )
    result = _result(log, curves, found, errors, notes)
    result.info += log.info + switched + _short_curve(log, curves, checks)
    runs.append(result)
    read.append(curves)


#: wandb's link to a project's newest run folder
WANDB_LATEST = "latest-run"

# reasons named when no run could be read: each names its path and why (the informative one is
# often not the first: a folder of images beside a sub-run with tags of other names)
_REASONS_SHOWN = 5


def _none_read(root: Path, unreadable: list[tuple[str, str]]) -> str:
    reasons = "; ".join(f"[{i}] {why}" for i, (_, why) in enumerate(unreadable[:_REASONS_SHOWN], 1))
    more = len(unreadable) - _REASONS_SHOWN
    return f"no run under {root} could be read ({len(unreadable)} tried): {reasons}" + (
        f"; and {more} more" if more > 0 else ""
    )


def _wanted(
    checks: Sequence[Check] | None, select: Iterable[str] | None, suppress: Iterable[str]
) -> Callable[[str], bool]:
    """Whether a recorded finding's check id is wanted under `select` and `suppress`."""
    from mlcheck.options import check_ids

    given = [c.id for c in checks or ()]
    quiet = set(check_ids("suppress", suppress, also=given))
    only = set(check_ids("select", select, also=given)) or None
    return lambda check_id: check_id not in quiet and (only is None or check_id in only)


def _discover_beside(
    root: Path, tables: list[Path], listing: Listing | None, examine: Callable[[int, int], None] | None = None
) -> tuple[list, list, list]:
    """`_discover(root)`, except that a samples.csv given as PATH, or a folder holding one and
    no curves, is no error: the table is the run."""
    if root in tables:
        return [], [], []
    try:
        return _discover(root, listing, examine)
    except BadInput:
        if not tables:
            raise
        return [], [], []


def _judge_sample_tables(
    tables: list[Path], checks: list[Check], root: Path, runs: list[RunResult], unreadable: list[Skipped]
) -> None:
    """Adds the findings of the per-sample checks over each run's samples.csv to that run (the
    one logged in the same folder, else a run of its own); a table that cannot be read is
    one line in `unreadable`."""
    for table in tables:
        try:
            found, errors = judge_table(table, checks)
        except SamplesCSVError as exc:
            unreadable.append((str(table), str(exc)))
            continue
        folder = run_folder(table)
        owner = next((r for r in runs if _folder(r.path) == folder), None)
        if owner is None:
            name = folder.relative_to(root).as_posix() if root.is_dir() and folder != root else folder.name
            owner = RunResult(name=name or str(folder), path=str(folder), format="samples-csv", findings=[], series={})
            runs.append(owner)
        live = {f.check for f in owner.live}  # recorded live: the live finding stands (see _merge)
        owner.findings += [f for f in found if f.check not in live]
        owner.check_errors.update(errors)


def _select_checks(
    checks: Sequence[Check] | None, select: Iterable[str] | None, suppress: Iterable[str]
) -> list[Check]:
    from mlcheck.config import build_checks
    from mlcheck.options import check_ids

    given = [c.id for c in checks or ()]
    suppress = set(check_ids("suppress", suppress, also=given))  # a lone string is one id
    select = check_ids("select", select, also=given) or None
    if checks is None:
        return build_checks(select, suppress)
    return [c for c in checks if c.id not in suppress and (select is None or c.id in select)]


def _load(
    source: Any,
    where: Path,
    root: Path,
    advance: Callable[[int], None],
    notes: list[str],
    mapping: Mapping[str, str] | None,
) -> list[tuple[RunLog, Curves] | _OwnFiles | str]:
    """For each run in `source` (one, but for a Keras CSV that several fits appended to):
    (log, curves), or a line naming it and why it cannot be analysed, or `_OwnFiles` for event
    files of mlcheck's own that hold no loss curve."""
    try:
        logs = _read(source, root, advance, notes)
        loaded = []
        for log in logs:
            _drop_bad_epochs(log, mapping, notes)
            _drop_negative_steps(log, notes)
            loaded.append((log, build_curves(log, mapping)))
    except (EventFileError, CSVLogError, BadInput) as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"{exc.filename or where}: {_os_reason(exc)}"]
    except Exception as exc:  # a reader bug must not cost the other runs their findings
        logger.debug("mlcheck analyze: reading %s failed", where, exc_info=True)
        return [f"{where}: could not be read ({type(exc).__name__}: {exc}); please report this"]
    return [_with_loss(source, log, curves, notes) for log, curves in loaded]


def _with_loss(source: Any, log: RunLog, curves: Curves, notes: list[str]) -> tuple[RunLog, Curves] | _OwnFiles | str:
    """(log, curves) when there is a loss curve to judge; else why not, or `_OwnFiles`."""
    if not curves.has_loss:
        # a file cut short before any scalar says so; one that ends in a partial record after
        # none is told by `_no_loss` (empty, only a writer's header, or cut off before the first)
        cut = [n for n in notes if PARTIAL_RECORD not in n]
        reason = cut[0] if cut and not log.scalars else _no_loss(log)
        return _OwnFiles(log, reason) if _own_files(source) else reason
    return log, curves


@dataclass
class _OwnFiles:
    """A folder whose event files are all mlcheck's (findings, no curves): not a run of its own
    when a run sits beside it, else the run of its recorded findings."""

    log: RunLog
    reason: str


def _own_files(source: Any) -> bool:
    from mlcheck.sinks.tensorboard import EVENT_FILE_SUFFIX

    return isinstance(source, EventRun) and all(
        p.name.endswith(EVENT_FILE_SUFFIX) for files in source.files.values() for p in files
    )


def _folder(path: str | Path) -> Path:
    """The folder of a run read from `path` (a folder, an event file or a CSV)."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def _attach_recorded(
    root: Path,
    runs: list[RunResult],
    own: list[tuple[RunLog, str]],
    recorded: list[Recorded],
    wanted: Callable[[str], bool],
    unreadable: list[tuple[str, str]],
) -> list[RunResult]:
    """Adds the findings recorded live to the run of their folder (or of the folder above a
    `mlcheck/` folder); returns the runs made of recorded findings alone (no loss curve beside
    them). mlcheck's own event files with no run beside them and nothing recorded are unreadable,
    as before."""
    by_folder: dict[Path, RunResult] = {}
    fits: dict[Path, list[RunResult]] = {}  # a folder read as several fits: those that say when they began
    for r in runs:
        by_folder.setdefault(_folder(r.path), r)
        if r.started is not None:
            fits.setdefault(_folder(r.path), []).append(r)
    own_folders = {_folder(log.path): (log, reason) for log, reason in own}
    alone: dict[Path, RunResult] = {}
    for rec in recorded:
        folder = rec.path.parent
        if folder not in by_folder and folder.name in FINDINGS_FOLDERS and folder.parent in by_folder:
            folder = folder.parent
        target = by_folder.get(folder) or alone.get(folder)
        if target is None:
            if rec.note is not None and not rec.findings:
                unreadable.append((str(rec.path), rec.note))
                continue
            target = alone[folder] = _recorded_only(root, folder, own_folders.get(folder))
        if len(fits.get(folder, ())) > 1:
            for run, part in _by_fit(rec, fits[folder]):
                _merge(run, part, wanted)
            continue
        _merge(target, rec, wanted)
    for folder, (log, reason) in own_folders.items():
        if folder not in by_folder and folder not in alone:
            unreadable.append((str(log.path), reason))
    return list(alone.values())


def _by_fit(rec: Recorded, fits: list[RunResult]) -> list[tuple[RunResult, Recorded]]:
    """The findings of one folder that several fits wrote into, each given to the fit that had
    begun last when it was raised (its "time"; a line without one goes with the one before it,
    the first fit where none does). The note on the file goes with the first fit."""
    fits = sorted(fits, key=lambda r: r.started)
    parts = [Recorded(rec.path) for _ in fits]
    parts[0].note = rec.note
    k = 0
    for finding, when in zip(rec.findings, rec.times):
        if when is not None:
            k = max(0, sum(1 for r in fits if r.started <= when) - 1)
        parts[k].findings.append(finding)
        parts[k].times.append(when)
    return [(run, part) for run, part in zip(fits, parts) if part.findings or part.note is not None]


def _recorded_only(root: Path, folder: Path, own: tuple[RunLog, str] | None) -> RunResult:
    base = root if root.is_dir() else root.parent  # PATH may be the findings file itself
    rel = folder.relative_to(base).as_posix() if base in folder.parents else "."
    name = (base.resolve().name or str(base)) if rel == "." else rel
    result = RunResult(name=name, path=str(folder), format="findings", findings=[], series={})
    what = own[1].split(": ", 1)[-1] if own is not None else "no loss curve found"
    result.info.append(f"{folder}: {what}; only the findings recorded live during training are shown")
    return result


def _merge(run: RunResult, rec: Recorded, wanted: Callable[[str], bool]) -> None:
    """The recorded findings first; a derived finding of a check that was recorded live is
    dropped (the live one saw every step, the model and the data). A recorded `train-val-gap`
    WARNING that a later recorded INFO took back (the rise passed) is shown demoted to INFO, as
    analyze shows its own (`passed_rises_demoted`): the run's whole record says so."""
    live = passed_rises_demoted([f for f in rec.findings if wanted(f.check)])
    recorded_ids = {f.check for f in live}
    derived = [f for f in run.findings if not any(f is x for x in run.live) and f.check not in recorded_ids]
    run.live = run.live + live
    run.findings = run.live + derived
    run.findings_file = run.findings_file or str(rec.path)
    if rec.note is not None:
        run.notes.append(rec.note)


#: Fewest points of loss (step and epoch points together) two logs must share to be taken for
#: one fit: two seeded runs can start alike, not agree at every logged float32 for long.
_MIN_SHARED_POINTS = 4


def _same_curves(a: Curves, b: Curves) -> bool:
    """Whether two logs hold the same loss curves: the same steps with the same training
    losses, and the same epochs with the same validation losses, equal at float32 (what both
    loggers were handed; a CSV prints it in full, an event file keeps it as float32)."""

    def losses(c: Curves) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        steps = c.steps if c.steps is not None and c.train_loss is not None else np.zeros(0, np.int64)
        train = c.train_loss.astype(np.float32) if c.train_loss is not None else np.zeros(0, np.float32)
        rows = [r for r in c.epochs if r.val_loss is not None]
        return steps, train, np.array([r.epoch for r in rows]), np.array([r.val_loss for r in rows], np.float32)

    x, y = losses(a), losses(b)
    if len(x[0]) + len(x[2]) < _MIN_SHARED_POINTS:
        return False
    return all(u.shape == v.shape and np.array_equal(u, v, equal_nan=True) for u, v in zip(x, y))


def _epoch_loss_where_the_stream_is_short(
    log: RunLog, curves: Curves, checks: Sequence[Check]
) -> tuple[Curves, list[str]]:
    """(curves, a note): where the per-step training loss has fewer points than a loss-curve
    check judges while an epoch-level training loss (Lightning's `train_loss_epoch`,
    pytorch_tabular's `train_loss_0`) has as many epochs as every loss-curve check judges, the
    curves without the per-step loss, so the checks read the epoch column (they take the step
    stream wherever it has two points). A `log_every_n_steps=50` stream of 61 points is too short
    for `loss-plateau` (100), its 9 epochs are not (5; `loss-divergence` 8): the checks judge what
    the log holds, as they would on a log of the epoch column alone. Where some check would lose
    the judgement the stream gives it (7 epochs, `loss-divergence` needs 8), the stream is kept.
    The learning rate stays on its steps."""
    stream, tag = curves.train_loss, curves.used.get("epoch_train_loss")
    if stream is None or len(stream) < 2 or tag is None:
        return curves, []
    epochs = sum(r.train_loss is not None for r in curves.epochs)
    steps, per_epoch = curve_minimums(checks, "step"), curve_minimums(checks, "epoch")
    gained = [c for c, n in steps.items() if len(stream) < n]
    if not gained or any(epochs < n for n in per_epoch.values()):
        return curves, []  # the stream judges all, or the epochs do not: no check may lose its judgement
    which = ", ".join(f"{check} (needs {steps[check]})" for check in gained)
    note = (
        f"{log.where}: the training loss per step ({curves.used['train_loss']!r}) has {len(stream)} logged "
        f"point(s), too few for {which}: its per-epoch column ({tag!r}, {epochs} epochs) is judged instead. "
        f"{_denser(log)}"
    )
    return dataclasses.replace(curves, train_loss=None), [note]


def _short_curve(log: RunLog, curves: Curves, checks: Sequence[Check]) -> list[str]:
    """A line when the training loss has fewer points than the loss-curve checks judge."""
    # points logged, NaN or not: this is about how often the loss was written
    if curves.train_loss is not None and len(curves.train_loss) >= 2:
        unit, tag, points = "step", curves.used["train_loss"], len(curves.train_loss)
    else:
        unit, tag = "epoch", curves.used.get("epoch_train_loss")
        points = sum(r.train_loss is not None for r in curves.epochs)
        if tag is None and curves.train_loss is not None and len(curves.train_loss):  # one logged step
            unit, tag, points = "step", curves.used["train_loss"], len(curves.train_loss)
    if tag is None:
        if "val_loss" not in curves.used:
            return []
        # a fit shorter than its logging interval (Lightning's log_every_n_steps=50 over 48
        # optimizer steps, accumulate_grad_batches=4): "No problems found" said nothing of it
        which = ", ".join(curve_minimums(checks, "step"))
        return [
            f"{log.where}: no training loss was logged (only the validation loss, {curves.used['val_loss']!r}): "
            f"{which or 'the loss-curve checks'} had no training curve to judge, and no check compared the two. "
            f"{_denser(log)}"
        ]
    short = {check: n for check, n in curve_minimums(checks, unit).items() if points < n}
    if not short:
        return []
    which = ", ".join(f"{check} (needs {n})" for check, n in short.items())
    what = f"{points} logged point(s)" if unit == "step" else f"{points} epoch(s) and no per-step values"
    if unit == "epoch" and points >= 3 and "loss-divergence" in short:
        # `LossDivergence._short_climb`: what a short epoch log still gets judged on
        which += " (loss-divergence judged only on whether the last epoch undid the training)"
    return [f"{log.where}: the training loss ({tag!r}) has {what}: too few for {which} to judge it. {_denser(log)}"]


#: How to log more often, for the formats whose own setting says it
_DENSER = {
    "ultralytics-csv": (
        "Ultralytics writes one results.csv row per epoch (the loss per step is not saved): train for more "
        "epochs, or watch the training with a callback that sees every batch."
    ),
    "detectron2-json": (
        "detectron2's DefaultTrainer writes metrics.json every 20 iterations (`hooks.PeriodicWriter(writers, "
        "period=20)`): a smaller period writes more points."
    ),
    "mmdet-log-json": "MMDetection logs every `log_config.interval` iterations (default 50): set it lower.",
    "mmengine-json": "MMEngine logs every `default_hooks.logger.interval` iterations (default 50): set it lower.",
    "mlflow": 'Log the loss at every step: `mlflow.log_metric("loss", loss, step=step)`.',
    "fastai-csv": (
        "fastai's `CSVLogger` writes one row per epoch: add a callback that sees every batch (mlcheck's "
        "`Monitor` from a fastai `Callback`'s `after_batch`) to have every step's loss judged."
    ),
    "wandb": 'Log the loss at every step: `wandb.log({"train_loss": loss})` in the batch loop.',
    "wandb-history": 'Log the loss at every step: `wandb.log({"train_loss": loss})` in the batch loop.',
    "printed-log": "nanoGPT prints the loss every `log_interval` iterations: set it lower.",
}


def _denser(log: RunLog) -> str:
    """How to log the training loss more often, for what wrote this log."""
    if log.writer == "keras":
        return 'Log it more often: Keras `TensorBoard(update_freq="batch")`.'
    if log.writer == "mlcheck":
        return (
            "mlcheck's callback wrote these events, the loss every `every_n_steps` steps (default 25); "
            "its live checks judged every step during training (their findings, if any, are in "
            "findings.jsonl). For more points here: `MLCheckCallback(every_n_steps=1)` (the costlier "
            "statistics are then taken every step too)."
        )
    if log.format in ("keras-csv", "keras-history"):
        return (
            f"Keras' {'`CSVLogger` writes one row' if log.format == 'keras-csv' else '`History` holds one value'} "
            "per epoch: add mlcheck's `MLCheckCallback` to the fit to have every step's loss judged during training."
        )
    if log.format in _DENSER:
        return _DENSER[log.format]
    if log.format == "lightning-csv":
        return "Log it more often: `Trainer(log_every_n_steps=1)` and `self.log(..., on_step=True)`."
    if log.from_hf_trainer:  # was Lightning's advice
        return (
            "The Trainer logs the loss every `logging_steps` (default 500): log it more often with "
            "`TrainingArguments(logging_steps=1)`, or add mlcheck's `MLCheckCallback` to the Trainer."
        )
    if log.format == "test-tube-csv":
        return (
            "Lightning 0.x's `TestTubeLogger` keeps the step in its event files only (the `tf/` folder beside "
            "metrics.csv): analyse that folder, or log with a current Lightning and mlcheck's `MLCheckCallback`."
        )
    return (
        "Log it more often: every step (Lightning `Trainer(log_every_n_steps=1)`, "
        "`SummaryWriter.add_scalar` at each step)."
    )


def _event_writer(source: EventRun) -> str | None:
    """ "mlcheck" when every event file is mlcheck's own, "keras" when other event files sit in
    Keras' `train/`/`validation/` sub-runs (its `TensorBoard` callback), else None."""
    if _own_files(source):
        return "mlcheck"
    from mlcheck.sinks.tensorboard import EVENT_FILE_SUFFIX

    keras = any(
        not p.name.endswith(EVENT_FILE_SUFFIX) for prefix in KERAS_SUBRUNS for p in source.files.get(prefix, ())
    )
    return "keras" if keras else None


def _result(log: RunLog, curves: Curves, found: list[Finding], errors: dict[str, str], notes: list[str]) -> RunResult:
    steps = None
    if curves.steps is not None and len(curves.steps) and log.format not in EPOCH_ROW_FORMATS:
        steps = int(curves.steps[-1])
    if curves.by_step and curves.epochs[-1].step is not None:
        steps = max(steps or 0, curves.epochs[-1].step)
    epochs = curves.info.max_epochs
    if steps is not None and not curves.by_step and epochs and steps < epochs - 1:
        # fewer steps than epochs: a stream logged too sparsely to say how far the run went (a fit
        # shorter than its logging interval logs its step 0 only), not "to step 0"
        steps = None
    return RunResult(
        name=log.name,
        path=str(log.path),
        format=log.format,
        findings=found,
        series=curves.used,
        steps=steps,
        epochs=curves.info.max_epochs,
        check_errors=errors,
        notes=notes,
        started=log.started,
    )


def _drop_bad_epochs(log: RunLog, mapping: Mapping[str, str] | None, notes: list[str]) -> None:
    """An epoch curve (Lightning's `epoch` scalar) holding inf, NaN or 1e300 would become a
    nonsense epoch number: those points are dropped, with a note. (A CSV's epoch and step
    columns are checked when it is read: there they are the x of every curve.)"""
    for tag, curve in log.scalars.items():
        if classify(tag, mapping).role != "epoch":
            continue
        bad = ~(np.abs(curve.values) < MAX_INDEX)  # NaN compares false: bad too
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            notes.append(
                f"{log.where}: {int(bad.sum())} value(s) of {tag!r} are not epoch numbers (first: "
                f"{curve.values[first]:g} at step {int(curve.steps[first])}); they are ignored"
            )
            log.scalars[tag] = Scalars(curve.steps[~bad], curve.values[~bad])


def _drop_negative_steps(log: RunLog, notes: list[str]) -> None:
    """Steps count from 0, as a CSV's do (`csvlogs._drop_negative`): an event file's points at
    a negative step (`add_scalar("val_loss", v, -1)` for an evaluation before training) are
    left out, with a note, rather than judged as the start of the curve ("best at step -44")."""
    if log.format != "tensorboard":
        return
    dropped, first = 0, None
    for tag, curve in list(log.scalars.items()):
        negative = curve.steps < 0
        if not negative.any():
            continue
        dropped += int(negative.sum())
        if first is None:
            first = (tag, int(curve.steps[np.flatnonzero(negative)[0]]))
        if negative.all():
            del log.scalars[tag]
        else:
            log.scalars[tag] = Scalars(curve.steps[~negative], curve.values[~negative])
    if first is not None:
        notes.append(
            f"{log.where}: {dropped} point(s) are logged at a negative step (first: {first[0]!r} at step "
            f"{first[1]}); steps count from 0: those points are left out"
        )


def _no_loss(log: RunLog) -> str:
    if log.format == "tensorboard" and not log.scalars and log.others:
        held = ", ".join(f"{kind} ({n})" for kind, n in sorted(log.others.items()))
        return (
            f"{log.where}: no scalars in its event files, only {held}; mlcheck judges scalar curves "
            "(a loss logged with add_scalar, self.log or tf.summary.scalar)"
        )
    if log.format == "tensorboard" and not log.scalars:
        return (  # a run just started has the header alone: SummaryWriter writes it at once, the rest on flush
            f"{log.where}: no scalars in its event files (empty, only the header a writer starts with, or cut off "
            "before the first complete record); a run still training writes its scalars when its writer "
            "flushes (every 120 s by default: call writer.flush(), or wait)"
        )
    what = "columns" if log.format.endswith("csv") else "scalar tags"
    found = ", ".join(sorted(log.columns or log.scalars)) or "none"
    x = {"epoch", "step"}
    empty = [c for c in log.columns or () if c not in log.scalars and c.lower() not in x]
    if empty:  # e.g. a loss column of text: say so rather than look past it
        found += f"; without numbers: {', '.join(sorted(empty))}"
    return f"{log.where}: no loss curve found ({what}: {found}); name one with --map TAG=train_loss (or val_loss)"


# -- finding and reading sources ---------------------------------------------------------------

Source = tuple[Any, Path, int]  # (EventRun or CSV path, where, bytes)
Skipped = tuple[str, str]  # (path, why it was not read: a line that names the path)

_SPECIAL = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device"}


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot be read (permission denied)"
    return f"cannot be read ({(exc.strerror or str(exc)).lower()})"


def _inspect(path: Path) -> tuple[str, int | str]:
    """("file", size), ("dir", 0), or ("bad", a line naming `path` and why it cannot be read).
    Only a regular file is ever opened: a FIFO or a device named like a log would block."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return "bad", f"{path}: a symbolic link to {os.readlink(path)}, which does not exist"
        return "bad", f"{path}: no such file or directory"
    except OSError as exc:
        return "bad", f"{path}: {_os_reason(exc)}"
    if stat.S_ISDIR(st.st_mode):
        return "dir", 0
    if not stat.S_ISREG(st.st_mode):
        what = _SPECIAL.get(stat.S_IFMT(st.st_mode), "not a regular file")
        return "bad", f"{path}: {what}, not a log file; skipped without opening it"
    return "file", st.st_size


def _discover(
    root: Path, listing: Listing | None = None, examine: Callable[[int, int], None] | None = None
) -> tuple[list[Source], list[Skipped], list[Path]]:
    """The runs under `root`, the files and folders that looked like logs but could not
    be read (a run that cannot be read never hides the runs beside it), and the findings files
    recorded live (for a file: those of its run's folder). `listing`: the search of `root`
    already made, if any."""
    kind, info = _inspect(root)
    if kind == "bad":
        raise BadInput(str(info))
    if kind == "file":
        if is_findings_file(root.name):
            return [], [], [root]
        if info == 0:
            raise BadInput(f"{root} is empty")
        if root.suffix.lower() == ".ipynb":  # was "starts like a Keras History dict but holds no metric"
            raise BadInput(
                f"{root} is a Jupyter notebook: mlcheck reads the logs a run writes, not the notebook; save them "
                "from it (json.dump(history.history, open('history.json', 'w')), a CSVLogger, TensorBoard) "
                "or watch the fit with MLCheckCallback"
            )
        beside = [root.parent / f / FINDINGS_FILE for f in FINDINGS_FOLDERS]
        recorded = [p for p in beside if p.exists() or p.is_symlink()]
        if is_event_file(root.name):
            run = EventRun(root.parent.name or root.name, root, {"": [root]})
            return [(run, root, int(info))], [], recorded
        if root.parent.name == MLFLOW_FOLDER and not root.suffix and _is_mlflow_metric(root):
            return [(root.parent, root.parent, int(info))], [], recorded  # the MLflow run it is one metric of
        return [(root, root, int(info))], [], recorded
    if listing is None:
        listing = search(root, _kind)
    return _walk(root, listing, examine)


def _kind(folder: str, name: str) -> str | None:
    """What `_walk` and `find_tables` want of a file found in a folder search (None: nothing)."""
    if is_findings_file(name):
        return "findings"  # read later, never blocking (FIFOs are not opened)
    if name == TABLE.name and folder == TABLE.parent.name:
        return "table"
    if (
        is_event_file(name)
        or name.lower().endswith((".csv", ".log"))
        or is_history_name(name)
        or name == TRAINER_STATE
        or is_json_lines_name(name)
        or is_wandb_file(name)
        or (folder == MLFLOW_FOLDER and "." not in name)  # an MLflow run's metrics/<name>
    ):
        return "log"
    return None


def _search(root: Path, progress: Callable[[int, int, int], None] | None) -> Listing | None:
    """The one walk of `root` (None when it is no folder: `_discover` says why)."""
    return search(root, _kind, progress) if root.is_dir() else None


#: How many files named like logs are examined between two calls of `examine_progress`.
EXAMINE_EVERY = 256


def _walk(
    root: Path, listing: Listing, examine: Callable[[int, int], None] | None = None
) -> tuple[list[Source], list[Skipped], list[Path]]:
    events: dict[Path, list[Path]] = {}
    csvs: list[Source] = []
    skipped: list[Skipped] = []
    candidates = listing.of("log")
    for k, path in enumerate(candidates):
        if examine is not None and k % EXAMINE_EVERY == 0:
            examine(k, len(candidates))
        _take(path, events, csvs, skipped)
    # then the folders of event files are sorted into runs (some files' heads read): as many
    # steps again as there are such folders
    total, done = len(candidates) + len(events), len(candidates)

    def grouped(n: int) -> None:
        nonlocal done
        done += n
        if examine is not None:
            examine(done, total)

    if examine is not None:
        examine(done, total)
    for exc in listing.errors:
        if Path(exc.filename) == root:
            raise BadInput(f"{root}: {_os_reason(exc)}")
        skipped.append((exc.filename, f"{exc.filename}: {_os_reason(exc)}"))
    recorded = listing.of("findings")
    out: list[Source] = [(run, run.path, run.size) for run in group_event_runs(root, events, grouped)]
    out += _last_states(csvs)
    if not out and not skipped and not recorded:
        if not listing.anything:
            raise BadInput(f"{root} is an empty directory")
        not_searched = listing.skipped_line()
        raise BadInput(
            f"{root} holds no TensorBoard event files (*tfevents*) and no metrics CSV "
            "(Keras CSVLogger *.csv or *.log, Lightning metrics.csv, YOLO results.csv) and no saved Keras History "
            "(*history*.json, *history*.txt, *loss*.json) and no JSON-lines log (metrics.json, scalars.json, "
            "*.log.json, wandb-history.jsonl) "
            "and no MLflow run (metrics/) and no wandb run (run-*.wandb)"
            + (f"; {not_searched}" if not_searched else "")
        )
    return out, skipped, recorded


_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def _last_states(csvs: list[Source]) -> list[Source]:
    """`csvs` less the Trainer states that a later one holds: the Trainer saves one into every
    `checkpoint-<step>/` of its output folder, each the history up to that step; the output
    folder's own (written at the end), else the last checkpoint's, is the run."""
    best: dict[Path, tuple[float, Path]] = {}
    for path, _, _ in csvs:
        if path.name != TRAINER_STATE:
            continue
        m = _CHECKPOINT.fullmatch(path.parent.name)
        out_dir, rank = (path.parent.parent, int(m[1])) if m else (path.parent, math.inf)
        if out_dir not in best or rank > best[out_dir][0]:
            best[out_dir] = (rank, path)
    keep = {path for _, path in best.values()}
    return [c for c in csvs if c[0].name != TRAINER_STATE or c[0] in keep]


def _take(path: Path, events: dict[Path, list[Path]], csvs: list[Source], skipped: list[Skipped]) -> None:
    """Files an event file or CSV found by `_walk` under what it is."""
    kind, info = _inspect(path)
    if kind != "file":
        skipped.append((str(path), str(info)))
    elif is_event_file(path.name):
        events.setdefault(path.parent, []).append(path)
    elif is_wandb_file(path.name):
        # `wandb/latest-run/` is a link to the newest `run-*` folder (a copy of it where a repository
        # holds it): that run once
        if path.parent.name != WANDB_LATEST or not list(path.parent.parent.glob(f"*/{path.name}"))[1:]:
            csvs.append((path, path, int(info)))
    elif path.parent.name == MLFLOW_FOLDER and not path.suffix:
        # an MLflow run's metric files: the run is their folder, taken once
        if path.parent not in {c[0] for c in csvs} and _is_mlflow_metric(path):
            csvs.append((path.parent, path.parent, int(info)))
    else:
        try:
            if _is_metrics_csv(path):
                csvs.append((path, path, int(info)))
        except OSError as exc:
            skipped.append((str(path), f"{path}: {_os_reason(exc)}"))


def _is_mlflow_metric(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return looks_like_metric_file(path, fh.read(256))


def _is_metrics_csv(path: Path) -> bool:
    """In a directory scan, only CSVs with an epoch or step column are logs (not data sets),
    CSVs named like a saved History (`*history*.csv`) with a loss column (a pandas frame of
    `history.history`: no epoch column),
    files named like a saved Keras History that start like one, and every `trainer_state.json`
    (one that cannot be read is named). A `*.log` file is read when its header is a Keras
    `CSVLogger`'s, an epoch column and a loss (Keras' own example writes
    `CSVLogger("training.log")`); other `.log` files are text, not metrics. OSError: the file
    cannot be read."""
    if path.name == TRAINER_STATE:  # read, so that one that cannot be is named, not passed over
        return True
    if is_history_name(path.name):  # a Keras History dict, per-epoch records or a Trainer's log_history list
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            if not looks_like_history(fh.readline(4096)):
                return False
            # a `*loss*.json` is a log where it holds lists (not a loss's settings)
            return "history" in path.name.lower() or (fh.seek(0) == 0 and holds_lists(fh.read(1 << 16)))
    if is_json_lines_name(path.name):  # detectron2's metrics.json, MMEngine's scalars.json, *.log.json
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            return is_json_lines(path, fh.read(1 << 16))
    header = {c.lower() for c in read_header(path)}
    if path.name.lower().endswith(".log"):
        if "epoch" in header and any("loss" in c for c in header):
            return True
        with open(path, encoding="utf-8", errors="replace") as fh:
            return looks_printed(fh.read(8192))  # nanoGPT's `iter N: loss X` lines
    if "history" in path.name.lower():  # `pd.DataFrame(history.history).to_csv("model_history.csv")`
        return any("loss" in c for c in header)
    return bool(header & {"epoch", "step"})


def _starts_trained(path: Path, fmt: str) -> bool | None:
    """Whether a CSV log's run started from trained weights, where its tool's files say so."""
    return ultralytics_pretrained(path) if fmt == ULTRALYTICS_FORMAT else None


def _read(source: Any, root: Path, advance: Callable[[int], None], notes: list[str]) -> list[RunLog]:
    """The runs in one source: one, but for a Keras CSV that several fits appended to."""
    if isinstance(source, EventRun):
        return _event_fits(source, advance, notes)
    path = Path(source)
    if path.is_dir():  # an MLflow run's metrics/ folder
        fmt, scalars, columns = read_mlflow_run(path, notes)
        run = path.parent  # mlruns/<experiment>/<run id>: named by its path below PATH, else by its id
        name = run.relative_to(root).as_posix() if root in run.parents else run.name
        return [RunLog(name, path, fmt, scalars, columns)]
    if is_wandb_file(path.name):
        fmt, scalars, columns = read_wandb_run(path, notes)
        advance(path.stat().st_size)
        run = path.resolve().parent  # wandb/run-<date>_<time>-<id>: named by its path below PATH, else by its folder
        name = run.relative_to(root.resolve()).as_posix() if root.resolve() in run.parents else run.name
        return [RunLog(name, path, fmt, scalars, columns)]
    fmt, fits, columns = read_csv_runs(path, progress=advance, notes=notes)
    if root.is_file():
        name = path.name if path.name != "metrics.csv" else (path.parent.name or path.name)
    else:
        rel = path.relative_to(root).as_posix()
        name = rel[: -len("/metrics.csv")] if rel.endswith("/metrics.csv") else rel
    if len(fits) == 1:
        yolo = fmt == ULTRALYTICS_FORMAT
        return [
            RunLog(
                name,
                path,
                fmt,
                fits[0].scalars,
                columns,
                pretrained=_starts_trained(path, fmt),
                augmented=ultralytics_augmented(path) if yolo else None,
            )
        ]
    if fits[0].prefix is not None:
        return _prefixed_fits(name, path, fmt, fits)
    # Keras' CSVLogger(append=True) over several fits: each fit is a run of its own
    labels = [f"fit {k} of {len(fits)}" for k in range(1, len(fits) + 1)]
    logs = [RunLog(f"{name} ({fit})", path, fmt, f.scalars, columns, fit=fit) for fit, f in zip(labels, fits)]
    logs[0].info.append(
        f"{path}: its epoch column restarts at data row(s) {', '.join(str(f.first_row) for f in fits[1:])} "
        f"(Keras' CSVLogger with append=True, a new fit appended to the file): read as {len(fits)} runs, "
        + ", ".join(f"fit {k} (rows {f.first_row}-{f.last_row})" for k, f in enumerate(fits, 1))
    )
    return logs


def _prefixed_fits(name: str, path: Path, fmt: str, fits: list) -> list[RunLog]:
    """One run per prefix of a History dict that holds two fits or two heads (`loss` and
    `fine_tune_loss`, `reg_loss` and `cls_loss`, each with its `val_loss`): which is "the" run
    the file cannot say, so each is judged as its own."""
    labels = [f"{f.prefix}*" if f.prefix else "unprefixed" for f in fits]
    logs = [
        RunLog(f"{name} ({label})", path, fmt, f.scalars, list(f.scalars), fit=f"{label} curves")
        for label, f in zip(labels, fits)
    ]
    logs[0].info.append(
        f"{path}: holds {len(fits)} sets of curves, each with its own loss and val_loss ("
        + ", ".join(f"{f.prefix or ''}loss/{f.prefix or ''}val_loss" for f in fits)
        + "): two fits or two heads, read as one run each"
    )
    return logs


def _event_fits(source: EventRun, advance: Callable[[int], None], notes: list[str]) -> list[RunLog]:
    """The runs in one folder of event files: one, but where a later file's steps start again
    from the folder's first step (Keras' `TensorBoard(log_dir="logs")` reused by a second
    `fit`, which writes a new file per sub-run, its epochs from 0 again): one run per fit, as
    TensorBoard would otherwise draw two fits over each other and later values would overwrite
    earlier ones here. A file starting later than that (a run resumed from a checkpoint,
    `trainer.test()` after `fit`) continues its run."""
    others: dict[str, int] = {}
    per_prefix = {}  # prefix -> fits -> each file's scalars
    began: dict[int, float] = {}  # id of a file's scalars -> when the file was begun
    for prefix, files in source.files.items():
        read = [read_event_files([f], progress=advance, notes=notes, others=others) for f in files]
        per_prefix[prefix] = _fit_groups(read, files)
        for tags, f in zip(read, files):
            when = first_wall_time(f)
            if when is not None:
                began[id(tags)] = when
    counts = {len(fits) for fits in per_prefix.values()}
    # split only where every sub-run tells the same story (Keras' train/ and validation/ pair up)
    n = counts.pop() if len(counts) == 1 else 1
    if n == 1:
        per_prefix = {p: [[f for fit in fits for f in fit]] for p, fits in per_prefix.items()}
    writer = _event_writer(source)
    logs = []
    for k in range(n):
        scalars = {}
        for prefix, fits in per_prefix.items():
            for tag, curve in _merged(fits[k]).items():
                scalars[source.tag_name(prefix, tag)] = curve
        if writer is None and is_hf_trainer_events(scalars):
            writer = HF_TRAINER_WRITER  # its advice names `logging_steps`, not Lightning's setting
        fit = None if n == 1 else f"fit {k + 1} of {n}"
        name = source.name if fit is None else f"{source.name} ({fit})"
        logs.append(RunLog(name, source.path, "tensorboard", scalars, writer=writer, others=others, fit=fit))
        if n > 1:  # when the fit began: the findings it recorded live are told apart by it
            times = [began[id(tags)] for fits in per_prefix.values() for tags in fits[k] if id(tags) in began]
            logs[-1].started = min(times, default=None)
    if n > 1:
        logs[0].info.append(
            f"{source.path}: the steps of its event files start again from the first step {n - 1} time(s) "
            f"(a log folder reused by another fit, e.g. Keras' TensorBoard(log_dir=...) with the same folder): "
            f"read as {n} runs, one per fit, in the order of the files' names"
        )
    return logs


def _fit_groups(read: list[dict[str, Scalars]], files: list[Path] | None = None) -> list[list[dict[str, Scalars]]]:
    """Files' scalars (in order) grouped by fit: a file whose losses start at or before the
    first fit's first step, while the fit before it went past that step, starts a new fit.
    Files without a loss (Keras' graph, Lightning's `hp_metric`, written at step 0 into every
    file, a test's scalars) join the fit they follow, and so does the file of a second writer
    of the same process (`files`' names): Keras' own `TensorBoard(log_dir="logs")` beside
    mlcheck's callback at its default `log_dir="logs"` writes its epochs from 0 into the
    folder mlcheck's file of the same fit is in, which is one fit, not two."""
    fits: list[list[dict[str, Scalars]]] = [[]]
    writers: list[tuple[str, str] | None] = []  # the current fit's files' (process, writer)
    start = last = None
    for tags, path in zip(read, files if files is not None else [None] * len(read)):
        writer = _file_writer(path)
        steps = [c.steps for t, c in tags.items() if len(c) and classify(t).role in _LOSS_ROLES]
        if steps:
            lo, hi = min(int(s[0]) for s in steps), max(int(s[-1]) for s in steps)
            if start is None:
                start = lo
            elif lo <= start < last and not _second_writer(writer, writers):
                fits.append([])
                writers = []
            last = hi if fits[-1] == [] or last is None else max(last, hi)
        fits[-1].append(tags)
        writers.append(writer)
    return fits


def _file_writer(path: Path | None) -> tuple[str, str] | None:
    """An event file's (process, writer) from its name, `events.out.tfevents.<time>.<host>.<pid>.
    <counter>[.<suffix>]` as TensorFlow, torch, tensorboardX and mlcheck name them: process is
    `<host>.<pid>`, writer the suffix (`v2` for TensorFlow's, `mlcheck` for mlcheck's, empty
    for torch's). None for another name."""
    prefix = "events.out.tfevents."
    if path is None or not path.name.startswith(prefix):
        return None
    parts = path.name[len(prefix) :].split(".")
    counters = [i for i, part in enumerate(parts) if i >= 3 and part.isdigit()]
    if not counters:
        return None
    i = counters[-1]
    return ".".join(parts[1:i]), ".".join(parts[i + 1 :])


def _second_writer(writer: tuple[str, str] | None, writers: list[tuple[str, str] | None]) -> bool:
    """`writer`'s file is another writer's beside the current fit's: the fit holds a file of the
    same process by another writer and none by this one (two fits of one process by one writer
    are still two fits)."""
    if writer is None:
        return False
    process, kind = writer
    same = [w for w in writers if w is not None and w[0] == process]
    return any(w[1] != kind for w in same) and not any(w[1] == kind for w in same)


_LOSS_ROLES = ("loss", "train_loss", "epoch_train_loss", "val_loss")


def _merged(files: list[dict[str, Scalars]]) -> dict[str, Scalars]:
    """The scalars of several files of one run: where steps repeat, the later file wins."""
    parts: dict[str, list[Scalars]] = {}
    for tags in files:
        for tag, curve in tags.items():
            parts.setdefault(tag, []).append(curve)
    out = {}
    for tag, curves in parts.items():
        if len(curves) == 1:  # the usual case: no copy of a long curve
            out[tag] = curves[0]
            continue
        steps = np.concatenate([c.steps for c in curves])
        out[tag] = sorted_scalars(steps, np.concatenate([c.values for c in curves]))
    return out


def _arguments(path: Any, checks: Any, select: Any, suppress: Any, mapping: Any) -> tuple[Any, ...]:
    """`run`'s arguments checked, each refusal naming its argument; a lone id or check is one
    item, and iterators are read once here (a generator for `suppress` was read empty later)."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a path (str or os.PathLike) to logs, got {path!r}")
    checks, select, suppress = opt.selection(checks, select, suppress)
    if mapping is not None:
        if not isinstance(mapping, Mapping):
            raise TypeError(f"mapping must be a dict of tag (or glob pattern) -> role, got {mapping!r}")
        for tag, role in mapping.items():
            if not isinstance(tag, str) or not isinstance(role, str):
                raise TypeError(f"mapping must map tags (strings) to roles (strings), got {tag!r}: {role!r}")
            parse_role(role)
    return path, checks, select, suppress, mapping


# The name this function had first: `from mlcheck.analyze import analyze` keeps working.
analyze = run

# `mlcheck.analyze(path)` calls `run`; see mlcheck/callable_package.py for why.
sys.modules[__name__].__class__ = CallablePackage
