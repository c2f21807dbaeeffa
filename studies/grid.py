"""`bench ablate`: a grid of points x seeds as an Optuna study, and its table.

GridSampler (Optuna >= 4) gives trial n the n-th grid point while n is below
the grid size, so concurrent workers never draw the same point; a retried trial
keeps its point. The one race left (two workers asking for the last point) is
caught in the objective: the lower-numbered trial keeps the point.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import statistics
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from bench.registry.runconfig import raw
from bench.runs.fields import identity
from bench.runs import results as store
from bench.train.config import SELECT_METRIC
from bench.studies.ablation import Ablation, label
from bench.runs.spec import RunSpec
from bench.studies.runner import PROTOCOL_POINTS, DuplicatePoint, run_trial

TABLE_METRICS = (("valid", "ndcg@10"), ("valid", "hr@10"), ("test", "ndcg@10"), ("test", "hr@10"))


def digest(settings: Any) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class GridPlan:
    name: str
    study_id: str
    base: RunSpec                           # the registered point under the study's settings and --set
    points: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...]
    names: tuple[str, ...] = ()
    registered: str | None = None           # the point that resolves to the model's registered settings
    specs: tuple[RunSpec, ...] = ()         # each point's run (seed 0), resolved once when the plan is made

    @classmethod
    def of(cls, ablation: Ablation, base: RunSpec, seeds: list[int]) -> "GridPlan":
        # the study's selection settings, under the command line's --set values
        base = dataclasses.replace(base, sets={**ablation.fixed, **base.sets}).at({})
        # each point resolved with the --set values: a bad mix fails before any work
        specs = tuple(base.at(point, PROTOCOL_POINTS) for point in ablation.points)
        names = ablation.names or tuple(label(p) for p in ablation.points)
        same = lambda s: (s.model.config, s.model.train, s.protocol) == (base.model.config, base.model.train,
                                                                         base.protocol)
        registered = next((n for n, s in zip(names, specs) if same(s)), None)
        settings = {"points": ablation.points, "seeds": seeds, "model": base.name,
                    "base": {k: raw(v) for k, v in base.sets.items()},
                    "protocol": identity(base.protocol.to_dict()), "dataset": base.data.name,
                    # what each point resolves to: a study run again after the model's defaults changed
                    # is another study, not one whose (point, seed) cells are already covered
                    "resolved": [s.with_(seed=0).run_id for s in specs],
                    # and the point it is compared with: after a default moved from one point to another
                    # (offset 0.1 -> 0), the same points around the new default are another study
                    "registered": base.with_(seed=0).run_id}
        sid = f"{ablation.name}-{base.data.stem}-{base.name}-{digest(settings)}"
        return cls(ablation.name, sid, base, ablation.points, tuple(seeds), ablation.names, registered, specs)

    def executed(self, **fields) -> "GridPlan":
        return dataclasses.replace(self, base=self.base.with_(**fields),
                                   specs=tuple(s.with_(**fields) for s in self.specs))

    def runs(self) -> list[RunSpec]:
        """Every run of the grid, point by point, each at every seed."""
        return [s.with_(seed=seed) for s in self.specs for seed in self.seeds]

    @property
    def labels(self) -> list[str]:
        return list(self.names) if self.names else [label(p) for p in self.points]

    def sampler(self) -> optuna.samplers.GridSampler:
        # a fixed seed: every worker must map trial numbers to the same points
        return optuna.samplers.GridSampler({"point": self.labels, "seed": list(self.seeds)}, seed=0)

    def create(self, storage) -> optuna.Study:
        study = optuna.create_study(study_name=self.study_id, storage=storage, sampler=self.sampler(),
                                    direction="maximize", load_if_exists=True)
        study.set_user_attr("study", self.name)
        return study

    def load(self, storage, worker: int) -> optuna.Study:
        return optuna.load_study(study_name=self.study_id, storage=storage, sampler=self.sampler())

    def size(self) -> int:
        return len(self.points) * len(self.seeds)

    def has_work(self, trials: list[FrozenTrial]) -> bool:
        if any(t.state == TrialState.WAITING for t in trials):
            return True
        covered = {t.system_attrs.get("grid_id") for t in trials} - {None}
        return len(covered) < self.size()

    def objective(self, trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("point", self.labels)
        seed = trial.suggest_categorical("seed", list(self.seeds))
        owner = min(t.number for t in trial.study.get_trials(deepcopy=False)
                    if t.params.get("point") == name and t.params.get("seed") == seed
                    and t.state != TrialState.FAIL)
        if owner != trial.number:
            trial.set_user_attr("duplicate_of", owner)
            raise DuplicatePoint(f"trial {owner} holds {name}, seed {seed}")
        i = self.labels.index(name)
        point = {"point": name, "point_index": i, "registered": name == self.registered}
        return run_trial(self, trial, self.specs[i].with_(seed=seed), self.points[i], prune=False,
                         point=point)["valid"][SELECT_METRIC]



def mean_std(values: list[float]) -> str:
    """Percent, mean ± std over seeds; one seed shows its value alone."""
    mean, std = store.mean_std([100 * v for v in values])
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def beats(top: list[float], other: list[float]) -> bool:
    """`top` above `other` beyond the spread over seeds: mean - std above the other's mean + std.
    A single seed has no spread: it never beats anything, and is beaten as a point."""
    if len(top) < 2:
        return False
    other_std = statistics.stdev(other) if len(other) > 1 else 0.0
    return statistics.mean(top) - statistics.stdev(top) > statistics.mean(other) + other_std


def best_point(scores: dict[str, list[float]]) -> str | None:
    """The point with the highest mean validation score, if it beats every other point beyond the
    seed spread; else None (also with fewer than two points)."""
    if len(scores) < 2:
        return None
    top = max(scores, key=lambda lab: statistics.mean(scores[lab]))
    return top if all(beats(scores[top], v) for lab, v in scores.items() if lab != top) else None


def table_rows(plan: GridPlan, study: optuna.Study) -> tuple[list[str], list[list[str]]]:
    """Point -> mean ± std over seeds (percent); "* " marks the best point on validation NDCG@10
    when it beats every other beyond the seed spread (see `beats`). A last row notes the points
    run with one seed, which have no spread.

    Read from the trials' user attributes, so every worker of a shared study prints the same table.
    """
    by_point: dict[str, list[dict]] = {}
    errors: dict[str, str] = {}
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            by_point.setdefault(t.params["point"], []).append(t.user_attrs)
        elif t.state == TrialState.FAIL and t.user_attrs.get("error"):
            errors[t.params.get("point")] = f"seed {t.params.get('seed')}: {t.user_attrs['error']}"
    header = ["point", "seeds", *(f"{split} {metric}" for split, metric in TABLE_METRICS), "train s"]
    best = best_point({lab: [r["valid"][SELECT_METRIC] for r in by_point[lab]]
                       for lab in plan.labels if lab in by_point})
    rows = []
    for lab in plan.labels:
        rs = by_point.get(lab, [])
        if not rs:
            why = f" (failed, {errors[lab].split(';')[0][:100]})" if lab in errors else ""
            rows.append([lab + why, "0", *["-"] * len(TABLE_METRICS), "-"])
            continue
        cells = [mean_std([r[split][metric] for r in rs]) for split, metric in TABLE_METRICS]
        train = statistics.mean(r["train_seconds"] for r in rs)
        diverged = [r for r in rs if r.get("diverged")]
        mark = f" (diverged: {len(diverged)} of {len(rs)} seeds, loss exploded)" if diverged else ""
        rows.append([("* " if lab == best else "") + lab + mark, str(len(rs)), *cells, f"{train:.0f}"])
    single = [lab for lab in plan.labels if len(by_point.get(lab, [])) == 1]
    if single:
        note = ("n = 1 seed: no spread, no best mark" if len(single) == len(by_point)
                else f"n = 1 seed for {len(single)} points: never best")
        rows.append([note, *[""] * (len(header) - 1)])
    return header, rows
