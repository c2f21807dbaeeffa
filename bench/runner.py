"""`bench run`: the grid of models x seeds, each run trained, evaluated and stored."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

import bench
from bench import contract, data, registry, results
from bench.errors import BenchError
from bench.fields import identity
from bench.locks import Busy, claim, lock_path
from bench.progress import make as make_progress
from bench.protocol import Protocol, eval_split, mean_metrics, metrics_from_ranks
from bench.results import SEEN_KEY, SEEN_PER_USER
from bench.training import EvalCallback, Trainer, resolve_device


@dataclass(frozen=True)
class RunRequest:
    model: str
    dataset: str
    seed: int
    out: str
    protocol: Protocol = Protocol()
    overrides: dict = field(default_factory=dict)
    device: str = "auto"
    data_dir: str | None = None
    force: bool = False
    progress: str = "none"             # bar | lines | none (bench.progress.make)
    threads: int = 0            # torch intra-op threads; 0 = leave the default
    tags: dict = field(default_factory=dict)    # merged into the record (a study's "study", "trial", "params")
    on_eval: EvalCallback | None = None         # see Trainer; a study reports to its pruner here


def dataset_fingerprint(spec: str, directory: str | None) -> str:
    """Names a dataset by content, so a changed file is a different run."""
    if spec in data.BUILTIN:
        return f"{spec}-v1"
    path = data.data_dir(directory) / f"{spec}.pkl" if spec in data.NAMED else Path(spec)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"{path.stem if spec not in data.NAMED else spec}-{digest}"


def run_id(spec: registry.ModelSpec, dataset_fp: str, seed: int, protocol: Protocol) -> str:
    key = {"model": spec.name, "config": identity(dataclasses.asdict(spec.config)),
           "train": identity(dataclasses.asdict(spec.train)),
           "protocol": protocol.to_dict(), "dataset": dataset_fp, "seed": seed}
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def git_revision() -> str:
    """The checkout's revision when this process first asks: the code it imported, not a
    commit made while a long run was going on (run_one asks before training)."""
    root = Path(bench.__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if rev.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def versions() -> dict[str, str]:
    return {"bench": bench.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform()}


def write_history(path: Path, history: list[dict]) -> None:
    if not history:
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def write_per_user(path: Path, ranks: torch.Tensor, ks: tuple[int, ...]) -> None:
    per_user = metrics_from_ranks(ranks, ks)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user", "rank", *per_user])
        cols = [ranks.tolist()] + [v.tolist() for v in per_user.values()]
        for user, row in enumerate(zip(*cols)):
            writer.writerow([user, row[0], *(f"{x:.6g}" for x in row[1:])])


TRAJECTORY_USERS = 8


@torch.no_grad()
def write_trajectory(path: Path, model, ds, protocol: Protocol, device: torch.device) -> None:
    """The reverse process of the first TRAJECTORY_USERS test users, for the reporter:
    x (S+1, U, D) and timesteps (S+1,) from the model, item_emb (N+1, D), users,
    targets and the top-10 items of the final estimate (U, 10)."""
    import numpy as np

    split = eval_split(ds, "test", protocol)
    users = torch.arange(min(TRAJECTORY_USERS, len(split.target)))
    longest = max(int(split.lengths[users].max()), 1)
    model.eval()
    traj = model.trajectory(split.history[users, split.history.shape[1] - longest:].to(device))
    item_emb = traj["item_emb"].detach().float()
    scores = traj["x"][-1] @ item_emb.T
    scores[:, 0] = -float("inf")                                          # padding is never an item
    np.savez(path, x=traj["x"].cpu().numpy(), timesteps=traj["timesteps"].cpu().numpy(),
             item_emb=item_emb.cpu().numpy(), users=users.numpy(), targets=split.target[users].numpy(),
             topk=scores.topk(10, dim=1).indices.cpu().numpy())


def finished(out: Path, rid: str) -> dict | None:
    done = results.latest_by_run(results.read(out)).get(rid)
    return {**done, "skipped": True} if done else None


def run_one(req: RunRequest, wait: bool = True) -> dict:
    """Train and evaluate one (model, dataset, seed); returns its results record.

    A run finished before is returned as stored (marked skipped) unless `force`. A run another
    process is training is waited for (then returned as it stored it), or, without `wait`,
    raises Busy."""
    out = Path(req.out)
    spec = registry.resolve(req.model, req.overrides, req.dataset)
    fp = dataset_fingerprint(req.dataset, req.data_dir)
    rid = run_id(spec, fp, req.seed, req.protocol)
    if not req.force and (done := finished(out, rid)):
        return done
    with claim(lock_path(out, rid), wait):
        if not req.force and (done := finished(out, rid)):       # finished while we waited
            return done
        return train_and_store(req, spec, fp, rid)


def train_and_store(req: RunRequest, spec: registry.ModelSpec, fp: str, rid: str) -> dict:
    out = Path(req.out)
    if req.threads:
        torch.set_num_threads(req.threads)
    ds = data.resolve(req.dataset, req.data_dir)
    run_dir = out / "runs" / ds.name / spec.name / f"seed{req.seed}-{rid}"
    if req.force and run_dir.exists():
        shutil.rmtree(run_dir)
    device = resolve_device(req.device)
    git_revision()
    torch.manual_seed(req.seed)
    model = spec.build(ds.n_items)
    progress = make_progress(req.progress, f"{spec.name} {ds.name} seed {req.seed}")
    outcome = Trainer(model, ds, req.protocol, spec.train, run_dir, req.seed, device, progress, req.on_eval).run()
    write_history(run_dir / "history.csv", outcome.history)
    write_per_user(run_dir / "test_per_user.csv", outcome.test_ranks, req.protocol.ks)
    for exclude, ranks in outcome.test_ranks_seen.items():
        write_per_user(run_dir / SEEN_PER_USER[exclude], ranks, req.protocol.ks)
    if contract.has_trajectory(model):
        write_trajectory(run_dir / "trajectory.npz", model, ds, req.protocol, device)
    record = {
        "run_id": rid, "model": spec.name, "dataset": ds.name, "dataset_fingerprint": fp, "seed": req.seed,
        "config": dataclasses.asdict(spec.config), "train": dataclasses.asdict(spec.train),
        "protocol": req.protocol.to_dict(), "valid": outcome.valid, "test": outcome.test,
        "best_epoch": outcome.best_epoch, "epochs_run": outcome.epochs_run,
        "train_seconds": round(outcome.train_seconds, 3), "eval_seconds": round(outcome.eval_seconds, 3),
        "test_seconds": round(outcome.test_seconds, 3),
        "n_users": ds.n_users, "n_items": ds.n_items, "device": str(device), "threads": torch.get_num_threads(),
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
    if outcome.diverged:
        record["diverged"] = outcome.diverged
        print(f"warning: {spec.name} {ds.name} seed {req.seed}: {outcome.diverged}", file=sys.stderr, flush=True)
    results.append(out, record)
    return record


def run_grid(requests: list[RunRequest], jobs: int = 1, backend: str = "local",
             scheduler: str | None = None) -> list[dict]:
    """Run every request: in this process, on `jobs` local processes, or on a Dask cluster.

    backend "dask" sends the runs through joblib's dask backend to the scheduler at
    `scheduler` (e.g. tcp://10.0.0.5:8786); every worker must see `out` and the data.
    """
    if backend == "dask":
        return _run_on_dask(requests, scheduler)
    if jobs <= 1:
        # runs another command is training go last, so this one trains the free runs first
        done: dict[int, dict] = {}
        for i, r in enumerate(requests):
            try:
                done[i] = run_one(r, wait=False)
            except Busy:
                pass
        return [done[i] if i in done else run_one(r) for i, r in enumerate(requests)]
    from joblib import Parallel, delayed

    threads = max(1, (os.cpu_count() or 1) // jobs)
    requests = [dataclasses.replace(r, progress="lines" if r.progress != "none" else "none", threads=threads)
                for r in requests]
    return Parallel(n_jobs=jobs)(delayed(run_one)(r) for r in requests)


def _run_on_dask(requests: list[RunRequest], scheduler: str | None) -> list[dict]:
    if not scheduler:
        raise BenchError("--backend dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
    from dask.distributed import Client
    from joblib import Parallel, delayed, parallel_config

    try:
        client = Client(scheduler, timeout="20s")
    except OSError as e:
        raise BenchError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    requests = [dataclasses.replace(r, progress="none") for r in requests]
    with client, parallel_config(backend="dask"):
        return Parallel(n_jobs=-1)(delayed(run_one)(r) for r in requests)
