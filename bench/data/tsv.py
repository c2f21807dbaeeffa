"""Raw interaction logs (user, item, timestamp) turned into leave-one-out splits."""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path

from bench.data import Dataset, excerpt
from bench.errors import BenchError


def load_interactions(path: Path, k: int = 0) -> Dataset:
    """Read a tab-separated (.tsv, .txt) or comma-separated (.csv) file with a header (user, item,
    timestamp).

    Each user's events are ordered by timestamp (ties keep file order); the
    last item is the test target, the one before it the validation target.
    Users with fewer than 3 events are dropped; items are renumbered 1..N in
    order of first appearance. A timestamp must be a finite number and the file UTF-8 (each
    refused with its line number); exact duplicate (user, item, timestamp) rows are dropped.
    What was dropped is in the dataset's `summary` (bench.data.prepare), which a run prints.
    """
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BenchError(f"cannot read {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line_no = raw.count(b"\n", 0, e.start) + 1
        raise BenchError(f"{path}:{line_no}: not UTF-8 (byte {raw[e.start]:#04x}); save the file as UTF-8") from None
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows:
        raise BenchError(f"{path}: empty file")
    header = [h.strip().lower() for h in rows[0]]
    try:
        cu, ci, ct = header.index("user"), header.index("item"), header.index("timestamp")
    except ValueError:
        sep = "commas" if delimiter == "," else "tabs"
        raise BenchError(f"{path}: header must name columns user, item, timestamp, separated by {sep} "
                         f"(got {excerpt(rows[0])})") from None
    events, seen, duplicates = [], set(), 0
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            event = (row[cu], row[ci], float(row[ct]))
        except (IndexError, ValueError):
            raise BenchError(f"{path}:{line_no}: expected user, item and a numeric timestamp") from None
        if not math.isfinite(event[2]):
            raise BenchError(f"{path}:{line_no}: timestamp {row[ct]!r} is not a finite number")
        if event in seen:
            duplicates += 1
            continue
        seen.add(event)
        events.append(event)
    from bench.data import from_split_dict
    from bench.data.prepare import Summary, split

    summary = Summary(rows=len(rows) - 1)
    raw = split(events, summary, k, k)
    summary.duplicates += duplicates
    if not raw["train"]:
        raise BenchError(f"{path}: no user has 3 or more interactions")
    return dataclasses.replace(from_split_dict(raw, path.stem), summary=summary)
