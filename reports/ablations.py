"""A study's points against its registered point: per-user paired differences, Holm across the points.

Each point of a `bench ablate` study is a Variant (its seeds); the point whose runs are tagged
`registered` (it resolves to the model's registered settings) is the reference. For each other
point and each seen-item setting, the per-user test NDCG@10 (or HR@10), averaged over seeds, is
compared with the reference's: the mean difference in percentage points, the half-width of its 95 %
t-interval over users, and a paired test's p-value, Holm-adjusted over the study's points. Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reports.collect import Run, Variant
from reports.settings import params_label, sort_key, study_variants
from reports.stats import CONFIDENCE, holm, paired_p

SEEN = ("removed", "kept")


@dataclass
class Delta:
    points: float           # mean per-user difference to the registered point, percentage points
    halfwidth: float        # of its 95 % t-interval over users
    p: float                # paired test, Holm-adjusted over the study's points


@dataclass
class Point:
    name: str
    variant: Variant
    registered: bool
    deltas: dict[tuple[str, str], Delta]    # (seen, metric) -> difference to the registered point


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
    points = [Point(n, v, reg, {}) for n, v, reg in ordered(runs, notes)]
    reference = next((p for p in points if p.registered), None)
    if reference is None:
        return points
    for seen in SEEN:
        for metric in metrics:
            base = reference.variant.seen_per_user(seen, metric, evals)
            raw, diffs = {}, {}
            for p in points:
                mine = p.variant.seen_per_user(seen, metric, evals)
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
