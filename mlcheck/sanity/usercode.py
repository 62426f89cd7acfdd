"""The user's own code failing: `UserCodeError`, and its traceback showing the user's frames
only (mlcheck's and importlib's removed), so that an error in model.py reads like one."""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from mlcheck.errors import BadInput


class UserCodeError(BadInput):
    """The user's own code failed (importing model.py, building the target, a forward pass).

    `str()` is the one-line summary; `user_traceback` is the user's traceback, mlcheck's and
    importlib's frames removed, for the CLI to show below it.
    """

    def __init__(self, message: str, user_traceback: str = "") -> None:
        super().__init__(message)
        self.user_traceback = user_traceback


class Interrupted(BaseException):
    """Raised by mlcheck's own safety net (`mlcheck.sanity.watchdog.Alarm`) inside the user's
    code: never the user's error, so `user_code` lets it through. A BaseException, so that the
    user's `except Exception:` does not swallow it."""


# Frames in these folders are mlcheck's own, never shown as the user's code.
_MLCHECK_DIRS = tuple(
    str(Path(p).resolve()) + os.sep
    for p in (Path(__file__).parent.parent, Path(__file__).parent.parent.parent / "integrations")
)


def user_traceback(exc: BaseException, user_dirs: tuple[str, ...] = (), raising_frame: bool = True) -> str:
    """The traceback of `exc` as the user should see it: mlcheck's own frames and importlib's
    removed; when `user_dirs` are known, library frames between the user's frames are folded
    too (the frame that raised stays, unless `raising_frame` is False: mlcheck raised there)."""
    frames = traceback.extract_tb(exc.__traceback__)
    user_dirs = tuple(str(Path(d).resolve()) + os.sep for d in user_dirs)

    def is_user(fs: traceback.FrameSummary) -> bool:
        f = os.path.abspath(fs.filename)
        return any(f.startswith(d) for d in user_dirs) and not _is_mlcheck(f)

    kept = [
        fs for fs in frames if not _is_mlcheck(os.path.abspath(fs.filename)) and "<frozen importlib" not in fs.filename
    ]
    if user_dirs and any(is_user(fs) for fs in kept):
        last = kept[-1] if kept and raising_frame else None
        kept = [fs for fs in kept if is_user(fs) or fs is last]
    lines = ["Traceback (most recent call last):\n"]
    lines += traceback.StackSummary.from_list(kept).format()
    if raising_frame:
        lines += traceback.format_exception_only(type(exc), exc)
    else:
        lines.append(f"(stopped here by mlcheck: {exc})")
    return "".join(lines).rstrip()


def _is_mlcheck(filename: str) -> bool:
    return filename.startswith(_MLCHECK_DIRS)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its repr when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else repr(exc)


# what torch says when code asks for a CUDA device the machine does not have (a CPU-only build,
# no driver, no visible GPU): the messages of torch 2.x's `torch.cuda._lazy_init`
_NO_CUDA = ("Torch not compiled with CUDA enabled", "Found no NVIDIA driver", "No CUDA GPUs are available")


def accelerator_hint(exc: BaseException) -> str:
    """A sentence to add where the user's code asked for a CUDA GPU this machine lacks ("" else):
    `mlcheck sanity` is often run on a laptop or CI runner for a script written for a GPU box."""
    if not any(marker in str(exc) for marker in _NO_CUDA):
        return ""
    return (
        ". This machine has no CUDA GPU: pick the device where the model and batches are made, "
        "`device = 'cuda' if torch.cuda.is_available() else 'cpu'` and `.to(device)` instead of `.cuda()`, "
        "so the script runs on both"
    )


def caller_dirs() -> tuple[str, ...]:
    """Folders of the code that called mlcheck (for tracebacks of dict targets)."""
    out = []
    for frame in inspect.stack(0)[2:8]:
        f = os.path.abspath(frame.filename)
        if not _is_mlcheck(f) and "site-packages" not in f and not f.startswith(sys.prefix):
            out.append(os.path.dirname(f))
    return tuple(dict.fromkeys(out))


@contextlib.contextmanager
def user_code(what: str, user_dirs: tuple[str, ...] = ()) -> Iterator[None]:
    """Turns an exception from the user's code into a `UserCodeError` naming `what` ran."""
    try:
        yield
    except (BadInput, KeyboardInterrupt, Interrupted):
        raise
    except BaseException as exc:
        shown = user_traceback(exc, user_dirs)
        if "\n  File " not in shown:  # raised by mlcheck's adapter, no frame of the user's: no block
            shown = ""
        message = f"{what} raised {type(exc).__name__}: {one_line(exc)}{accelerator_hint(exc)}"
        raise UserCodeError(message, shown) from None
