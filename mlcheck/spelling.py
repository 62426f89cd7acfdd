"""Near misses of a name a user typed (`supress`, `--jsno`, `loss_plateau`): the one place that
asks difflib, so every "did you mean ...?" in mlcheck weighs a misspelling the same way."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

#: difflib's own default cutoff is 0.6; 0.7 keeps one-letter slips of short names (`supress`,
#: `fail_on`) and drops unrelated words of the same length (`select` for `checks`)
CUTOFF = 0.7


def nearest(name: str, known: Iterable[str], *, n: int = 1, cutoff: float = CUTOFF) -> list[str]:
    """The names in `known` that `name` most likely misspells, closest first (at most `n`)."""
    return difflib.get_close_matches(name, list(known), n=n, cutoff=cutoff)


def meant(name: str, known: Iterable[str], *, cutoff: float = CUTOFF) -> str | None:
    """The one name in `known` that `name` most likely misspells, else None."""
    close = nearest(name, known, cutoff=cutoff)
    return close[0] if close else None


def similarity(a: str, b: str) -> float:
    """How alike two names are, 0 to 1 (difflib's ratio: 2 x matching characters / total)."""
    return difflib.SequenceMatcher(None, a, b).ratio()


F = TypeVar("F", bound=Callable[..., Any])


def keywords_checked(init: F) -> F:
    """Decorates a constructor (or a method) so that a keyword it does not take
    (`MLCheckCallback(supress=...)`, `monitor.log_step(0, los=...)`) raises a TypeError naming
    the class, the argument, the one meant where it is a near miss, and the arguments it takes:
    Python's own error says only `__init__() got an unexpected keyword argument`. A misspelt
    option would otherwise be the user's first minute with mlcheck. The wrapper costs ~2 us a call
    (its *args/**kwargs hand-over, measured at load 13 on 2 cores): fine once per run, epoch or
    sampled batch, not on a per-step method (`Monitor.log_step` keeps Python's own error)."""
    params = inspect.signature(init).parameters
    takes = [
        name
        for name, p in params.items()
        if name != "self" and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    accepted = frozenset(takes)

    @functools.wraps(init)
    def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            owner = type(self).__name__ if init.__name__ == "__init__" else f"{type(self).__name__}.{init.__name__}"
            raise TypeError(unknown_keyword(owner, unknown[0], takes))
        return init(self, *args, **kwargs)

    return checked  # type: ignore[return-value]


def unknown_keyword(owner: str, key: str, takes: list[str]) -> str:
    """`MLCheckCallback() got an unexpected keyword argument 'supress' (did you mean 'suppress'?);
    it takes checks, suppress, ...`."""
    guess = meant(key.replace("-", "_").lower(), takes)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return f"{owner}() got an unexpected keyword argument {key!r}{hint}; it takes {', '.join(takes)}"
