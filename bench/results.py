"""The results store: one JSON line per finished (model, dataset, seed, config) run.

Appends take an exclusive lock and write the whole line with one write() on
an O_APPEND descriptor, so concurrent writers never interleave or lose lines.
"""
from __future__ import annotations

import fcntl
import json
import os
import warnings
from pathlib import Path

RESULTS = "results.jsonl"
EVALS = "evals.jsonl"            # `bench eval` lines: re-scored runs, never read as trained runs
# a record's "test_seen" / "per_user_seen" keys: test metrics with seen items kept and removed
SEEN_KEY = {False: "kept", True: "removed"}
SEEN_PER_USER = {False: "test_per_user_seen_kept.csv", True: "test_per_user_seen_removed.csv"}


def append(out_dir: Path, record: dict, name: str = RESULTS) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(out_dir / name, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line        # a writer died mid-line: keep our record on a line of its own
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {out_dir / name}")
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def problem(record: object) -> str | None:
    """Why a parsed line is not a record (a JSON object with a run id), or None."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not a record"
    if not isinstance(record.get("run_id"), str):
        return "no run_id"
    return None


def read(out_dir: Path, name: str = RESULTS) -> list[dict]:
    """All complete records; a damaged line (torn, not UTF-8, not JSON, not a record) is skipped
    with a warning naming it."""
    path = out_dir / name
    if not path.exists():
        return []
    records = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                why = "not UTF-8"
            except json.JSONDecodeError:
                why = "not complete JSON"
            else:
                why = problem(record)
            if why:
                warnings.warn(f"{path}:{n}: skipping a damaged line ({why})")
                continue
            records.append(record)
    return records


def latest_by_run(records: list[dict]) -> dict[str, dict]:
    """The last record of each run id (a --force rerun supersedes older lines)."""
    return {r["run_id"]: r for r in records}


def inside(out_dir: Path, relative: object, what: str = "path") -> Path:
    """`out_dir / relative` for a path a record stores, refused unless it stays inside `out_dir`."""
    from bench.errors import BenchError

    if not isinstance(relative, str) or not relative:
        raise BenchError(f"{out_dir / RESULTS}: a record's {what} is not a path ({str(relative)[:80]!r})")
    path = (out_dir / relative).resolve()
    if not path.is_relative_to(out_dir.resolve()):
        raise BenchError(f"{out_dir / RESULTS}: a record's {what} '{relative[:80]}' points outside {out_dir}")
    return path
