"""One exception type for every invalid input, so the CLI can print it without a traceback."""


class GrowupError(ValueError):
    """An input (config value, path, checkpoint) that growup cannot use; the message says the fix."""
