"""The one exception type a user mistake raises; the CLI prints it as one line."""


class BenchError(Exception):
    """A user-facing error: bad input, missing data, an unknown name."""


_interrupt_said: list[str] = []


def say_interrupted(line: str) -> None:
    """Ctrl-C inside a run: the line that says where a rerun resumes, printed once, at once."""
    import sys

    _interrupt_said.append(line)
    print(line, file=sys.stderr, flush=True)


def interrupt_said() -> bool:
    return bool(_interrupt_said)
