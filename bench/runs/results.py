"""The results store: one JSON line per finished (model, dataset, seed, config) run.

Appends take an exclusive lock and write the whole line with one write() on
an O_APPEND descriptor, so concurrent writers never interleave or lose lines.
"""
from __future__ import annotations

import fcntl
import json
import math
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


def _metrics(value: object) -> str | None:
    """Why `value` is not a metrics block ({"ndcg@10": 0.05, ...}: finite numbers), or None."""
    if not isinstance(value, dict) or not value:
        return "not a block of metrics"
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"metric {str(k)[:40]} is {str(v)[:40]!r}, not a finite number"
    return None


def _seen(value: object) -> str | None:
    if not isinstance(value, dict):
        return "not a block of seen settings"
    return next((f"{k}: {why}" for k, v in value.items() if (why := _metrics(v))), None)


_NUMBER = (int, float)
_TEXT = (str,)
# what each line of a store must hold (name -> field -> type, or a check returning why not); optional
# fields are checked only when present. A record is read in one place (`read`), so every command sees
# only records it can use.
SCHEMA: dict[str, tuple[dict, dict]] = {
    RESULTS: ({"run_id": _TEXT, "model": _TEXT, "dataset": _TEXT, "seed": (int,), "protocol": (dict,),
               "config": (dict,), "valid": _metrics, "test": _metrics, "best_epoch": (int,),
               "train_seconds": _NUMBER},
              {"epochs_run": (int,), "test_seen": _seen, "per_user": _TEXT, "history": _TEXT, "per_user_seen": (dict,),
               "eval_seconds": _NUMBER, "test_seconds": _NUMBER, "n_users": (int,), "n_items": (int,),
               "finished_at": _TEXT, "study": _TEXT, "study_id": _TEXT, "point": _TEXT, "point_index": (int,),
               "registered": (bool,), "diverged": _TEXT, "train": (dict,), "dataset_path": _TEXT,
               "model_dir": _TEXT}),
    EVALS: ({"run_id": _TEXT, "model": _TEXT, "dataset": _TEXT, "seed": (int,), "changes": (dict,)},
            {"valid": _metrics, "test": _metrics, "test_seen": _seen, "per_user": _TEXT,
             "finished_at": _TEXT, "rescore_index": (int,), "protocol": (dict,), "config": (dict,)}),
    PLANS: ({"run_id": _TEXT, "estimated_seconds": _NUMBER}, {"state": _TEXT, "planned_at": _TEXT}),
}


def problem(record: object, name: str = RESULTS) -> str | None:
    """Why a parsed line of store `name` is not a record it can use, or None."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not a record"
    if not isinstance(record.get("run_id"), str):
        return "no run_id"
    required, optional = SCHEMA.get(name, ({}, {}))
    for fields, needed in ((required, True), (optional, False)):
        for key, check in fields.items():
            if key not in record:
                if needed:
                    return f"no {key}"
                continue
            value = record[key]
            if callable(check):
                why = check(value)
            elif isinstance(value, bool) and bool not in check or not isinstance(value, check) \
                    or isinstance(value, float) and not math.isfinite(value):
                why = f"is {str(value)[:40]!r}"
            else:
                why = None
            if why:
                return f"{key} {why}"
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
                why = problem(record, name)
            if why:
                warnings.warn(f"{path}:{n}: skipping a damaged line ({why})")
                continue
            if name == RESULTS and record.get("model_dir"):    # a model from outside the package
                from bench import registry

                registry.search(record["model_dir"])
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


BUDGET_HIT = "budget hit: still improving"


def still_improving(record: dict) -> bool:
    """Whether a run stopped at its epoch budget with validation still improving: its best epoch is its
    last validation, so a longer budget might have gone higher."""
    train = record.get("train") or {}
    budget, every = train.get("epochs"), train.get("eval_every", 1) or 1
    run, best = record.get("epochs_run"), record.get("best_epoch")
    if not all(isinstance(x, int) for x in (budget, run, best)) or budget <= 0:
        return False
    return run >= budget and best > run - every


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
