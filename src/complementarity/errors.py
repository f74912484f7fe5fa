"""Errors that tell the user what to do.

Every error raised for bad input names the offending value (file, line, key) and the fix. The CLI
prints them as ``ERROR: …`` and exits with status 2, without a traceback.
"""


class UserError(Exception):
    """Bad input or configuration; the message names the value and the fix."""


class ConfigError(UserError):
    """The workflow configuration is invalid."""


class DataError(UserError):
    """A data file or dataset is malformed."""
