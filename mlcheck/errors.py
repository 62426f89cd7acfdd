"""Exceptions the CLI turns into a one-line message and exit status 2."""


class BadInput(Exception):
    """The input cannot be used (missing path, unreadable log, no target found, ...).

    The message is one line that names the problem and, where possible, the fix.
    """


class CSVLogError(Exception):
    """A file is not a metrics log mlcheck reads (CSV, Keras History); the message names the problem.

    Defined here so that the CSV reader and the History reader it hands files to share it without
    importing each other.
    """
