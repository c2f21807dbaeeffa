"""The results store: one JSON line per finished (model, dataset, seed, config) run.

Appends take an exclusive lock and write the whole line with one write() on
an O_APPEND descriptor, so concurrent writers never interleave or lose lines.
"""
from __future__ import annotations

import fcntl
import json
import os
import statistics
import warnings
from pathlib import Path

RESULTS = "results.jsonl"
EVALS = "evals.jsonl"            # `bench eval` lines: re-scored runs, never read as trained runs
PLANS = "plans.jsonl"            # a plan's estimate of each run it starts: {run_id, estimated_seconds, ...}
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


def newer(record: dict, old: dict | None) -> bool:
    """Whether `record` supersedes `old` for its run id: it finished later (or as late: the later line
    of one file, a --force rerun)."""
    return old is None or record.get("finished_at", "") >= old.get("finished_at", "")


def latest_by_run(records: list[dict]) -> dict[str, dict]:
    """The latest record of each run id (see `newer`)."""
    latest: dict[str, dict] = {}
    for r in records:
        if newer(r, latest.get(r["run_id"])):
            latest[r["run_id"]] = r
    return latest


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation over seeds; the std is None for a single value."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def seen_test(record: dict, seen: str) -> dict | None:
    """Test metrics with seen items kept or removed: stored for both since runs keep both,
    else only the protocol's own setting."""
    if seen in record.get("test_seen", {}):
        return record["test_seen"][seen]
    return record["test"] if bool(record["protocol"].get("exclude_seen")) == (seen == "removed") else None


def inside(out_dir: Path, relative: object, what: str = "path") -> Path:
    """`out_dir / relative` for a path a record stores, refused unless it stays inside `out_dir`."""
    from bench.errors import BenchError

    if not isinstance(relative, str) or not relative:
        raise BenchError(f"{out_dir / RESULTS}: a record's {what} is not a path ({str(relative)[:80]!r})")
    path = (out_dir / relative).resolve()
    if not path.is_relative_to(out_dir.resolve()):
        raise BenchError(f"{out_dir / RESULTS}: a record's {what} '{relative[:80]}' points outside {out_dir}")
    return path
