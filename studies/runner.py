"""The common runner of every study: trials -> `bench.runs.run.run_one`, on one storage, by N workers.

A plan (GridPlan, TunePlan) says what a study is: how to create it, what a
trial trains, and whether work is left. This module runs a plan: each worker
loops recover -> one trial -> ..., until the study is complete, so rerunning
the same command resumes it. Every trial is a `bench run` run, tagged in
results.jsonl with "study", "study_id", "trial" and "params".
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any, Protocol as Interface

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from bench.runs import results
from bench.errors import BenchError
from bench.runs.run import run_one
from bench.runs.spec import RunSpec
from bench.train.config import SELECT_METRIC
from bench.studies import storage as st

POLL_SECONDS = 1
err = Console(stderr=True, highlight=False, **({} if sys.stderr.isatty() else {"width": 200}))


# point fields that set the protocol rather than the model's config
PROTOCOL_POINTS = ("split", "order", "cutoff")


class Plan(Interface):
    name: str           # the study's name, e.g. "offset_noise"
    study_id: str       # its name in the storage: name, dataset, model and a digest of the settings
    base: RunSpec       # the run every trial starts from: model, data, protocol, --set values, where it runs

    def executed(self, **fields) -> "Plan": ...     # the plan with execution fields (threads) set in its specs

    def create(self, storage) -> optuna.Study: ...
    def load(self, storage, worker: int) -> optuna.Study: ...
    def objective(self, trial: optuna.Trial) -> Any: ...
    def has_work(self, trials: list[FrozenTrial]) -> bool: ...


class DuplicatePoint(Exception):
    """Raised when a grid point already belongs to another trial (a race at the end of a grid)."""


def run_trial(plan: Plan, trial: optuna.Trial, spec: RunSpec, params: dict[str, Any], prune: bool,
              point: dict[str, Any] | None = None) -> dict:
    """Train and evaluate one trial (`spec`: the point's run at the trial's seed) through `run_one`;
    returns its results record, tagged with the trial's `params` and the grid point (`point`: its
    name, its index in the grid and whether it is the registered setting)."""
    tags = {"study": plan.name, "study_id": plan.study_id, "trial": trial.number, "params": params, **(point or {})}
    record = run_one(spec.with_(tags=tags, on_eval=pruning_callback(trial) if prune else None))
    if record.get("skipped") and any(record.get(k) != v for k, v in tags.items() if k != "trial"):
        # a run finished before (by `bench run` or another study): tag a copy for this study
        record = {**{k: v for k, v in record.items() if k != "skipped"}, **tags, "reused": True}
        results.append(Path(spec.out), record)
    # the metrics live in the storage too, so a study shared by many machines has one table
    for key in ("run_id", "valid", "test", "train_seconds", "seed", "diverged"):
        if key in record:
            trial.set_user_attr(key, record[key])
    err.print(f"[{plan.name}] trial {trial.number} {params} seed {spec.seed}: "
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
    plan = plan.executed(threads=plan.base.threads or max(1, (os.cpu_count() or 1) // workers))
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
