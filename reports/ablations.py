"""A study's points against its registered point: per-user paired differences, Holm across the points.

Each point of a `bench ablate` study is a Variant (its seeds); the point whose runs are tagged
`registered` (it resolves to the model's registered settings) is the reference. For each other
point and each seen-item setting, the per-user test NDCG@10 (or HR@10), averaged over seeds, is
compared with the reference's at the same seeds (a point run at seed 0 only against the reference's
seed 0): the mean difference in percentage points, the half-width of its 95 % t-interval over users,
and a paired test's p-value, Holm-adjusted over the study's points. Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.reports.collect import Run, Variant, read_per_user
from bench.reports.settings import params_label, sort_key, study_variants
from bench.reports.stats import CONFIDENCE, holm, paired_p

SEEN = ("removed", "kept")


@dataclass
class Delta:
    points: float           # mean per-user difference to the registered point, percentage points
    halfwidth: float        # of its 95 % t-interval over users
    p: float                # paired test, Holm-adjusted over the study's points


class Rescored:
    """A point's checkpoints scored again on test (a study's `rescore`: `bench eval` lines tagged with
    its name): what a Variant offers the tables, from those lines."""

    def __init__(self, variant: Variant, entries: list[dict]):
        self.variant, self.entries = variant, entries
        self.by_run = {r.record["run_id"]: r for r in variant.runs}

    @property
    def seeds(self) -> int:
        return len(self.entries)

    @property
    def record(self) -> dict:
        return self.variant.record

    def seen_values(self, seen: str, metric: str, evals=None) -> list[float] | None:
        if not all(seen in e.get("test_seen", {}) for e in self.entries):
            return None
        return [100 * e["test_seen"][seen][metric] for e in self.entries]

    def seen_per_user(self, seen: str, metric: str, evals=None) -> np.ndarray | None:
        if not all(seen in e.get("per_user_seen", {}) for e in self.entries):
            return None
        return np.mean([read_per_user(self.by_run[e["run_id"]].root / e["per_user_seen"][seen],
                                      self.by_run[e["run_id"]].record)[metric] for e in self.entries], axis=0)


@dataclass
class Point:
    name: str
    variant: Variant | Rescored
    registered: bool
    deltas: dict[tuple[str, str], Delta]    # (seen, metric) -> difference to the registered point
    rescored: str = ""                      # the re-scoring's name, for a re-scored point


def rescored_points(points: list[Point], evals: list[dict]) -> list[Point]:
    """Each point's re-scorings by its own study that every one of its seeds has, after the point, in
    the study's order (a run two studies share carries both studies' re-scorings)."""
    out = []
    for p in points:
        ids = {r.record.get("run_id") for r in p.variant.runs} - {None}
        study = p.variant.record.get("study")
        names: dict[str, list[dict]] = {}
        for e in evals:
            if e.get("rescore") and e["run_id"] in ids and e.get("study") == study:
                names.setdefault(e["rescore"], []).append(e)
        out.append(p)
        order = sorted(names, key=lambda n: (min(e.get("rescore_index", 0) for e in names[n]), n))
        for name, entries in ((n, names[n]) for n in order):
            if {e["run_id"] for e in entries} == ids:
                out.append(Point(f"{p.name}, {name}", Rescored(p.variant, entries), False, {}, name))
    return out


def point_name(params: dict, variant: Variant) -> str:
    return variant.record.get("point") or params_label(params) or "(defaults)"


def ordered(runs: list[Run], notes: list[str] | None = None) -> list[tuple[str, Variant, bool]]:
    """(name, variant, registered) per point, in the study's own order when its runs say it."""
    groups = study_variants(runs, notes)
    groups.sort(key=lambda g: (g[1].record.get("point_index", 1 << 30), sort_key(g[0])))
    return [(point_name(p, v), v, any(r.record.get("registered") for r in v.runs)) for p, v in groups]


def paired_halfwidth(diff: np.ndarray) -> float:
    from scipy import stats

    n = len(diff)
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")


def compare(runs: list[Run], evals: list[dict], test: str, metrics=("ndcg@10", "hr@10"),
            notes: list[str] | None = None) -> list[Point]:
    points = rescored_points([Point(n, v, reg, {}) for n, v, reg in ordered(runs, notes)], evals)
    reference = next((p for p in points if p.registered), None)
    if reference is None:
        return points

    def seeds(p: Point) -> frozenset:
        variant = p.variant.variant if isinstance(p.variant, Rescored) else p.variant
        return frozenset(r.record["seed"] for r in variant.runs)

    # a point is compared with the registered point's runs at its own seeds (the same seeds in both arms):
    # a point with seed 0 only is set against the registered seed 0, not against the mean of three seeds
    shared = {s: Variant([r for r in reference.variant.runs if r.record["seed"] in s])
              for s in {seeds(p) for p in points}}
    for seen in SEEN:
        for metric in metrics:
            bases = {s: v.seen_per_user(seen, metric, evals) if v.runs else None for s, v in shared.items()}
            raw, diffs = {}, {}
            for p in points:
                mine, base = p.variant.seen_per_user(seen, metric, evals), bases[seeds(p)]
                if p is reference or base is None or mine is None or len(mine) != len(base):
                    continue
                diffs[p.name] = 100 * (mine - base)
                raw[p.name] = paired_p(mine, base, test)
            for name, adjusted in holm(raw).items():
                d = diffs[name]
                target = next(p for p in points if p.name == name)
                target.deltas[(seen, metric)] = Delta(float(d.mean()), paired_halfwidth(d), adjusted)
    return points


def under_budget(runs: list[Run]) -> str:
    """A caption clause when runs ended at their epoch budget rather than by early stopping: the
    study then ran below the models' usual peak."""
    capped = [r for r in runs if r.record.get("epochs_run", 0) >= r.record.get("train", {}).get("epochs", 1 << 30)]
    if not capped:
        return ""
    budgets = sorted({r.record["train"]["epochs"] for r in capped})
    return (f" Budget below the usual peak: {len(capped)} of {len(runs)} runs ended at their epoch budget "
            f"({', '.join(map(str, budgets))} epochs) instead of by early stopping, so these figures are not "
            "each setting's best.")
