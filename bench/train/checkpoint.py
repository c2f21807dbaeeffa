"""Checkpoints: written atomically and fsynced; read back with damage found and put aside."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from bench.atomic import atomic_write


def atomic_torch_save(obj: object, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


class Damaged(Exception):
    """A checkpoint file that exists but cannot be read back."""


def try_load(path: Path) -> dict:
    """`load`, with any failure to read an existing file raised as Damaged(one line)."""
    try:
        return load(path)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a torn or foreign file
        first = (str(e).strip().splitlines() or [""])[0][:200]
        size = path.stat().st_size if path.exists() else 0
        raise Damaged(f"{path} is damaged ({size} bytes; {type(e).__name__}: {first})") from None


def put_aside(path: Path) -> Path:
    """Rename a damaged file out of the way (kept for inspection, never read again)."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    n = 1
    while aside.exists():
        aside = aside.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{n}")
        n += 1
    path.rename(aside)
    return aside
