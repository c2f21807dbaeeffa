"""`bench run`'s grid of models x seeds: in this process, on local processes (joblib), or on a Dask cluster."""
from __future__ import annotations

import os
import sys
import time

from bench.errors import BenchError
from bench.runs.locks import Busy
from bench.runs.run import run_one
from bench.runs.spec import RunSpec
from bench.train.progress import pct as progress_pct


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class GridProgress:
    """Job-level progress on stderr: "run 3 of 7" before a run, one summary line kept after each,
    and the time left for the whole grid: the plan's estimates of the runs not done, scaled by
    how the finished runs compared with theirs."""

    def __init__(self, requests: list[RunSpec], plan: list | None, jobs: int = 1, stream=None):
        self.requests, self.jobs = requests, max(jobs, 1)
        plan = plan if plan and len(plan) == len(requests) else None
        self.estimates = [row.seconds for row in plan] if plan else None
        self.known_done = {i for i, row in enumerate(plan or []) if row.state == "finished"}
        self.stream = stream or sys.stderr
        self.done: set[int] = set()
        self.spent = self.planned = 0.0
        self.t0 = 0.0

    def say(self, text: str) -> None:
        if all(r.progress != "none" for r in self.requests):
            print(text, file=self.stream, flush=True)

    def left(self) -> str:
        if self.estimates is None:
            return ""
        rest = sum(e for i, e in enumerate(self.estimates) if i not in self.done)
        if self.planned >= 10:          # tiny estimates would make a noisy ratio
            rest *= min(5.0, max(0.2, self.spent / self.planned))
        return f"; about {duration(rest / self.jobs)} left in all" if rest > 0 else ""

    def label(self, i: int) -> str:
        r = self.requests[i]
        return f"{r.name} {r.data.name} seed {r.seed}"

    def starting(self, i: int) -> None:
        self.t0 = time.perf_counter()
        if i in self.known_done:
            return
        guess = f" (about {duration(self.estimates[i])})" if self.estimates and self.estimates[i] >= 1 else ""
        self.say(f"run {i + 1} of {len(self.requests)}: {self.label(i)}{guess}")

    def finished(self, i: int, record: dict, seconds: float | None = None) -> None:
        self.done.add(i)
        n = len(self.requests)
        if record.get("skipped"):
            self.say(f"[{len(self.done)}/{n}] {self.label(i)}: finished before, kept{self.left()}")
            return
        took = seconds if seconds is not None else time.perf_counter() - self.t0
        if self.estimates and self.estimates[i] > 0:
            self.spent, self.planned = self.spent + took, self.planned + self.estimates[i]
        pct = lambda m: progress_pct(m.get("ndcg@10", float("nan")))
        removed = record.get("test_seen", {}).get("removed")
        seen = f" (seen removed {pct(removed)})" if removed and not record.get("protocol", {}).get("exclude_seen") \
            else ""
        flag = f"; {record['diverged']}" if record.get("diverged") else ""
        self.say(f"[{len(self.done)}/{n}] {self.label(i)}: valid NDCG@10 {pct(record['valid'])}, "
                  f"test {pct(record['test'])}{seen}, best epoch {record.get('best_epoch')} of "
                  f"{record.get('epochs_run')}, {duration(took)}{flag}{self.left()}")


def run_grid(requests: list[RunSpec], jobs: int = 1, backend: str = "local",
             scheduler: str | None = None, plan: list | None = None) -> list[dict]:
    """Run every request: in this process, on `jobs` local processes, or on a Dask cluster.

    backend "dask" sends the runs through joblib's dask backend to the scheduler at
    `scheduler` (e.g. tcp://10.0.0.5:8786); every worker must see `out` and the data.
    plan: the plan's rows (bench.runs.plan.PlanRow, one per request), for the time left in the progress lines.
    """
    if backend == "dask":
        return _run_on_dask(requests, scheduler)
    progress = GridProgress(requests, plan, jobs)
    if jobs <= 1:
        # runs another command is training go last, so this one trains the free runs first
        done: dict[int, dict] = {}
        for i, r in enumerate(requests):
            progress.starting(i)
            try:
                done[i] = run_one(r, wait=False)
                progress.finished(i, done[i])
            except Busy:
                progress.say(f"run {i + 1} of {len(requests)}: {progress.label(i)} is training in another "
                              "process; waiting for it at the end")
        for i, r in enumerate(requests):
            if i not in done:
                progress.starting(i)
                done[i] = run_one(r)
                progress.finished(i, done[i])
        return [done[i] for i in range(len(requests))]
    from joblib import Parallel, delayed

    requests = [r.with_(progress="lines" if r.progress != "none" else "none",
                        threads=r.threads or max(1, (os.cpu_count() or 1) // jobs)) for r in requests]
    records = []
    t0 = time.perf_counter()
    for i, record in enumerate(Parallel(n_jobs=jobs, return_as="generator")(delayed(run_one)(r) for r in requests)):
        progress.finished(i, record, None if record.get("skipped") else record.get("train_seconds", 0.0)
                          + record.get("eval_seconds", 0.0))
        records.append(record)
    progress.say(f"{len(records)} runs in {duration(time.perf_counter() - t0)} with --jobs {jobs}")
    return records


SCHEMES = ("tcp", "tls", "ws", "wss", "inproc", "ucx")


def check_scheduler(scheduler: str | None, timeout: float = 5.0) -> None:
    """A Dask scheduler address that parses and answers on its port, checked before any other work."""
    import socket
    from urllib.parse import urlsplit

    if not scheduler:
        raise BenchError("--backend dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
    example = "give one like tcp://127.0.0.1:8786"
    scheme = scheduler.split("://", 1)[0] if "://" in scheduler else ""
    if scheme not in SCHEMES:
        raise BenchError(f"--scheduler {scheduler}: unknown protocol '{scheme or '(none)'}'; {example}")
    if scheme in ("inproc", "ucx"):
        return
    try:
        parts = urlsplit(scheduler)
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise BenchError(f"--scheduler {scheduler}: no host and port number; {example}")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise BenchError(f"cannot reach the Dask scheduler at {scheduler}: {e.strerror or e}") from None


def _sees(folders: list[str]) -> list[str]:
    """On a worker: the folders it cannot write into (nor create, for one not there yet)."""
    blind = []
    for folder in folders:
        probe = folder
        while not os.path.exists(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)
        if not (os.path.isdir(probe) and os.access(probe, os.W_OK | os.X_OK)):
            blind.append(folder)
    return blind


def _run_on_dask(requests: list[RunSpec], scheduler: str | None) -> list[dict]:
    check_scheduler(scheduler)
    from dask.distributed import Client
    from joblib import Parallel, delayed, parallel_config

    try:
        client = Client(scheduler, timeout="20s")
    except OSError as e:
        raise BenchError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    # paths as this command sees them: a worker's working folder is its own
    requests = [r.with_(progress="none", out=os.path.abspath(r.out), data=r.data.absolute()) for r in requests]
    with client:
        outs = sorted({r.out for r in requests})
        blind = {w: b for w, b in client.run(_sees, outs).items() if b}
        if blind:
            worker, folders = next(iter(blind.items()))
            raise BenchError(f"{len(blind)} Dask worker{'s' * (len(blind) > 1)} cannot write to {folders[0]} "
                             f"(e.g. {worker}); give an --out on storage every worker shares")
        with parallel_config(backend="dask"):
            return Parallel(n_jobs=-1)(delayed(run_one)(r) for r in requests)
