"""One run end to end: claimed under its lock, trained, evaluated under both seen-item settings,
its artifacts written and its results line appended; a finished run is returned as stored."""
from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from pathlib import Path

import torch

from bench import data, registry
from bench.eval.protocol import mean_metrics, metrics_from_ranks
from bench.registry import contract
from bench.runs import results
from bench.runs.artifacts import write_per_user, write_trajectory
from bench.runs.identity import git_revision, versions
from bench.runs.locks import claim, lock_path
from bench.runs.results import SEEN_KEY, SEEN_PER_USER
from bench.runs.spec import RunSpec
from bench.train import tblog
from bench.train.loop import Trainer, resolve_device
from bench.train.history import write_history
from bench.train.progress import make as make_progress


def finished(out: Path, rid: str) -> dict | None:
    done = results.latest_by_run(results.read(out)).get(rid)
    return {**done, "skipped": True} if done else None


def run_one(spec: RunSpec, wait: bool = True) -> dict:
    """Train and evaluate one run; returns its results record.

    A run finished before is returned as stored (marked skipped) unless `force`. A run another
    process is training is waited for (then returned as it stored it), or, without `wait`,
    raises Busy."""
    out = Path(spec.out)
    if not spec.force and (done := finished(out, spec.run_id)):
        return done
    with claim(lock_path(out, spec.run_id), wait):
        if not spec.force and (done := finished(out, spec.run_id)):       # finished while we waited
            return done
        return train_and_store(spec)


def train_and_store(req: RunSpec) -> dict:
    out, spec, fp, rid = Path(req.out), req.model, req.data.fingerprint, req.run_id
    if req.threads:
        torch.set_num_threads(req.threads)
    ds = req.data.load()
    run_dir = req.folder(ds.name)
    if req.force and run_dir.exists():
        shutil.rmtree(run_dir)
    device = resolve_device(req.device)
    git_revision()
    torch.manual_seed(req.seed)
    model = spec.build(ds.n_items)
    label = f"{spec.name} {ds.name} seed {req.seed}"
    log = tblog.open_log(req.log, run_dir)
    try:
        outcome = Trainer(model, ds, req.protocol, spec.train, run_dir, req.seed, device,
                          make_progress(req.progress, label), req.on_eval, label, log).run()
    finally:
        if log is not None:
            log.close()
    write_history(run_dir / "history.csv", outcome.history)
    write_per_user(run_dir / "test_per_user.csv", outcome.test_ranks, req.protocol.ks, outcome.test_users)
    for exclude, ranks in outcome.test_ranks_seen.items():
        write_per_user(run_dir / SEEN_PER_USER[exclude], ranks, req.protocol.ks, outcome.test_users)
    if contract.has_trajectory(model):
        write_trajectory(run_dir / "trajectory.npz", model, ds, req.protocol, device)
    record = {
        "run_id": rid, "model": spec.name, "dataset": ds.name, "dataset_fingerprint": fp, "seed": req.seed,
        "config": dataclasses.asdict(spec.config), "train": dataclasses.asdict(spec.train),
        "protocol": req.protocol.to_dict(), "valid": outcome.valid, "test": outcome.test,
        "best_epoch": outcome.best_epoch, "epochs_run": outcome.epochs_run,
        "train_seconds": round(outcome.train_seconds, 3), "eval_seconds": round(outcome.eval_seconds, 3),
        "test_seconds": round(outcome.test_seconds, 3),
        "n_users": ds.n_users, "n_test_users": len(outcome.test_ranks), "n_items": ds.n_items, "device": str(device), "threads": torch.get_num_threads(),
        "versions": versions(), "git_revision": git_revision(),
        "history": str((run_dir / "history.csv").relative_to(out)),
        "per_user": str((run_dir / "test_per_user.csv").relative_to(out)),
        # test under both seen-item settings, same checkpoint and scores; selection used the protocol's
        "test_seen": {SEEN_KEY[e]: mean_metrics(metrics_from_ranks(r, req.protocol.ks))
                      for e, r in outcome.test_ranks_seen.items()},
        "per_user_seen": {SEEN_KEY[e]: str((run_dir / SEEN_PER_USER[e]).relative_to(out))
                          for e in outcome.test_ranks_seen},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **req.tags,
    }
    if not data.is_named(req.data.name):     # a file: later commands (recommend, eval) find it by its path
        record["dataset_path"] = str(Path(req.data.name).resolve())
    if (where := registry.model_dir(spec.name)) is not None:     # a model from outside the package
        record["model_dir"] = where
    if outcome.diverged:
        record["diverged"] = outcome.diverged
        print(f"warning: {spec.name} {ds.name} seed {req.seed}: {outcome.diverged}", file=sys.stderr, flush=True)
    results.append(out, record)
    drop_training_state(run_dir)
    return record


def drop_training_state(run_dir: Path) -> None:
    """A finished run needs only best.pt: its resume checkpoints (optimizer state included) go."""
    for name in ("checkpoint.pt", "checkpoint.prev.pt", "checkpoint.json"):
        (run_dir / name).unlink(missing_ok=True)
