"""The child process of `mlcheck sanity` (see `mlcheck.sanity.supervisor`): runs the command and
tells its parent, over the pipe it inherited, which stage of the user's code runs and, last, the
exit status. Not for users: `python -m mlcheck.sanity.worker '<options as JSON>'`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from dataclasses import asdict
from typing import IO


def main() -> None:
    from rich.markup import escape

    from mlcheck.cli_options import console, discard_stdout, is_output_error, output_failed
    from mlcheck.errors import BadInput
    from mlcheck.sanity import command, watchdog
    from mlcheck.sanity.discovery import split_selector
    from mlcheck.sanity.supervisor import CONTROL_FD

    channel = os.fdopen(int(os.environ.pop(CONTROL_FD)), "w", buffering=1)
    args = argparse.Namespace(**json.loads(sys.argv[1]))
    # model.py sees the arguments of `python model.py`: none. Not this process's JSON, which an
    # `argparse` parser at module level refuses, nor what a `sys.argv[1]` lookup would pick up.
    sys.argv = [str(split_selector(args.path)[0])]
    last: list[watchdog.Announced | None] = [None]  # the user's code runs only inside stages

    def tell(stage: watchdog.Announced | None) -> None:
        last[0] = stage or last[0]
        _send(channel, {"stage": asdict(stage) if stage else None})

    watchdog.listener = tell
    err = console(stderr=True)
    try:
        status = command.run_here(args, console())
        sys.stdout.flush()
    except BrokenPipeError:  # the reader of stdout went away (`| head -1`), as in `mlcheck.cli.main`
        status = discard_stdout()
    except BadInput as exc:
        # as `mlcheck.cli.main` prints it: one line, brackets in the message are text
        err.print(f"[bold red]mlcheck: error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        status = 2
    except KeyboardInterrupt:
        # Ctrl-C reaches the parent only (this process has its own session), so this came from
        # the user's code: honoured as an interrupt (exit 130, as Ctrl-C), and said where.
        stage = last[0]
        where = f"{stage.where}: KeyboardInterrupt raised in {stage.what}" if stage else "KeyboardInterrupt"
        err.print(f"mlcheck: interrupted: {where}", markup=False, highlight=False, soft_wrap=True)
        status = 130
    except OSError as exc:  # stdout on a full disk, as in `mlcheck.cli.main`; else a bug, below
        if is_output_error(exc):
            status = output_failed(exc)
        else:
            traceback.print_exc()
            status = 1
    except Exception:  # a bug in mlcheck: its traceback, and exit 1, as the command always did
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    _send(channel, {"exit": status})
    # Not a normal exit: threads the user's code left running would keep the process alive.
    os._exit(status)


def _send(channel: IO[str], message: dict) -> None:
    channel.write(json.dumps(message) + "\n")


if __name__ == "__main__":
    main()
