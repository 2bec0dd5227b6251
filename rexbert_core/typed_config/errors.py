"""The project's error types: what the `rexbert` command turns into one line and exit status 2.

Libraries raise these for problems the user can fix (a misspelt config key, a missing input file, a row
that cannot be read), with a message that names the file or field. Anything else that escapes is a
failure of the program, not of its input, and the command reports it with exit status 1.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "RunError", "UsageError"]


class UsageError(ValueError):
    """Command-line arguments that do not fit together (exit status 2)."""


class ConfigError(ValueError):
    """A configuration that cannot be run as written; the message names the file or field."""


class DataError(ValueError):
    """Input data that cannot be used (missing, unreadable or of the wrong shape); the message names it."""


class RunError(RuntimeError):
    """A run that failed in a way the program can explain in one line (exit status 1), e.g. a curation
    that kept no documents or a Hub that refused an upload."""
