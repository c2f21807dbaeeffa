"""The common runner of every study: trials -> `bench.runs.run.run_one`, on one storage, by N workers.

A plan (GridPlan, TunePlan) says what a study is: how to create it, what a
trial trains, and whether work is left. This module runs a plan: each worker
loops recover -> one trial -> ..., until the study is complete, so rerunning
the same command resumes it. Every trial is a `bench run` run, tagged in
results.jsonl with "study", "study_id", "trial" and "params".
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol as Interface

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from bench.runs import results
from bench.errors import BenchError
from bench.eval.protocol import Protocol
from bench.registry.runconfig import raw
from bench.runs.run import RunRequest, run_one
from bench.train.config import SELECT_METRIC
from bench.studies import storage as st

POLL_SECONDS = 1
err = Console(stderr=True, highlight=False, **({} if sys.stderr.isatty() else {"width": 200}))


# point fields that set the protocol rather than the model's config
PROTOCOL_POINTS = ("split", "order", "cutoff")


@dataclass(frozen=True)
class Target:
    """What every trial of a study trains, before the trial's own parameters."""
    model: str
    dataset: str
    out: str
    base: dict[str, str] = field(default_factory=dict)      # --set / --epochs values for the model
    protocol: Protocol = Protocol()
    device: str = "auto"
    data_dir: str | None = None
    threads: int = 0
    log: str = "none"           # live curves (bench.train.tblog)

    def overrides(self, params: dict[str, Any]) -> dict[str, dict[str, str]]:
        """The model's --set values at a point (its protocol fields aside)."""
        return {self.model: {**self.base, **{k: raw(v) for k, v in params.items() if k not in PROTOCOL_POINTS}}}

    def protocol_at(self, params: dict[str, Any]) -> Protocol:
        """The protocol at a point: a study may vary the split or the order of histories (`shuffled`)."""
        return dataclasses.replace(self.protocol, **{k: v for k, v in params.items() if k in PROTOCOL_POINTS})


class Plan(Interface):
    name: str           # the study's name, e.g. "offset_noise"
    study_id: str       # its name in the storage: name, dataset, model and a digest of the settings
    target: Target

    def create(self, storage) -> optuna.Study: ...
    def load(self, storage, worker: int) -> optuna.Study: ...
    def objective(self, trial: optuna.Trial) -> Any: ...
    def has_work(self, trials: list[FrozenTrial]) -> bool: ...


class DuplicatePoint(Exception):
    """Raised when a grid point already belongs to another trial (a race at the end of a grid)."""


def run_trial(plan: Plan, trial: optuna.Trial, params: dict[str, Any], seed: int, prune: bool,
              point: dict[str, Any] | None = None) -> dict:
    """Train and evaluate one trial through `run_one`; returns its results record, tagged with the
    grid point (`point`: its name, its index in the grid and whether it is the registered setting)."""
    target = plan.target
    tags = {"study": plan.name, "study_id": plan.study_id, "trial": trial.number, "params": params, **(point or {})}
    req = RunRequest(model=target.model, dataset=target.dataset, seed=seed, out=target.out,
                     protocol=target.protocol_at(params), overrides=target.overrides(params), device=target.device,
                     data_dir=target.data_dir, threads=target.threads, tags=tags, log=target.log,
                     on_eval=pruning_callback(trial) if prune else None)
    record = run_one(req)
    if record.get("skipped") and any(record.get(k) != v for k, v in tags.items() if k != "trial"):
        # a run finished before (by `bench run` or another study): tag a copy for this study
        record = {**{k: v for k, v in record.items() if k != "skipped"}, **tags, "reused": True}
        results.append(Path(target.out), record)
    # the metrics live in the storage too, so a study shared by many machines has one table
    for key in ("run_id", "valid", "test", "train_seconds", "seed", "diverged"):
        if key in record:
            trial.set_user_attr(key, record[key])
    err.print(f"[{plan.name}] trial {trial.number} {params} seed {seed}: "
              f"valid {SELECT_METRIC} {100 * record['valid'][SELECT_METRIC]:.2f}%"
              + (" (already finished)" if record.get("skipped") or record.get("reused") else ""))
    return record


def pruning_callback(trial: optuna.Trial):
    def on_eval(epoch: int, metrics: dict[str, float]) -> None:
        trial.report(metrics[SELECT_METRIC], epoch)
        if trial.should_prune():
            err.print(f"trial {trial.number} pruned at epoch {epoch} "
                      f"(valid {SELECT_METRIC} {100 * metrics[SELECT_METRIC]:.2f}%)")
            raise optuna.TrialPruned(f"valid {SELECT_METRIC} {metrics[SELECT_METRIC]:.5f} at epoch {epoch}")
    return on_eval


def _claimed(plan: Plan, lease: st.Lease):
    """The objective, with the trial claimed by this worker and Ctrl-C remembered."""
    def objective(trial: optuna.Trial):
        trial.set_user_attr("worker", lease.id)
        trial.set_user_attr("interrupted", False)
        try:
            return plan.objective(trial)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except BenchError as e:         # the trial fails; its reason stays in the study for the table
            trial.set_user_attr("error", str(e)[:300])
            err.print(f"[{plan.name}] trial {trial.number} failed: {e}")
            raise
    return objective


def work(plan: Plan, url: str, worker: int = 0) -> None:
    """One worker: run trials until the study is complete."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = plan.load(st.open_storage(url), worker)
    with st.Lease(url) as lease:
        objective = _claimed(plan, lease)
        while True:
            st.recover(study, lease)
            trials = study.get_trials(deepcopy=False)
            if not plan.has_work(trials):
                if not any(t.state == TrialState.RUNNING for t in trials):
                    return
                time.sleep(POLL_SECONDS)     # others still run: wait, in case one dies and is retried
                continue
            study.optimize(objective, n_trials=1, catch=(DuplicatePoint, BenchError))


def run_study(plan: Plan, url: str, workers: int = 1) -> optuna.Study:
    """Create or resume the study, run it on `workers` processes, return it when complete."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = plan.create(st.open_storage(url))
    st.retry_interrupted(study)
    cores = os.cpu_count() or 1
    if workers > cores:
        err.print(f"--workers {workers} capped at {cores} ({cores} cores)")
        workers = cores
    if workers <= 1:
        work(plan, url)
        return study
    threads = plan.target.threads or max(1, (os.cpu_count() or 1) // workers)
    plan = dataclasses.replace(plan, target=dataclasses.replace(plan.target, threads=threads))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=work, args=(plan, url, i), daemon=True) for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise BenchError(f"{len(failed)} of {workers} study workers failed (exit codes {failed}); "
                         "rerun the command to resume")
    return study


def stdout_console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=200)
