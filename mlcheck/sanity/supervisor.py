"""The command's parent process: runs `mlcheck sanity` in a child process and watches it.

The user's code can do what no exception handler sees: end the process (`os._exit(0)` at import
looked like a clean run), or block where no signal reaches. So the command does its work in a
child (`mlcheck.sanity.worker`) that tells this process, over a pipe, which stage of the user's
code runs and for how long (`mlcheck.sanity.watchdog.announce`), and finally its exit status.
Its table, JSON and progress bar go straight to the terminal, as before. This process:

- ends the child (and whatever it started) when a stage overruns its net by STOP_GRACE: the
  child's own SIGALRM net did not get through (C code that never returns to Python);
- reports a child that ended without saying its exit status (os._exit, a crash, a kill) as bad
  input naming the stage it was in;
- ends the child when the user presses Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from mlcheck.errors import BadInput
from mlcheck.sanity.watchdog import TIMEOUT_HINT, Announced

#: Environment variable that gives the child the file descriptor of its pipe to this process.
CONTROL_FD = "MLCHECK_SANITY_CONTROL_FD"
#: How long past a stage's net the child may take to report its own timeout before it is ended:
#: the child's SIGALRM fires at the net, and formatting its message takes well under a second.
STOP_GRACE = 5.0
#: How often the child's liveness is polled while no message comes (a child that died while a
#: process it started keeps the pipe open is seen within this).
POLL_SECONDS = 0.5
#: How long a child that reported its exit status may take to end before it is ended.
EXIT_GRACE = 10.0
#: Off a terminal (a CI log, a redirect), a stage of the user's code that has run a quarter of
#: its net (and PLAIN_EVERY_S at least) is said on stderr, and again as often: an import that
#: downloads a data set showed nothing for up to its 120 s net. A quarter: 30 s for the import
#: at the default budget, past the 5-20 s that importing torch, Lightning or Keras takes, so a
#: healthy run's log stays quiet. On a terminal the child's progress display says it.
PLAIN_PART = 0.25
PLAIN_EVERY_S = 10.0


def supervise(args: argparse.Namespace) -> int:
    """Runs the command in a child process; returns its exit status.

    Raises:
        BadInput: a stage of the user's code overran its net and could not be interrupted, or
            the user's code ended the child process.
    """
    read_end, write_end = os.pipe()
    payload = json.dumps({k: v for k, v in vars(args).items() if k != "func"})
    child = subprocess.Popen(
        [sys.executable, "-m", "mlcheck.sanity.worker", payload],
        stdin=subprocess.DEVNULL,  # input() in model.py fails at once instead of waiting
        pass_fds=(write_end,),
        env={**os.environ, CONTROL_FD: str(write_end)},
        start_new_session=True,  # its own process group, so what it started ends with it
    )
    os.close(write_end)
    try:
        status = _follow(child, read_end, _display(args.path))
    except BaseException:  # a timeout, an unexpected end, Ctrl-C: end the child now
        _end(child, grace=0.0)
        raise
    finally:
        os.close(read_end)
    _end(child, grace=EXIT_GRACE)
    return status


def _follow(child: subprocess.Popen, channel: int, display: str) -> int:
    current: Announced | None = None
    deadline: float | None = None
    pending = b""
    plain = not _is_terminal(sys.stderr)
    began = said = 0.0  # when the current stage began, and when it was last said
    while True:
        if (
            plain
            and current is not None
            and time.monotonic() - said >= max(PLAIN_EVERY_S, PLAIN_PART * current.seconds)
        ):
            said = time.monotonic()
            _say(
                f"mlcheck: {current.where}: {current.what} still running after {said - began:.0f} s "
                f"(mlcheck stops it at {current.seconds:.0f} s; Ctrl-C stops it now)"
            )
        if deadline is not None and time.monotonic() > deadline:
            assert current is not None
            raise BadInput(
                f"{current.timeout_message()}, and did not respond to being interrupted, so mlcheck "
                f"ended it. {TIMEOUT_HINT}."
            )
        ready, _, _ = select.select([channel], [], [], POLL_SECONDS)
        chunk = os.read(channel, 65536) if ready else b""
        if not chunk and child.poll() is not None:
            raise BadInput(_ended_message(child.returncode, current, display))
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "exit" in message:
                return int(message["exit"])
            current = Announced(**message["stage"]) if message["stage"] else None
            deadline = time.monotonic() + current.seconds + STOP_GRACE if current else None
            began = time.monotonic()
            said = began  # the first line comes a quarter of its net into a stage


def _is_terminal(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced, or closed
        return False


def _say(line: str) -> None:
    """A line on stderr; never raises (a closed or full stderr loses it, not the run)."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _ended_message(returncode: int, current: Announced | None, display: str) -> str:
    if returncode < 0:
        how, why = f"was killed by {signal.Signals(-returncode).name}", "a crash in native code, or out of memory?"
    else:
        how, why = f"ended with exit status {returncode}", "does the code call os._exit() or sys.exit()?"
    where, during = (current.where, f" in {current.what}") if current else (display, "")
    return f"{where}: the process running it {how}{during}, before mlcheck had a result ({why})"


def _display(path: str) -> str:
    from mlcheck.sanity.discovery import split_selector

    return split_selector(path)[0].name


def _end(child: subprocess.Popen, grace: float) -> None:
    """Gives the child `grace` seconds to exit, then ends its process group (DataLoader workers,
    processes the user's code started). The child is reaped only after, so its process group id
    cannot have been reused."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break
        time.sleep(0.05)
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()
