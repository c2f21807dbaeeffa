"""Raw interaction logs (user, item, timestamp) turned into leave-one-out splits."""
from __future__ import annotations

import csv
import io
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

from bench.data import Dataset, excerpt
from bench.errors import BenchError


def k_core(events: list[tuple[str, str, float]], k: int) -> list[tuple[str, str, float]]:
    """Drop users and items with fewer than k interactions until none is left."""
    while True:
        users = Counter(u for u, _, _ in events)
        items = Counter(i for _, i, _ in events)
        kept = [e for e in events if users[e[0]] >= k and items[e[1]] >= k]
        if len(kept) == len(events):
            return kept
        events = kept


def load_interactions(path: Path, k: int = 0) -> Dataset:
    """Read a tab-separated (.tsv, .txt) or comma-separated (.csv) file with a header (user, item,
    timestamp).

    Each user's events are ordered by timestamp (ties keep file order); the
    last item is the test target, the one before it the validation target.
    Users with fewer than 3 events are dropped; items are renumbered 1..N in
    order of first appearance. A timestamp must be a finite number and the file UTF-8 (each
    refused with its line number); exact duplicate (user, item, timestamp) rows are dropped,
    and their count said on stderr.
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
    if duplicates:
        print(f"{path}: dropped {duplicates:,} exact duplicate (user, item, timestamp) rows", file=sys.stderr)
    if k > 1:
        events = k_core(events, k)
    by_user: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for order, (u, i, t) in enumerate(events):
        by_user[u].append((t, order, i))
    item_ids: dict[str, int] = {}
    train, val, test, users = [], [], [], []
    for u in by_user:
        seq = [i for _, _, i in sorted(by_user[u])]
        if len(seq) < 3:
            continue
        ids = [item_ids.setdefault(i, len(item_ids) + 1) for i in seq]
        users.append(u)
        train.append(ids[:-2])
        val.append(ids[-2])
        test.append(ids[-1])
    if not train:
        raise BenchError(f"{path}: no user has 3 or more interactions")
    return Dataset(path.stem, train, val, test, len(item_ids), tuple(users), (None, *item_ids))
