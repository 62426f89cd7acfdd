"""Exceptions the CLI turns into a one-line message and exit status 2."""


class BadInput(Exception):
    """The input cannot be used (missing path, unreadable log, no target found, ...).

    The message is one line that names the problem and, where possible, the fix.
    """
