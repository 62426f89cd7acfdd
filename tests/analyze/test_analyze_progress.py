"""Progress of `mlcheck analyze` on stderr (issue 13): a 300,000-epoch Keras CSV showed nothing
for minutes after it was read. The command draws the bytes read and the epochs replayed through
the checks once the work has taken 2 s, on a terminal only, and leaves nothing behind."""

from __future__ import annotations

import io

from rich.console import Console

import mlcheck
from mlcheck.analyze.command import _Progress
from mlcheck.analyze.replay import PROGRESS_EVERY


def _log(path, epochs):
    rows = ["epoch,loss,val_loss"]
    rows += [f"{e},{2.0 / (e + 1) + 0.1:.6f},{2.2 / (e + 1) + 0.15:.6f}" for e in range(epochs)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _terminal():
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120), out


def test_reading_and_replaying_are_drawn_on_a_terminal(tmp_path):
    path = _log(tmp_path / "long.csv", 3 * PROGRESS_EVERY + 10)
    console, out = _terminal()
    calls = []
    with _Progress(console, enabled=True, after=0) as progress:

        def replay(name, done, total):
            calls.append((name, done, total))
            progress.replay(name, done, total)

        mlcheck.analyze.run(path, progress=progress.update, replay_progress=replay)
    total = 3 * PROGRESS_EVERY + 10
    assert calls == [("long.csv", k * PROGRESS_EVERY, total) for k in range(4)] + [("long.csv", total, total)]
    drawn = out.getvalue()
    assert "reading logs" in drawn and "checking long.csv (epochs)" in drawn
    assert drawn.endswith("\x1b[2K")  # transient: the last thing written erases it


def test_nothing_is_shown_before_two_seconds_on_a_terminal_or_off_it(tmp_path):
    """Off a terminal, work past 2 s is a plain line (round 11: `mlcheck analyze /` said
    nothing for minutes): see test_analyze_search.py."""
    path = _log(tmp_path / "short.csv", 40)
    for enabled, after in ((True, _Progress.AFTER_S), (False, _Progress.AFTER_S)):
        console, out = _terminal()
        with _Progress(console, enabled=enabled, after=after) as progress:
            mlcheck.analyze.run(path, progress=progress.update, replay_progress=progress.replay)
        assert out.getvalue() == "" and progress.bar is None
