"""Folders the user names on the command line, checked before any work starts."""
from __future__ import annotations

import os
from pathlib import Path

from bench.errors import BenchError


# the operating system's own folders: never a place for results, whatever the permissions
SYSTEM = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin", "/sys",
          "/usr", "/var")
SYSTEM_OK = ("/var/tmp",)


def system_folder(path: Path) -> bool:
    resolved = Path(os.path.realpath(path))
    if resolved == Path(resolved.anchor):
        return True
    inside = lambda roots: any(resolved == Path(r) or resolved.is_relative_to(r) for r in roots)
    return inside(SYSTEM) and not inside(SYSTEM_OK)


def output_dir(path: Path, option: str = "--out") -> Path:
    """A folder the command may write into: an existing writable folder, or a new one whose nearest
    existing parent is a writable folder, and never a system folder (/, /etc, /usr, ...). Nothing is created here, so a refused command leaves none."""
    path = Path(path)
    if system_folder(path):
        raise BenchError(f"{option} {path} is {os.path.realpath(path)}, a system folder; give a folder of your own")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file" if probe == path else f"lies under {probe}, which is a file"
        raise BenchError(f"{option} {path} {what}; give a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BenchError(f"{option} {path}: {probe} is not writable")
    return path


def input_dir(path: Path | None, option: str = "--data-dir") -> None:
    """A folder to read from, if given: it must not be a file."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise BenchError(f"{option} {path} is a file; give the folder that holds the datasets")
