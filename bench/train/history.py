"""history.csv: one row per validation (epoch, loss, lr, validation metrics, seconds so far)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from bench.atomic import atomic_write_text


def write_history(path: Path, history: list[dict]) -> None:
    """Written whole and atomically, so a reader of a run in progress never sees half a row."""
    if not history:
        return
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buf.getvalue())
