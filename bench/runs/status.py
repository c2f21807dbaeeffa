"""`bench status`: every run under a results folder, finished or not, read from files alone.

A run is `finished` (its line is in results.jsonl), `training` (a process holds its lock now),
`stopped` (a checkpoint and no process: the same `bench run` resumes it) or `started` (a
process began it and left no checkpoint: it restarts from epoch 0) or `damaged` (its checkpoint does
not read back: `bench run` puts it aside and resumes from the checkpoint before, or from epoch 0).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench.runs import results
from bench.errors import BenchError
from bench.runs.locks import Busy, claim, lock_path


@dataclass
class RunState:
    dataset: str
    model: str
    seed: int
    run_id: str
    state: str
    epoch: int | None = None            # last evaluated epoch
    best_epoch: int | None = None
    best_valid: float | None = None     # validation NDCG@10 at the best epoch
    test: float | None = None           # test NDCG@10 (finished runs)
    train_seconds: float | None = None
    took: float | None = None           # training, validation and test seconds (finished runs)
    planned: float | None = None        # the plan's estimate when the run started as new (plans.jsonl)
    point: str | None = None            # a study's point


def lock_held(path: Path) -> bool:
    """Whether a process holds the run's lock now (trying it, as `bench run` does, and letting go)."""
    if not path.exists():
        return False
    try:
        with claim(path, wait=False):
            return False
    except Busy:
        return True


class Damaged(Exception):
    """A checkpoint that does not read back."""


def checkpoint_state(path: Path) -> dict | None:
    """The training state of a checkpoint, from the JSON sidecar the trainer writes beside it
    (checkpoints from before the sidecar are loaded); raises Damaged for a file that does not
    read back. The archive's checksums are tested with zipfile, so no torch is needed."""
    if not path.exists():
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:
                raise zipfile.BadZipFile("a member fails its CRC")
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise Damaged(f"{path}: {e}") from None
    sidecar = path.with_suffix(".json")
    try:
        state = json.loads(sidecar.read_text())
        if isinstance(state, dict) and "epoch" in state:
            return state
    except (OSError, ValueError):
        pass
    from bench.train.checkpoint import Damaged as Unreadable, try_load

    try:
        return try_load(path)["state"]
    except Unreadable as e:
        raise Damaged(str(e)) from None


def scan(out: Path) -> list[RunState]:
    """Every run folder under `out/runs`, plus finished runs whose folder is elsewhere."""
    if not out.is_dir():
        raise BenchError(f"{out} is not a folder")
    done = results.latest_by_run(results.read(out))
    found: list[RunState] = []
    for folder in sorted(out.glob("runs/*/*/seed*-*")):
        if not folder.is_dir():
            continue
        seed, rid = folder.name[len("seed"):].split("-", 1)
        dataset, model = folder.parent.parent.name, folder.parent.name
        record = done.pop(rid, None)
        if record is not None:
            found.append(from_record(record))
            continue
        held = lock_held(lock_path(out, rid))
        try:
            state = checkpoint_state(folder / "checkpoint.pt")
        except Damaged:         # `bench run` puts it aside and resumes from the one before, or from epoch 0
            found.append(RunState(dataset, model, int(seed), rid, "training" if held else "damaged"))
            continue
        row = RunState(dataset, model, int(seed), rid, "training" if held else "stopped" if state else "started")
        if state:
            row.epoch, row.best_epoch = state["epoch"], state["best_epoch"] or None
            row.best_valid = state["best_valid"].get("ndcg@10")
            row.train_seconds = state["train_seconds"]
        found.append(row)
    found += [from_record(r) for r in done.values() if not r.get("skipped")]
    planned = estimates(out)
    for row in found:
        row.planned = planned.get(row.run_id)
    return sorted(found, key=lambda r: (r.dataset, r.model, r.point or "", r.seed, r.run_id))


def estimates(out: Path) -> dict[str, float]:
    """Each run's estimate from plans.jsonl: the first made when it was new, else the first made."""
    first: dict[str, dict] = {}
    for p in results.read(out, results.PLANS):
        if isinstance(p.get("estimated_seconds"), (int, float)) and isinstance(p.get("run_id"), str):
            kept = first.get(p["run_id"])
            if kept is None or (kept.get("state") != "new" and p.get("state") == "new"):
                first[p["run_id"]] = p
    return {rid: float(p["estimated_seconds"]) for rid, p in first.items()}


def from_record(record: dict) -> RunState:
    """A finished run, from its results line."""
    took = (record.get("train_seconds") or 0) + (record.get("eval_seconds") or 0)
    state = f"finished ({results.BUDGET_HIT})" if results.still_improving(record) else "finished"
    return RunState(record["dataset"], record["model"], record["seed"], record["run_id"], state,
                    record.get("epochs_run"), record.get("best_epoch"), record["valid"].get("ndcg@10"),
                    record["test"].get("ndcg@10"), record.get("train_seconds"), took or None, None,
                    record.get("point"))
