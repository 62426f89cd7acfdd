"""Reading an MLflow run from its file store: `mlruns/<experiment>/<run id>/metrics/<name>`.

`mlflow.log_metric` (and the autologgers: Keras' `loss`, `val_loss`, `lr` per epoch; Lightning's
`train_loss`, `val_loss`, `epoch`) writes one text file per metric in the run's `metrics/`
folder, a line per logged value: `<timestamp ms> <value> <step>` (older versions: no step, read
as step 0); a name with `/` (`train/loss`) is a file in a sub-folder. The run is its `metrics/`
folder; each file a curve against its steps, named by its path below `metrics/`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mlcheck.analyze.events import Scalars, sorted_scalars
from mlcheck.errors import CSVLogError

FORMAT = "mlflow"
FOLDER = "metrics"
# a metric file of a run of millions of steps holds ~40 bytes a line
MAX_BYTES = 256 << 20
_LINE = re.compile(r"^\s*(\d{9,})\s+(\S+)(?:\s+(-?\d+))?\s*$")


def looks_like_metric_file(path: Path, head: str) -> bool:
    """A file with no suffix in a `metrics/` folder whose first line is `<timestamp> <value> [<step>]`."""
    first = head.split("\n", 1)[0]
    return path.parent.name == FOLDER and not path.suffix and bool(_LINE.match(first))


def run_folder_of(path: Path) -> Path | None:
    """The `metrics/` folder above a metric file (`metrics/train/loss` for a `train/loss`), or None."""
    for parent in path.parents:
        if parent.name == FOLDER:
            return parent
    return None


def read_mlflow_run(metrics: Path, notes: list[str] | None = None) -> tuple[str, dict[str, Scalars], list[str]]:
    """(FORMAT, scalars by metric name, names) of a run's `metrics/` folder; CSVLogError when none
    of its files holds a logged value."""
    out: dict[str, Scalars] = {}
    for path in sorted(p for p in metrics.rglob("*") if p.is_file() and not p.name.startswith(".")):
        name = path.relative_to(metrics).as_posix()
        if path.stat().st_size > MAX_BYTES:
            raise CSVLogError(f"{path} holds over {MAX_BYTES >> 20} MiB: not an MLflow metric file")
        steps, values, bad = [], [], 0
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _LINE.match(line)
            try:
                value = float(m[2]) if m else None
            except ValueError:
                value = None
            if value is None:
                bad += line.strip() != ""
                continue
            steps.append(int(m[3]) if m[3] is not None else 0)
            values.append(value)
        if bad and notes is not None:
            notes.append(f"{path}: {bad} line(s) that are not `<timestamp> <value> <step>` left out")
        if steps and min(steps) >= 0:
            out[name] = sorted_scalars(np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64))
    if not out:
        raise CSVLogError(f"{metrics}: an MLflow run's metrics folder with no logged value")
    return FORMAT, out, list(out)
