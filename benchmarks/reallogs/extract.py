"""Pulls per-epoch Keras console logs out of notebooks in a git snapshot (used to build the corpus).

    python benchmarks/reallogs/extract.py GITDIR [PATH.ipynb ...]   # lists the fits found

Each `fit` printout in a code cell's output ("Epoch k/N" then "loss: .. - val_loss: .." per epoch,
any verbosity that prints per epoch) becomes one run; a cell holding several fits (the epoch counter
restarts at 1) gives several. Values are kept as printed. Once an epoch's line with `val_loss` has
been read, later lines of that epoch without one (an `evaluate()` after the last epoch, a callback's
print) are not read: they would overwrite the epoch's training loss with a test loss.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

_EPOCH = re.compile(r"^\s*Epoch\s+(\d+)\s*/\s*(\d+)")
_METRIC = re.compile(
    r"(?<![\w/])([a-zA-Z_][\w]*)\s*:\s*(-?(?:nan|inf|\d+(?:\.\d+)?(?:e[-+]?\d+)?))(?![\d.])", re.IGNORECASE
)
_SKIP = {"ETA", "eta", "lr_step"}


def _cell_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        text = out.get("text")
        if text is None:
            text = out.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else str(text))
    return "".join(parts)


def epochs_from_text(text: str) -> list[list[dict]]:
    """Runs (lists of {epoch, metric: value}) in a console printout."""
    runs: list[list[dict]] = []
    current: dict | None = None
    for raw in re.split(r"[\r\n]+", text):
        m = _EPOCH.match(raw)
        if m:
            epoch = int(m.group(1))
            if epoch == 1 or not runs:
                runs.append([])
            current = {"epoch": epoch}
            runs[-1].append(current)
            rest = raw[m.end() :]
        else:
            rest = raw
        if current is None or "loss" not in rest:
            continue
        values = {k: v for k, v in _METRIC.findall(rest) if k not in _SKIP}
        if "val_loss" in current and "val_loss" not in values:
            continue  # the epoch is complete: a later line without val_loss is evaluate() or a callback
        if "loss" in values or "val_loss" in values:
            current.update({k: float(v) for k, v in values.items()})  # the last progress line wins
    return [[e for e in run if "val_loss" in e] for run in runs if any("val_loss" in e for e in run)]


def notebook_runs(gitdir: str, path: str, commit: str = "HEAD") -> list[tuple[int, list[dict]]]:
    shown = subprocess.run(["git", "-C", gitdir, "show", f"{commit}:{path}"], capture_output=True)
    if shown.returncode:  # a snapshot may list its largest files without holding them
        return []
    try:
        nb = json.loads(shown.stdout)
    except ValueError:  # a notebook committed broken (a merge conflict, a truncated save)
        return []
    found = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for run in epochs_from_text(_cell_text(cell)):
            found.append((index, run))
    return found


def main(argv: list[str]) -> int:
    gitdir = argv[0]
    paths = argv[1:] or [
        p
        for p in subprocess.run(
            ["git", "-C", gitdir, "ls-tree", "-r", "--name-only", "HEAD"], capture_output=True, text=True
        ).stdout.split("\n")
        if p.endswith(".ipynb")
    ]
    for path in paths:
        runs = notebook_runs(gitdir, path)
        for cell, run in runs:
            keys = sorted(set().union(*run) - {"epoch"})
            vl = [e.get("val_loss") for e in run]
            print(f"{path}\tcell {cell}\t{len(run)} epochs\t{keys}\tval_loss {vl}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
