"""Mean +- std over seeds of result records, as rows for a terminal table."""
from __future__ import annotations

import statistics
from collections import defaultdict

from bench import registry
from bench.runs.fields import differences, protocol_note, variant
from bench.runs.results import BUDGET_HIT, latest_by_run, mean_std, seen_test, still_improving

COLUMNS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr")
SEEN_COLUMNS = tuple((seen, m) for seen in ("kept", "removed") for m in ("hr@10", "ndcg@10"))


def main_runs(records: list[dict], studies: bool = False) -> tuple[list[dict], int]:
    """The latest record of each run, and how many study runs were left out.

    A study (`bench ablate`, `bench tune`) tags its records with "study" (RunRequest.tags). A run
    whose records all carry it is a study run, left out unless `studies`; a run `bench run` trained
    (or found) that a study reused has an untagged record too, and stays as that record."""
    latest = latest_by_run(records)
    if studies:
        return list(latest.values()), 0
    kept = latest_by_run([r for r in records if not r.get("study")])
    return list(kept.values()), len(latest.keys() - kept.keys())


def label_key(label: str) -> list[tuple]:
    """'hidden=64, lr=0.001' ordered by each value, numbers as numbers (64 before 128)."""
    key = []
    for part in label.split(", ") if label else []:
        field, _, value = part.partition("=")
        try:
            key.append((field, 0, float(value), ""))
        except ValueError:
            key.append((field, 1, 0.0, value))
    return key


def summarize(records: list[dict]) -> list[dict]:
    """One row per (dataset, model, config): metrics in percent, mean +- std over seeds.
    A model run with several configs gets one row each, labelled by what differs. Rows are
    sorted by dataset, then model in registry.DISPLAY order, then config; "display" is the
    model's display name with that label."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["dataset"], r["model"], variant(r))].append(r)
    heads: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (dataset, model, _), recs in groups.items():
        heads[(dataset, model)].append(recs[0])
    keyed = []
    for (dataset, model, _), recs in groups.items():
        peers = heads[(dataset, model)]
        label = differences(recs[0], peers) if len(peers) > 1 else ""
        shown = registry.display(model)
        row = {"dataset": dataset, "model": f"{model} ({label})" if label else model, "seeds": len(recs),
               "display": f"{shown} ({label})" if label else shown,
               "epochs": statistics.fmean(r["best_epoch"] for r in recs),
               "train_s": statistics.fmean(r["train_seconds"] for r in recs)}
        for col in COLUMNS:
            row[col] = mean_std([100 * r["test"][col] for r in recs])
        for seen, col in SEEN_COLUMNS:
            found = [seen_test(r, seen) for r in recs]
            row[f"{col} {seen}"] = None if None in found else mean_std([100 * t[col] for t in found])
        row["dataset"] += protocol_note(recs[0]["protocol"])         # splits and orders never share a row
        if recs[0]["protocol"].get("exclude_seen"):
            row["dataset"] += " (selected seen removed)"
        row["valid ndcg@10"] = mean_std([100 * r["valid"]["ndcg@10"] for r in recs])
        row["diverged"] = [f"seed {r['seed']}: {r['diverged']}" for r in recs if r.get("diverged")]
        if row["diverged"]:
            row["model"] += " (!)"
        row["budget_hit"] = [r["seed"] for r in recs if still_improving(r)]
        keyed.append(((row["dataset"], registry.rank(model), model, label_key(label)), row))
    return [row for _, row in sorted(keyed, key=lambda kr: kr[0])]


def cell(stat: tuple[float, float | None] | None) -> str:
    """'12.34±0.56' over seeds; one seed has no spread to show, so its value stands alone."""
    if stat is None:
        return "-"
    return f"{stat[0]:.2f}" if stat[1] is None else f"{stat[0]:.2f}±{stat[1]:.2f}"


def seed_note(rows: list[dict]) -> str:
    """A line naming the rows with fewer than 2 seeds (no spread over seeds to show), or ""."""
    single = [f"{r['display']} {r['dataset']}" for r in rows if r["seeds"] < 2]
    if not single:
        return ""
    if len(single) == len(rows):
        return "n = 1 seed: no spread over seeds (values alone, no ±); run more seeds to compare (--seeds 3)"
    return f"n = 1 seed for {'; '.join(single)}: no spread over seeds (values alone, no ±)"


def render(rows: list[dict], title: str = "test metrics (%), mean +- std over seeds"):
    from rich.table import Table

    caption = ("kept / removed: a user's seen items kept among the candidates or "
               "removed, from the same checkpoints; selection on validation NDCG@10")
    if note := seed_note(rows):
        caption += f"\n{note}"
    for row in rows:
        caption += "".join(f"\n(!) {row['display']} {row['dataset']}, {why}" for why in row.get("diverged", []))
        if row.get("budget_hit"):
            seeds = ", ".join(map(str, row["budget_hit"]))
            caption += (f"\n(+) {row['display']} {row['dataset']}, seed{'s' * (len(row['budget_hit']) > 1)} {seeds}: "
                        f"{BUDGET_HIT} (best epoch = last validation; a longer budget may score higher)")
    table = Table(title=title, caption=caption)
    seen_cols = [f"{m} {seen}" for seen, m in SEEN_COLUMNS]
    for name in ("dataset", "model", "seeds", *seen_cols, "mrr", "valid ndcg@10", "best epoch", "train s"):
        table.add_column(name, justify="left" if name in ("dataset", "model") else "right")
    for row in rows:
        cells = [cell(row[c]) for c in (*seen_cols, "mrr", "valid ndcg@10")]
        shown = row["display"] + (" (!)" if row.get("diverged") else "") + (" (+)" if row.get("budget_hit") else "")
        table.add_row(row["dataset"], shown, str(row["seeds"]), *cells, f"{row['epochs']:.0f}", f"{row['train_s']:.1f}")
    return table
