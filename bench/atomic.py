"""Atomic writes: a file is either the old version or the new one, never half, even after a power cut.

The one way the project writes a file that something else reads back: a temporary file in the
same folder (unique, so concurrent writers never collide), fsynced, renamed over the target,
and the folder fsynced so the rename itself is on disk. Torch-free.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[BinaryIO], None], suffix: str = ".tmp") -> None:
    """Call `write(f)` on a temporary file, then put it in place of `path`; if `write` raises,
    `path` is untouched and the temporary file removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sweep(folder: Path, recursive: bool = True) -> int:
    """Remove the temporary files that killed writers left in `folder` (.NAME.XXXX.tmp; in its subfolders
    too if `recursive`); call it only while holding the folder's lock (`locks.holding`), so no live
    writer's file goes. Returns how many."""
    gone = 0
    for tmp in (Path(folder).rglob if recursive else Path(folder).glob)(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            gone += 1
    return gone


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
