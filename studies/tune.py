"""`bench tune MODEL`: seeded TPE over the model's search space, pruned, single- or multi-objective.

The space is the model class's `search_space` (e.g. baselines/sasrec.py), else
studies/spaces.py. The model's defaults are the first trial. The objective is
validation NDCG@10 (never test); `--objectives ndcg,latency` adds inference
milliseconds per user (the one test pass over all users) and gives a Pareto
front. Pruning is for a single objective: Optuna has none for several.
"""
from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from bench import registry
from bench.registry import contract
from bench.registry import runconfig
from bench.errors import BenchError
from bench.runs.fields import identity
from bench.train.config import SELECT_METRIC
from bench.studies.grid import digest
from bench.runs.spec import RunSpec
from bench.studies.runner import run_trial
from bench.studies.spaces import SPACES

OBJECTIVES = {"ndcg": "maximize", "latency": "minimize"}
PRUNERS = ("median", "hyperband", "none")


def search_space(model: str) -> dict[str, Any]:
    space = contract.search_space(registry.model_class(model)) or SPACES.get(model)
    if not space:
        raise BenchError(f"model '{model}' declares no search space; give its class a `search_space` dict")
    return dict(space)


def parse_objectives(spec: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
    bad = [n for n in names if n not in OBJECTIVES]
    if not names or bad or len(set(names)) != len(names) or names[0] != "ndcg":
        raise BenchError(f"bad --objectives '{spec}'; use ndcg or ndcg,latency")
    return names


def suggest(trial: optuna.Trial, name: str, spec: Any) -> Any:
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    low, high, *scale = spec
    if isinstance(low, int) and isinstance(high, int) and not scale:
        return trial.suggest_int(name, low, high)
    return trial.suggest_float(name, float(low), float(high), log=scale == ["log"])


def defaults(base: RunSpec, space: dict[str, Any]) -> dict[str, Any]:
    """The model's own values (after --set) of the searched fields: the first trial."""
    return {k: getattr(base.model.config if hasattr(base.model.config, k) else base.model.train, k) for k in space}


@dataclass(frozen=True)
class TunePlan:
    name: str
    study_id: str
    base: RunSpec               # the run at the model's settings under --set; a trial sets the searched fields
    space: dict[str, Any]
    trials: int
    objectives: tuple[str, ...] = ("ndcg",)
    pruner: str = "median"
    seed: int = 0
    first: tuple[dict[str, Any], ...] = ()      # enqueued before TPE: the defaults, then any given

    @classmethod
    def of(cls, base: RunSpec, trials: int, objectives=("ndcg",), pruner="median", seed=0,
           space: dict[str, Any] | None = None, extra: tuple[dict[str, Any], ...] = ()) -> "TunePlan":
        space = {k: v for k, v in (space or search_space(base.name)).items() if k not in base.sets}
        if not space:
            raise BenchError("every searched field is fixed by --set; nothing is left to tune")
        settings = {"space": space, "objectives": objectives, "pruner": pruner, "seed": seed,
                    "model": base.name, "base": {k: runconfig.raw(v) for k, v in base.sets.items()},
                    "protocol": identity(base.protocol.to_dict()), "dataset": base.data.name, "extra": extra,
                    "resolved": base.with_(seed=0).run_id}     # the defaults under the search, as they are now
        sid = f"tune-{base.data.stem}-{base.name}-{digest(settings)}"
        return cls("tune", sid, base.with_(seed=seed), space, trials, tuple(objectives), pruner, seed,
                   (defaults(base, space), *extra))

    def executed(self, **fields) -> "TunePlan":
        return dataclasses.replace(self, base=self.base.with_(**fields))

    @property
    def epochs(self) -> int:
        return self.base.model.train.epochs

    def make_pruner(self) -> optuna.pruners.BasePruner:
        if self.pruner == "none" or len(self.objectives) > 1:
            return optuna.pruners.NopPruner()
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(self.epochs, 1))
        # no pruning in the first quarter of the budget: slow starters are not hopeless yet
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=self.epochs // 4)

    def sampler(self, worker: int) -> optuna.samplers.TPESampler:
        startup = min(10, max(3, self.trials // 4))
        return optuna.samplers.TPESampler(seed=self.seed + worker, n_startup_trials=startup,
                                          multivariate=True, constant_liar=True)

    def _open(self, storage, worker: int, create: bool) -> optuna.Study:
        directions = [OBJECTIVES[o] for o in self.objectives]
        if create:
            return optuna.create_study(study_name=self.study_id, storage=storage, directions=directions,
                                       sampler=self.sampler(worker), pruner=self.make_pruner(), load_if_exists=True)
        return optuna.load_study(study_name=self.study_id, storage=storage, sampler=self.sampler(worker),
                                 pruner=self.make_pruner())

    def create(self, storage) -> optuna.Study:
        study = self._open(storage, 0, create=True)
        if not study.get_trials(deepcopy=False):
            for params in self.first:
                study.enqueue_trial(params, skip_if_exists=True)
        return study

    def load(self, storage, worker: int) -> optuna.Study:
        return self._open(storage, worker, create=False)

    def has_work(self, trials: list[FrozenTrial]) -> bool:
        originals = [t for t in trials if "failed_trial" not in t.system_attrs]    # a retry replaces its original
        return any(t.state == TrialState.WAITING for t in trials) or len(originals) < self.trials

    def objective(self, trial: optuna.Trial):
        params = {name: suggest(trial, name, spec) for name, spec in self.space.items()}
        prune = len(self.objectives) == 1 and self.pruner != "none"
        record = run_trial(self, trial, self.base.at(params), params, prune=prune)
        values = {"ndcg": record["valid"][SELECT_METRIC], "latency": latency_ms(record)}
        return tuple(values[o] for o in self.objectives) if len(self.objectives) > 1 else values["ndcg"]


def latency_ms(record: dict) -> float:
    """Inference milliseconds per user: the test pass (scoring and ranking every user) / users."""
    if "test_seconds" not in record:
        raise BenchError(f"run {record['run_id']} predates test timing; rerun it with --force")
    return 1000 * record["test_seconds"] / record["n_users"]


def finished(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def best_trials(plan: TunePlan, study: optuna.Study) -> list[FrozenTrial]:
    """The best trial, or the Pareto front sorted by NDCG (best first)."""
    if not finished(study):
        raise BenchError(f"study {plan.study_id} has no finished trial")
    front = study.best_trials if len(plan.objectives) > 1 else [study.best_trial]
    return sorted(front, key=lambda t: -t.values[0])


def save_best(plan: TunePlan, study: optuna.Study, path: Path) -> FrozenTrial:
    """best.json for `bench run --config`: the base values plus the best trial's (highest NDCG on a front)."""
    best = best_trials(plan, study)[0]
    values = {**plan.base.sets, **best.params}
    info = {"study": plan.study_id, "trial": best.number, "dataset": plan.base.data.name,
            "objectives": dict(zip(plan.objectives, best.values)), "seed": plan.seed}
    runconfig.save(path, plan.base.name, values, **info)
    return best


def trial_rows(plan: TunePlan, study: optuna.Study, trials: list[FrozenTrial]) -> tuple[list[str], list[list[str]]]:
    header = ["trial", "state", "valid ndcg@10 %", *(["ms / user"] if "latency" in plan.objectives else []),
              *plan.space]
    rows = []
    for t in trials:
        value = t.values[0] if t.values else (t.intermediate_values[max(t.intermediate_values)]
                                              if t.intermediate_values else None)
        cells = [str(t.number) + (" (defaults)" if t.params == plan.first[0] else ""), t.state.name.lower(),
                 "-" if value is None else f"{100 * value:.2f}"]
        if "latency" in plan.objectives:
            cells.append(f"{t.values[1]:.3f}" if t.values and len(t.values) > 1 else "-")
        cells += [fmt(t.params.get(k)) for k in plan.space]
        rows.append(cells)
    return header, rows


def fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
