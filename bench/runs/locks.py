"""Run locks: a process holds a run's lock while it trains it. Torch-free, so `bench status` can test them."""
from __future__ import annotations

import fcntl
import sys
from contextlib import contextmanager
from pathlib import Path


class Busy(Exception):
    """The run is being trained by another process (its lock is held)."""


def lock_path(out: Path, rid: str) -> Path:
    return out / "runs" / ".locks" / f"{rid}.lock"


def holding(folder: Path, what: str):
    """The lock of a folder that one command at a time writes whole (`what`: export, report), waited for."""
    return claim(Path(folder) / f".{what}.lock", wait=True,
                 waiting=f"another {what} is writing to {folder}; waiting for it")


@contextmanager
def claim(path: Path, wait: bool, waiting: str | None = None):
    """Hold the run's lock for as long as this process trains it, so two commands writing to
    one folder never train the same run at once; without `wait`, raise Busy if it is held.
    `waiting`: the line printed while another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise Busy(path.stem) from None
            print(waiting or f"run {path.stem} is being trained by another process; waiting for it",
                  file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
