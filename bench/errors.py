"""The one exception type a user mistake raises; the CLI prints it as one line."""


class BenchError(Exception):
    """A user-facing error: bad input, missing data, an unknown name."""
