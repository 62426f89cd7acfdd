"""`mlcheck analyze` on a large tree (round 11): `mlcheck analyze /` walked the whole file system
twice, silently, for over five minutes (a home folder likewise: virtualenvs, `node_modules`,
`.git`). Below PATH the folders no logger writes to are not searched (named when nothing else
was found), the search says how far it has got on stderr once it has taken 2 s, and Ctrl-C
still ends it at once with exit 130."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
from rich.console import Console

import mlcheck
from mlcheck.analyze.command import _Progress

CSV = "epoch,loss,val_loss\n" + "".join(f"{e},{2 / (e + 1):.4f},{2.1 / (e + 1):.4f}\n" for e in range(12))


def mlcheck_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def _project(root):
    """A project folder: one run, and copies of a log where no run is kept."""
    for where in (".git/logs", "node_modules/pkg", ".venv/lib", "env/lib", "src/__pycache__", "lib/site-packages/x"):
        (root / where).mkdir(parents=True)
        (root / where / "training.csv").write_text(CSV)
    (root / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "runs" / "a").mkdir(parents=True)
    (root / "runs" / "a" / "training.csv").write_text(CSV)
    return root


def test_folders_that_hold_no_logs_are_not_searched_and_named_when_nothing_is_found(tmp_path):
    root = _project(tmp_path / "proj")
    result = mlcheck_cli(root, "--json")
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["runs"]] == ["runs/a/training.csv"]

    (root / "runs" / "a" / "training.csv").unlink()
    result = mlcheck_cli(root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "6 folder(s) not searched" in line and "name one as PATH to read it" in line, line
    for name in (".git", ".venv", "env"):
        assert str(root / name) in line

    # named as PATH, a skipped folder is read
    result = mlcheck_cli(root / ".venv", "--json")
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["runs"]] == ["lib/training.csv"]


def test_a_hidden_folder_no_tool_owns_is_named_when_runs_are_found_beside_it(tmp_path):
    """`.git` and `.venv` are passed over without a word; `.mlcheck-demo/` (where mlcheck's own
    demo writes its runs) may hold runs: a note names it, and `not_searched` in --json."""
    root = _project(tmp_path / "proj")
    (root / ".mlcheck-demo" / "clean").mkdir(parents=True)
    (root / ".mlcheck-demo" / "clean" / "training.csv").write_text(CSV)
    table = mlcheck_cli(root)
    assert table.returncode == 0, table.stderr
    note = "note: hidden folders not searched: .mlcheck-demo; give one as PATH to read the runs it holds"
    assert note in " ".join(table.stdout.split())
    # the others (.git, .venv, an environment, packages) are counted (round 12: passed over without a word)
    assert "note: 6 other folder(s) not searched (.git, .venv, env, and 3 more:" in " ".join(table.stdout.split())
    payload = json.loads(mlcheck_cli(root, "--json").stdout)
    assert payload["not_searched"] == [str(root / ".mlcheck-demo")]
    (root / ".mlcheck-demo" / "clean" / "training.csv").unlink()
    (root / ".mlcheck-demo" / "clean").rmdir()
    (root / ".mlcheck-demo").rmdir()
    quiet = mlcheck_cli(root)
    assert "hidden folders not searched" not in quiet.stdout
    assert json.loads(mlcheck_cli(root, "--json").stdout)["not_searched"] == []


def test_cli12_runs_under_a_tool_folder_are_counted_when_runs_are_found_beside_it(tmp_path):
    """A run under `.cache/` or `.local/` (a known tool's hidden folder) was passed over without a
    word when another run was found: now a note counts the folders not searched and says how to
    read one, and `--json` gives the count."""
    root = tmp_path / "home"
    for where in ("runs/a", ".cache/exp", ".local/share/exp"):
        (root / where).mkdir(parents=True)
        (root / where / "training.csv").write_text(CSV)
    table = mlcheck_cli(root)
    assert table.returncode == 0, table.stderr
    said = " ".join(table.stdout.split())
    assert (
        "note: 2 folder(s) not searched (.cache, .local: tools' hidden folders, installed packages, "
        "Python environments); give one as PATH to read the runs it holds"
    ) in said, table.stdout
    payload = json.loads(mlcheck_cli(root, "--json").stdout)
    assert payload["not_searched"] == [] and payload["folders_not_searched"] == 2
    read = mlcheck_cli(root / ".cache", "--json")  # how to include them: as PATH
    assert [r["name"] for r in json.loads(read.stdout)["runs"]] == ["exp/training.csv"]


def test_a_search_past_two_seconds_says_how_far_it_got_off_a_terminal(tmp_path):
    _project(tmp_path)
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with _Progress(console, enabled=False, after=0, root="proj") as progress:
        mlcheck.analyze.run(tmp_path, search_progress=progress.search, progress=progress.update)
    lines = out.getvalue().splitlines()
    # one line: the next comes only PLAIN_EVERY_S later
    assert lines == ["mlcheck: searching proj: 6 folders, 2 files, 1 named like logs (Ctrl-C stops)"]


def test_a_search_past_two_seconds_is_drawn_on_a_terminal(tmp_path):
    _project(tmp_path)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with _Progress(console, enabled=True, after=0, root="proj") as progress:
        mlcheck.analyze.run(tmp_path, search_progress=progress.search, progress=progress.update)
    assert "searching proj: 6 folders, 2 files, 1 named like logs" in out.getvalue()
    assert out.getvalue().endswith("\x1b[2K")  # transient


def test_ctrl_c_during_a_search_of_the_file_system_exits_130_at_once():
    """The real command on `/`: its progress line comes on stderr (not a terminal here) after
    2 s, then SIGINT ends it within seconds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcheck", "analyze", "/"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        # the first line: the search's, after 2 s (it said nothing for minutes before)
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        assert ready, "nothing on stderr within 60 s"
        first = proc.stderr.readline()
        if proc.poll() is not None:
            pytest.skip(f"`mlcheck analyze /` ended before 2 s here: {first!r}")
        # searching, reading or checking: which one comes first at 2 s depends on the machine's logs
        assert first.startswith(
            ("mlcheck: searching /: ", "mlcheck: examining ", "mlcheck: reading logs", "mlcheck: checking ")
        ), first
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - sent < 10
    assert proc.returncode == 130 and "Traceback" not in rest, rest
    assert rest.strip().splitlines()[-1] == "mlcheck: interrupted" and out == ""


def test_cli12_examining_what_the_search_found_shows_progress(tmp_path):
    """After the search of `/`, ~7 s passed without a word while the headers of the ~9,000 files
    named like logs were read (a log, or a data set?): `examine_progress` reports it, drawn on a
    terminal and a plain line elsewhere."""
    _project(tmp_path)
    for k in range(300):  # data sets named .csv beside the run: examined, not read
        (tmp_path / "data" / f"d{k:03d}").mkdir(parents=True)
        (tmp_path / "data" / f"d{k:03d}" / "table.csv").write_text("a,b\n1,2\n")
    calls = []
    mlcheck.analyze.run(tmp_path, examine_progress=lambda done, total: calls.append((done, total)))
    # every 256 files, then as the folders of event files (none here) are sorted into runs
    assert calls[:2] == [(0, 301), (256, 301)] and set(calls[2:]) == {(301, 301)}, calls

    out = io.StringIO()
    with _Progress(Console(file=out, force_terminal=True, width=120), enabled=True, after=0, root="proj") as progress:
        mlcheck.analyze.run(
            tmp_path, search_progress=progress.search, examine_progress=progress.examine, progress=progress.update
        )
    assert "examining the files named like logs" in out.getvalue() and out.getvalue().endswith("\x1b[2K")

    out = io.StringIO()
    with _Progress(Console(file=out, width=200), enabled=False, after=0, root="proj") as progress:
        progress.examine(256, 301)
    assert out.getvalue() == "mlcheck: examining the files named like logs: 256 of 301\n"
