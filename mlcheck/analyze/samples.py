"""`mlcheck analyze` over the per-sample table a run wrote, `<log_dir>/mlcheck/samples.csv`:
`noisy-labels` and `weak-slice` judged again from a finished run's files, by the same check
classes the callback ran (`NoisyLabels.on_end`, `WeakSlice.load_store`).

What the table cannot give back: the keys of a `slice_by=` function (weak-slice judges classes
only) and the run's step; everything else the two checks judge is in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from mlcheck.analyze.search import search
from mlcheck.checks.base import Check
from mlcheck.checks.samples import NoisyLabels, WeakSlice
from mlcheck.findings import Finding
from mlcheck.run import RunInfo, RunState
from mlcheck.samples import CSV_PATH, SamplesCSVError, read_samples_csv

__all__ = ["SAMPLE_CHECKS", "TABLE", "SamplesCSVError", "find_tables", "judge_table", "run_folder", "sample_checks"]

#: The checks a samples.csv is judged by.
SAMPLE_CHECKS = {NoisyLabels.id: NoisyLabels, WeakSlice.id: WeakSlice}
#: Where a run's table lies, relative to its log directory.
TABLE = CSV_PATH


def sample_checks(checks: Sequence[Check] | None, select: Iterable[str] | None, suppress: Iterable[str]) -> list[Check]:
    """The per-sample checks to judge a table with: those in `checks`, else (the table is there
    because the run had them on, though they are off by default) a default instance of each
    that `select` and `suppress` leave in."""
    given = [c for c in checks or () if c.id in SAMPLE_CHECKS]
    if given:
        return given
    select = None if select is None else set([select] if isinstance(select, str) else select)
    suppress = {suppress} if isinstance(suppress, str) else set(suppress)
    return [cls() for cid, cls in SAMPLE_CHECKS.items() if cid not in suppress and (select is None or cid in select)]


def find_tables(root: Path) -> list[Path]:
    """The samples.csv files under `root` (or `root` itself when it is one), in their runs'
    `mlcheck/` folders, searched as `mlcheck.analyze.search` searches for logs (symbolic links
    to folders are not followed)."""
    if root.is_file():
        return [root] if root.name == TABLE.name else []
    if not root.is_dir():
        return []
    listing = search(root, lambda folder, name: "table" if (folder, name) == (TABLE.parent.name, TABLE.name) else None)
    return sorted(listing.of("table"))


def judge_table(path: Path, checks: Sequence[Check]) -> tuple[list[Finding], dict[str, str]]:
    """(findings, {check id: error} for checks that failed) of `checks` over one samples.csv.
    Raises `SamplesCSVError` (a line naming the file and the problem) when it cannot be read."""
    store = read_samples_csv(path)
    classes = max((int(s.column("labels").max(initial=0)) for s in store.splits.values()), default=0) + 1
    run = RunState(RunInfo(task="classification", num_classes=classes))
    run.samples = store
    run.samples_csv = path
    found: list[Finding] = []
    errors: dict[str, str] = {}
    for check in checks:
        try:
            check.reset()
            if isinstance(check, WeakSlice):
                check.load_store(store)
            found += list(check.on_end(run))
        except Exception as exc:  # one check's failure never costs the others their findings
            errors[check.id] = f"{type(exc).__name__}: {exc}"
    return found, errors


def run_folder(table: Path) -> Path:
    """The log directory a samples.csv belongs to."""
    return table.parent.parent if table.parent.name == TABLE.parent.name else table.parent
