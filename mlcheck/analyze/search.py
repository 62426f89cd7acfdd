"""Searching a folder for logs: one walk, shared by the log reader and the samples tables,
that leaves out the folders no training run writes its logs to, and says how far it has got.

`mlcheck analyze ~` (or `/`) walked every file of the tree twice, silently, for minutes: a home
folder holds virtualenvs, `node_modules` and `.git` folders of hundreds of thousands of files,
and `/` the kernel's `/proc` and `/sys`. A folder given as PATH is always searched; below it
these are not (`SKIPPED_HELP` says which, for `--help` and docs/analyze.md):

- hidden folders (`.git`, `.venv`, `.cache`, `.ipynb_checkpoints`, ...): version control, tools'
  caches and environments; training loggers write to visible folders (`lightning_logs/`,
  `logs/`, `runs/`, `output_dir/`);
- `node_modules`, `site-packages`, `dist-packages`, `__pycache__`: installed packages;
- virtual environments and conda environments (a folder holding `pyvenv.cfg` or `conda-meta/`);
- `/proc`, `/sys` and `/dev` when the search starts at `/`: the kernel's views, not files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Folder names never searched below PATH: installed packages and byte-code caches.
SKIPPED_NAMES = frozenset({"node_modules", "site-packages", "dist-packages", "__pycache__"})
#: What marks a folder as a Python environment: its packages are not searched.
ENVIRONMENT_MARKS = ("pyvenv.cfg", "conda-meta")
#: The kernel's file systems under `/`.
SYSTEM_FOLDERS = frozenset({"proc", "sys", "dev"})
#: One line for `--help` and the docs.
SKIPPED_HELP = (
    "hidden folders (.git, .venv, ...), node_modules, site-packages, __pycache__, Python environments "
    "and /proc, /sys, /dev are not searched below PATH (name one as PATH to read it)"
)
#: Hidden folders of version control, editors and tools, which never hold a training run: passed
#: over without a word. Another hidden folder (`.mlcheck-demo/`, Guild's `.guild/`) is named in a
#: note when runs were found beside it, since it may hold runs of its own.
TOOL_FOLDERS = frozenset(
    {".git", ".hg", ".svn", ".venv", ".tox", ".nox", ".cache", ".idea", ".vscode", ".ipynb_checkpoints",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs", ".hydra", ".github", ".gitlab", ".devcontainer",
     ".dvc", ".local", ".config", ".npm", ".cargo", ".rustup", ".conda", ".pyenv", ".ssh", ".vscode-server"}
)  # fmt: skip
#: How many folders a walk lists between two calls of its progress function.
PROGRESS_EVERY = 64


@dataclass
class Listing:
    """What one walk found.

    Attributes:
        files: the files `classify` gave a kind, by kind, in walk order (sorted within a folder).
        errors: folders that could not be listed.
        skipped: folders not searched (see the module docstring), in walk order.
        folders: folders listed.
        seen: files seen (of any kind).
        anything: whether any folder listed held anything at all.
    """

    files: dict[str, list[Path]] = field(default_factory=dict)
    errors: list[OSError] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    folders: int = 0
    seen: int = 0
    anything: bool = False

    def of(self, kind: str) -> list[Path]:
        return self.files.get(kind, [])

    def found(self) -> int:
        return sum(len(v) for v in self.files.values())

    def hidden_beside(self) -> list[Path]:
        """The hidden folders not searched that are no known tool's (`TOOL_FOLDERS`)."""
        return [p for p in self.skipped if p.name.startswith(".") and p.name not in TOOL_FOLDERS]

    def skipped_line(self, shown: int = 3) -> str:
        """'3 folders not searched (a/.git, b/node_modules, c/.venv)', or '' when none were."""
        if not self.skipped:
            return ""
        names = ", ".join(str(p) for p in self.skipped[:shown])
        more = f", and {len(self.skipped) - shown} more" if len(self.skipped) > shown else ""
        return f"{len(self.skipped)} folder(s) not searched ({names}{more}: {SKIPPED_HELP})"


def search(
    root: Path,
    classify: Callable[[str, str], str | None],
    progress: Callable[[int, int, int], None] | None = None,
) -> Listing:
    """Walks `root` once. `classify(folder name, file name)` gives each file's kind (None: not
    wanted); `progress(folders, files seen, files kept)` is called every `PROGRESS_EVERY`
    folders and at the end."""
    listing = Listing()
    top = _is_file_system_root(root)
    for folder, dirs, files in _folders(root, listing, top):
        listing.folders += 1
        listing.seen += len(files)
        listing.anything = listing.anything or bool(dirs or files)
        for name in files:
            kind = classify(folder.name, name)
            if kind is not None:
                listing.files.setdefault(kind, []).append(folder / name)
        if progress is not None and listing.folders % PROGRESS_EVERY == 0:
            progress(listing.folders, listing.seen, listing.found())
    if progress is not None:
        progress(listing.folders, listing.seen, listing.found())
    return listing


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key of a folder name with the numbers in it compared as numbers: Lightning's
    `version_2` before `version_10` (the runs of `lightning_logs/` were listed 0, 1, 10, 11, ...,
    19, 2, 3), `run_9` before `run_10`; the name itself breaks ties (`v01`, `v1`)."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name


def _is_file_system_root(root: Path) -> bool:
    try:
        return root.resolve() == Path(root.resolve().anchor)
    except (OSError, RuntimeError):
        return False


def _folders(root: Path, listing: Listing, top: bool) -> Iterator[tuple[Path, list[str], list[str]]]:
    """(folder, sorted subfolder names, sorted other names), top-down, like os.walk, but without
    recursion: os.walk's exceeds Python's recursion limit in a tree ~1,000 folders deep.
    Symbolic links to folders are listed, not followed: no loops, no run read twice. Folders
    that hold no logs (see the module docstring) are listed in `listing.skipped`, not entered."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            listing.errors.append(exc)
            continue
        dirs, files, links = [], [], set()
        for entry in entries:
            try:
                is_dir = entry.is_dir()
                if is_dir and entry.is_symlink():
                    links.add(entry.name)
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
        dirs.sort(key=natural_key)
        files.sort()
        yield folder, dirs, files
        if folder != root and any(mark in files or mark in dirs for mark in ENVIRONMENT_MARKS):
            listing.skipped.append(folder)  # listed (a log beside pyvenv.cfg is read), not entered
            continue
        for name in reversed(dirs):
            if name in links:
                continue
            if _skipped(name, top and folder == root):
                listing.skipped.append(folder / name)
            else:
                stack.append(folder / name)
    listing.skipped.sort()


def _skipped(name: str, under_file_system_root: bool) -> bool:
    return name.startswith(".") or name in SKIPPED_NAMES or (under_file_system_root and name in SYSTEM_FOLDERS)
