"""Mean +- std over seeds of result records, as rows for a terminal table."""
from __future__ import annotations

import statistics
from collections import defaultdict

from bench.runs.fields import differences, variant
from bench.runs.results import mean_std, seen_test

COLUMNS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr")
SEEN_COLUMNS = tuple((seen, m) for seen in ("kept", "removed") for m in ("hr@10", "ndcg@10"))


def summarize(records: list[dict]) -> list[dict]:
    """One row per (dataset, model, config): metrics in percent, mean +- std over seeds.
    A model run with several configs gets one row each, labelled by what differs."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["dataset"], r["model"], variant(r))].append(r)
    heads: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (dataset, model, _), recs in groups.items():
        heads[(dataset, model)].append(recs[0])
    rows = []
    for (dataset, model, _), recs in groups.items():
        peers = heads[(dataset, model)]
        label = differences(recs[0], peers) if len(peers) > 1 else ""
        row = {"dataset": dataset, "model": f"{model} ({label})" if label else model, "seeds": len(recs),
               "epochs": statistics.fmean(r["best_epoch"] for r in recs),
               "train_s": statistics.fmean(r["train_seconds"] for r in recs)}
        for col in COLUMNS:
            row[col] = mean_std([100 * r["test"][col] for r in recs])
        for seen, col in SEEN_COLUMNS:
            found = [seen_test(r, seen) for r in recs]
            row[f"{col} {seen}"] = None if None in found else mean_std([100 * t[col] for t in found])
        if recs[0]["protocol"].get("exclude_seen"):
            row["dataset"] += " (selected seen removed)"
        row["valid ndcg@10"] = mean_std([100 * r["valid"]["ndcg@10"] for r in recs])
        row["diverged"] = [f"seed {r['seed']}: {r['diverged']}" for r in recs if r.get("diverged")]
        if row["diverged"]:
            row["model"] += " (!)"
        rows.append(row)
    return rows


def cell(stat: tuple[float, float | None] | None) -> str:
    """'12.34±0.56' over seeds; one seed has no spread to show, so its value stands alone."""
    if stat is None:
        return "-"
    return f"{stat[0]:.2f}" if stat[1] is None else f"{stat[0]:.2f}±{stat[1]:.2f}"


def render(rows: list[dict], title: str = "test metrics (%), mean +- std over seeds"):
    from rich.table import Table

    caption = ("kept / removed: a user's seen items kept among the candidates or "
               "removed, from the same checkpoints; selection on validation NDCG@10")
    for row in rows:
        caption += "".join(f"\n(!) {row['model'][:-4]} {row['dataset']}, {why}" for why in row.get("diverged", []))
    table = Table(title=title, caption=caption)
    seen_cols = [f"{m} {seen}" for seen, m in SEEN_COLUMNS]
    for name in ("dataset", "model", "seeds", *seen_cols, "mrr", "valid ndcg@10", "best epoch", "train s"):
        table.add_column(name, justify="left" if name in ("dataset", "model") else "right")
    for row in rows:
        cells = [cell(row[c]) for c in (*seen_cols, "mrr", "valid ndcg@10")]
        table.add_row(row["dataset"], row["model"], str(row["seeds"]), *cells,
                      f"{row['epochs']:.0f}", f"{row['train_s']:.1f}")
    return table
