"""The exceptions growup raises for input it cannot use, so the CLI can print them without a traceback.

Every type below is a `GrowupError`: `growup.cli.main` prints its message as one
`growup: error: ...` line and exits 2 (a traceback only with `--debug`). Any other exception is a
bug in growup and keeps its traceback. Raise the narrowest type that fits; its message names the
key or file, the value, what is allowed, and the fix.
"""


class GrowupError(ValueError):
    """An input (config value, path, checkpoint) that growup cannot use; the message says the fix."""


class ConfigError(GrowupError):
    """A study config value that is invalid, found at config load (before any job runs)."""


class PathEscapeError(GrowupError):
    """A name that would become a path part, or a path, that leaves the folder it must stay under."""


class IntegrityError(GrowupError):
    """An artifact whose bytes differ from the hash recorded when it was written, or that is
    truncated or unreadable: the message names the file and the target that rebuilds it."""


class RemoteCodeError(GrowupError):
    """Code from a checkpoint or a downloaded repository that growup refuses to run or copy."""
