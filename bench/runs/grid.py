"""`bench run`'s grid of models x seeds: in this process, on local processes (joblib), or on a Dask cluster."""
from __future__ import annotations

import dataclasses
import os

from bench.errors import BenchError
from bench.runs.locks import Busy
from bench.runs.run import RunRequest, run_one


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
