"""Findings as Python warnings (WARNING and ERROR) and log records (all severities)."""

from __future__ import annotations

import logging
import os
import sys
import warnings

from mlcheck import sinks
from mlcheck.findings import Finding, MLCheckWarning, Severity

logger = logging.getLogger("mlcheck")

_LEVEL = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING, Severity.ERROR: logging.ERROR}


class LoggingSink(sinks.Sink):
    """Raises a `MLCheckWarning` for each new WARNING or ERROR finding and logs every finding
    to the `mlcheck` logger. INFO findings are logged only (a healthy run raises no warning).

    Under a warnings filter that turns warnings into errors, a finding raises only when the
    filter names `MLCheckWarning` (or a subclass) itself, e.g.
    `warnings.filterwarnings("error", category=MLCheckWarning)` or pytest's
    `-W error::mlcheck.MLCheckWarning`; a filter for every warning (`simplefilter("error")`,
    `-W error`) gets a log record instead, so it does not stop training.

    Args:
        warn: raise Python warnings. Default True.
    """

    def __init__(self, warn: bool = True) -> None:
        self.warn = warn

    def emit(self, finding: Finding, run: str | None = None) -> None:
        text = finding.format()
        if run:
            text = f"{run}: {text}"
        if self.warn and finding.severity >= Severity.WARNING:
            try:
                warnings.warn(text, MLCheckWarning, stacklevel=_user_stacklevel())
                return
            except MLCheckWarning:
                if _errors_asked_for(text):
                    raise  # the user's filter names MLCheckWarning: an exception is what they asked for
                # a filter that turns every warning into an error must not stop training: log it
        logger.log(_LEVEL[finding.severity], text)

    def mark(self, finding: Finding, run: str | None = None) -> None:
        logger.debug("still %s: %s", finding.check, finding.message)


def _errors_asked_for(text: str) -> bool:
    """True when the first warnings filter that matches a `MLCheckWarning` with this message
    turns it into an error and names `MLCheckWarning` or a subclass as its category (the
    module a filter names is not compared: mlcheck cannot know it before warning)."""
    for action, message, category, _module, _lineno in warnings.filters:
        if issubclass(MLCheckWarning, category) and (message is None or message.match(text)):
            return action == "error" and issubclass(category, MLCheckWarning)
    return False


_OWN = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the mlcheck package
_SKIP = ("mlcheck", "integrations", "lightning", "pytorch_lightning", "keras", "torch")


def _user_stacklevel() -> int:
    """The stacklevel that points a warning at the first frame outside mlcheck and the training
    frameworks, so `warnings` filters by module and the shown location make sense to users."""
    frame = sys._getframe(2)
    level = 2
    while frame is not None:
        path = frame.f_code.co_filename
        parts = set(os.path.normpath(path).split(os.sep))
        if not path.startswith(_OWN) and not parts.intersection(_SKIP):
            return level
        frame = frame.f_back
        level += 1
    return 2
