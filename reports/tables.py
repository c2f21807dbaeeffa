"""Comparison and ablation tables as plain data; reports.render writes them as Markdown, LaTeX and CSV."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.runs import results as store
from bench.runs.fields import differences, protocol_note
from bench.reports import published, tuning
from bench.reports.collect import METRICS, SELECT_METRIC, Collection, Run, Variant, display, variant_key
from bench.reports.settings import params_label, sort_key, study_variants
from bench.reports.stats import ALPHA, TESTS, holm, paired_p

HEADERS = {"hr@5": "HR@5", "hr@10": "HR@10", "hr@20": "HR@20", "ndcg@5": "NDCG@5", "ndcg@10": "NDCG@10",
           "ndcg@20": "NDCG@20", "mrr": "MRR", "valid ndcg@10": "Val NDCG@10",
           "valid hr@10": "Val HR@10", "kept hr@10": "HR@10 kept", "kept ndcg@10": "NDCG@10 kept",
           "removed hr@10": "HR@10 removed", "removed ndcg@10": "NDCG@10 removed",
           "delta removed ndcg@10": "Δ NDCG@10 removed", "delta kept ndcg@10": "Δ NDCG@10 kept"}
DAGGER = "†"        # on a model's cell: the reference model differs from it significantly (Holm, p < ALPHA)
STAR = "*"          # on an Improv. cell: the reference beats the best other model significantly


@dataclass
class Cell:
    mean: float
    std: float | None = None        # None: a single value (no spread), e.g. an improvement
    rank: int | None = None         # 0 best in its column, 1 second best
    mark: str = ""
    p: float | None = None          # Holm-adjusted p-value behind the mark
    unit: str = ""                  # "%" for improvements, " pt" for differences (std: a 95 % half-width)

    def text(self) -> str:
        spread = f"±{self.std:.2f}" if self.std is not None else ""
        return f"{self.mean:+.2f}{spread}{self.unit}" if self.unit else f"{self.mean:.2f}{spread}"


@dataclass
class Row:
    labels: list[str]
    cells: list[Cell | None]


@dataclass
class Table:
    key: str                        # file name stem
    title: str
    caption: str
    labels: list[str]               # header of the label columns
    metrics: list[str]              # header keys of the value columns
    rows: list[Row]
    footer: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def headers(self) -> list[str]:
        return self.labels + [HEADERS.get(m, m) for m in self.metrics]


BEST_RULE = ("bold: best, beyond the seed spread (its mean − std above every other mean + std; a "
             "single-seed value counts as a point and is never marked); underlined: second, by the same rule "
             "over the rest")


def beats(top: Cell, other: Cell) -> bool:
    """`top` is above `other` beyond the spread over seeds: mean - std above the other's mean + std.
    A single seed (std None) has no spread: it never beats anything, and is beaten as a point."""
    return top.std is not None and top.mean - top.std > other.mean + (other.std or 0.0)


def rank_columns(rows: list[Row]) -> None:
    """Per column, rank 0 on the highest mean when it beats every other cell beyond the seed
    spread, then rank 1 on the next when it beats every cell below it; higher is better."""
    for j in range(len(rows[0].cells) if rows else 0):
        cells = sorted((r.cells[j] for r in rows if r.cells[j] is not None and np.isfinite(r.cells[j].mean)),
                       key=lambda c: -c.mean)
        if len(cells) < 2 or not all(beats(cells[0], c) for c in cells[1:]):
            continue
        cells[0].rank = 0
        if len(cells) > 2 and all(beats(cells[1], c) for c in cells[2:]):
            cells[1].rank = 1


def spread_notes(rows: list[Row], seeds_at: int = 1) -> list[str]:
    """A note naming the rows run with a single seed (their Seeds label at `seeds_at`)."""
    single = [r.labels[0] for r in rows if int(r.labels[seeds_at]) < 2]
    if not single:
        return []
    if len(single) == len(rows):
        return ["n = 1 seed: no spread over seeds, so nothing is marked best; run more seeds to compare."]
    return [f"n = 1 seed for {', '.join(single)}: no spread; never marked best, and compared with the others "
            "as single values."]


def slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text).strip("_")


def comparison(coll: Collection, dataset: str, reference: str, test: str) -> Table:
    """Models x test metrics (percent, mean +- std over seeds) with significance marks and an Improv. row."""
    chosen = coll.chosen(dataset)
    rows = [Row([display(m), str(v.seeds), epochs_label(v)], [Cell(*v.stat("test", k)) for k in METRICS])
            for m, v in chosen.items()]
    rank_columns(rows)
    table = Table(f"compare_{slug(dataset)}", f"{dataset}: test metrics (%)",
                  f"Test metrics (%) on {dataset}, mean ± std over seeds; Epochs: best validation epoch / "
                  f"epochs trained (means over seeds); {BEST_RULE}.",
                  ["Model", "Seeds", "Epochs"], list(METRICS), rows, notes=spread_notes(rows))
    for m, v in chosen.items():
        n = sum(1 for w in coll.variants() if w.model == m and w.record["dataset"] == v.record["dataset"])
        if n > 1:
            table.notes.append(f"{display(m)}: {n} configurations found; kept the best on validation "
                               f"NDCG@10 ({v.stat('valid', SELECT_METRIC)[0]:.2f}), {config_diff(v, coll)}.")
    others = [m for m in chosen if m != reference]
    if reference not in chosen or not others:
        table.notes.append(f"No Improv. row or significance marks: {display(reference)} "
                           f"{'is not among the runs' if reference not in chosen else 'has nothing to compare with'}.")
        return table
    mark_significance(table, chosen, reference, others, test)
    return table


SEEN_COLUMNS = [(seen, m) for seen in published.SEEN for m in ("hr@10", "ndcg@10")]
DIFFUSION = ("diffurecsys", "diffurec")
ANCHOR = "sasrec"           # the diffusion models are tested against it in the verdict


def protocols(coll: Collection, dataset: str, test: str) -> Table:
    """Test HR@10 / NDCG@10 with seen items kept and removed, from the same checkpoints, per chosen
    model; published rows of the same protocol beneath, with the measured row's relative difference;
    notes: each diffusion model against SASRec under both settings (paired test, Holm)."""
    chosen = coll.chosen(dataset)
    rows = []
    for m, v in chosen.items():
        tried = len({variant_key(r.record) for r in coll.runs
                     if r.model == m and r.record["dataset"] == v.record["dataset"]})
        cells = [Cell(*v.stat("valid", SELECT_METRIC))]
        for seen, metric in SEEN_COLUMNS:
            vals = v.seen_values(seen, metric, coll.evals)
            cells.append(None if vals is None else Cell(*store.mean_std(vals)))
        chosen_by = tuning.matching(v.record)
        rows.append(Row([display(m), str(v.seeds), str(tried), chosen_by.label(v.record["dataset"]) if chosen_by
                         else "-"], cells))
    rank_columns(rows)
    table = Table(f"protocols_{slug(dataset)}", f"{dataset}: test with seen items kept and removed (%)",
                  f"Test HR@10 / NDCG@10 (%) on {dataset}, mean ± std over seeds, with a user's seen items "
                  "kept among the candidates (the DiffuRec paper's protocol) and removed (the protocol of "
                  "most later papers), both from the same best-validation checkpoint. Selection on validation "
                  f"NDCG@10 ({'seen removed' if 'excluded' in dataset else 'seen kept'}). Configs: "
                  "configurations of the model run on this dataset, the best on validation shown; Tuned: "
                  "configurations tried on validation to choose the registered settings the row runs at "
                  "(reports/tuning.csv; '-': the row's settings were not chosen that way). Rows "
                  "marked 'published' are reported figures under the same protocol; Δ: measured against "
                  f"published, relative; {BEST_RULE}.",
                  ["Model", "Seeds", "Configs", "Tuned"], ["valid ndcg@10"] + [f"{s} {m}" for s, m in SEEN_COLUMNS], rows,
                  notes=spread_notes(rows))
    add_published(table, chosen)
    for m, v in chosen.items():
        if (t := tuning.matching(v.record)) is not None:
            table.notes.append(f"{display(m)}: settings chosen from {t.configs} configuration"
                               f"{'s' * (t.configs != 1)} on {t.tuned_on} validation ({t.source}).")
    table.notes += verdict(coll, chosen, test)
    return table


def add_published(table: Table, chosen: dict[str, Variant]) -> None:
    if not chosen:
        return
    rec = next(iter(chosen.values())).record
    name, n_items, max_len = rec["dataset"], rec["n_items"], rec["protocol"]["max_len"]
    if protocol_note(rec["protocol"]):      # published rows are leave-one-out on chronological histories
        return
    for seen in published.SEEN:
        for p in published.matching(name, n_items, max_len, seen):
            cells: list[Cell | None] = [None] * (1 + len(SEEN_COLUMNS))
            delta: list[Cell | None] = [None] * (1 + len(SEEN_COLUMNS))
            for j, (s, metric) in enumerate(SEEN_COLUMNS, start=1):
                if s != seen:
                    continue
                cells[j] = Cell(p.metric(metric))
                mine = table.rows[list(chosen).index(p.model)].cells[j] if p.model in chosen else None
                if mine is not None and p.metric(metric):
                    delta[j] = Cell(100 * (mine.mean - p.metric(metric)) / p.metric(metric), unit="%")
            table.footer.append(Row([f"published: {p.label}", str(p.seeds), "", ""], cells))
            if any(delta):
                table.footer.append(Row([f"Δ {display(p.model)} measured vs published", "", "", ""], delta))
            table.notes.append(f"published: {p.label}, seen {seen}, max_len {max_len}: {p.source}")


def verdict(coll: Collection, chosen: dict[str, Variant], test: str) -> list[str]:
    """One line per seen-item setting: each diffusion model's NDCG@10 and HR@10 against SASRec."""
    if ANCHOR not in chosen:
        return []
    models = [m for m in DIFFUSION if m in chosen]
    lines = []
    for seen in published.SEEN:
        for metric in ("ndcg@10", "hr@10"):
            base = chosen[ANCHOR].seen_per_user(seen, metric, coll.evals)
            raw, gaps = {}, {}
            for m in models:
                mine = chosen[m].seen_per_user(seen, metric, coll.evals)
                if base is None or mine is None or len(mine) != len(base):
                    continue
                raw[m] = paired_p(mine, base, test)
                gaps[m] = 100 * (mine.mean() - base.mean()) / base.mean() if base.mean() else float("nan")
            adjusted = holm(raw)
            for m in raw:
                word = "above" if gaps[m] > 0 else "below"
                sig = "significant" if adjusted[m] < ALPHA else "not significant"
                lines.append(f"Seen {seen}, {metric.upper()}: {display(m)} is {abs(gaps[m]):.1f} % {word} SASRec "
                             f"(p = {adjusted[m]:.2g}, {TESTS[test]}, Holm over {len(raw)} diffusion "
                             f"model{'s' * (len(raw) > 1)}; {sig}).")
    return lines


def epochs_label(v: Variant) -> str:
    if not all("best_epoch" in r.record and "epochs_run" in r.record for r in v.runs):
        return "-"
    return f"{v.mean_of('best_epoch'):.0f}/{v.mean_of('epochs_run'):.0f}"


def mark_significance(table: Table, chosen: dict[str, Variant], reference: str, others: list[str], test: str):
    ref = chosen[reference]
    users = {len(ref.runs[0].per_user[METRICS[0]])} | {len(chosen[m].runs[0].per_user[METRICS[0]]) for m in others}
    improv = []
    for j, metric in enumerate(METRICS):
        adjusted = {}
        if len(users) == 1:
            raw = {m: paired_p(ref.per_user(metric), chosen[m].per_user(metric), test) for m in others}
            adjusted = holm(raw)
        for row, m in zip(table.rows, chosen):
            if m in adjusted:
                row.cells[j].p = adjusted[m]
                row.cells[j].mark = DAGGER if adjusted[m] < ALPHA else ""
        best = max(others, key=lambda m: chosen[m].stat("test", metric)[0])
        base, mine = chosen[best].stat("test", metric)[0], ref.stat("test", metric)[0]
        pct = 100 * (mine - base) / base if base else float("nan")
        p = adjusted.get(best)
        improv.append(Cell(pct, unit="%", p=p, mark=STAR if p is not None and p < ALPHA and pct > 0 else ""))
    table.footer.append(Row(["Improv.", "", ""], improv))
    name = TESTS[test]
    table.caption += (f" Improv.: {display(reference)} against the best other model of each column, in percent."
                      f" {DAGGER}: {display(reference)} differs from that model ({name} over per-user values, "
                      f"Holm-corrected across {len(others)} model{'s' * (len(others) > 1)}, p < {ALPHA}); "
                      f"{STAR}: significant improvement.")
    if len(users) > 1:
        table.notes.append("No significance marks: the runs were evaluated on different user sets.")


def config_diff(v: Variant, coll: Collection) -> str:
    """The fields of a chosen variant that differ among its model's variants on the same dataset."""
    peers = [w.record for w in coll.variants() if w.model == v.model and w.record["dataset"] == v.record["dataset"]]
    return differences(v.record, peers) or "same config"


MAX_ABLATION_ROWS = 15


def ablation(study: str, dataset: str, model: str, runs: list[Run], evals: list[dict] | None = None,
             test: str = "ttest") -> Table:
    """Study point -> validation NDCG@10 and test HR@10 / NDCG@10 with seen items removed and kept
    (mean ± std over seeds), and each point's difference to the registered point (reports.ablations)."""
    from bench.reports.ablations import compare, under_budget

    notes: list[str] = []
    points = compare(runs, evals or [], test, notes=notes)
    trained = [p for p in points if not p.rescored]
    if len(trained) > MAX_ABLATION_ROWS:       # the best on validation, each with its re-scorings
        kept = sorted(trained, key=lambda p: -p.variant.stat("valid", SELECT_METRIC)[0])[:MAX_ABLATION_ROWS]
        notes.append(f"{len(trained)} settings; the {MAX_ABLATION_ROWS} best on validation NDCG@10 are shown.")
        ids = {id(p.variant) for p in kept}
        points = [p for p in points if id(p.variant.variant if p.rescored else p.variant) in ids]
    seen_cols = [(seen, m) for seen in ("removed", "kept") for m in ("hr@10", "ndcg@10")]
    deltas = [("removed", "ndcg@10"), ("kept", "ndcg@10")]
    metrics = ["valid ndcg@10"] + [f"{s} {m}" for s, m in seen_cols] + [f"delta {s} {m}" for s, m in deltas]
    rows = []
    for p in points:
        v = p.variant
        seen_cells = []
        for seen, m in seen_cols:
            values = v.seen_values(seen, m, evals or [])
            seen_cells.append(None if values is None else Cell(*store.mean_std(values)))
        delta_cells = [None if (s, m) not in p.deltas else
                       Cell(p.deltas[(s, m)].points, p.deltas[(s, m)].halfwidth, unit=" pt", p=p.deltas[(s, m)].p,
                            mark=DAGGER if p.deltas[(s, m)].p < ALPHA else "") for s, m in deltas]
        valid = None if p.rescored else Cell(*v.stat("valid", SELECT_METRIC))
        rows.append(Row([p.name + (" (registered)" if p.registered and "registered" not in p.name else ""), str(v.seeds),
                         "re-scored" if p.rescored else epochs_label(v)], [valid] + seen_cells + delta_cells))
    rank_columns(rows)
    for row in rows:                            # differences are not ranked
        for c in row.cells[-len(deltas):]:
            if c is not None:
                c.rank = None
    reference = next((p.name for p in points if p.registered), None)
    notes += answers(points, test)
    about = (f" Δ: the point's per-user test NDCG@10 minus the registered point's ({reference}), averaged over "
             f"seeds, in percentage points ± the half-width of its 95 % interval over users; {DAGGER}: p < {ALPHA}, "
             f"{TESTS[test]}, Holm-adjusted over the study's {len(points) - 1} other points."
             if reference else " No point of this study is the registered setting: no differences.")
    return Table(f"ablation_{slug(study)}_{slug(dataset)}_{slug(model)}",
                 f"study {study}: {display(model)} on {dataset}",
                 f"Study '{study}' of {display(model)} on {dataset}: validation NDCG@10 and test HR@10 / NDCG@10 "
                 f"with seen items removed and kept (%), mean ± std over seeds, from the same checkpoints; epochs: "
                 f"best / run; {BEST_RULE}." + about + (
                     " A point \"P, name\": P's checkpoints scored again on test with an evaluation-time change "
                     "(no training; validation is P's)." if any(p.rescored for p in points) else "")
                 + under_budget(runs),
                 ["Point", "Seeds", "Epochs"], metrics, rows, notes=notes + spread_notes(rows))


def answers(points, test: str) -> list[str]:
    """One line per point against the registered point: test NDCG@10 and HR@10, seen items removed and kept."""
    reference = next((p.name for p in points if p.registered), None)
    lines = []
    for p in points:
        parts = []
        for seen in ("removed", "kept"):
            for metric in ("ndcg@10", "hr@10"):
                d = p.deltas.get((seen, metric))
                if d is not None:
                    parts.append(f"{HEADERS[metric]} {d.points:+.2f} ± {d.halfwidth:.2f} pt seen {seen} (p = {d.p:.2g})")
        if parts:
            lines.append(f"{p.name} against {reference}: " + "; ".join(parts)
                         + f" ({TESTS[test]}, Holm over the study's points; ± 95 % interval over users).")
    return lines


def reevaluations(coll: Collection) -> Table | None:
    """`bench eval` results: each re-scored run as trained, then once per evaluation-time change."""
    if not coll.evals:
        return None
    columns = [("valid", "hr@10"), ("valid", "ndcg@10"), ("test", "hr@10"), ("test", "ndcg@10")]
    metrics = [f"valid {m}" if split == "valid" else m for split, m in columns]

    def cells(source: dict) -> list[Cell | None]:
        return [Cell(100 * source[split][m]) if split in source else None for split, m in columns]

    rows, seen = [], set()
    for e in coll.evals:
        head = (e["dataset"], e["model"], e["seed"], e["run_id"])
        if head not in seen:
            seen.add(head)
            rows.append(Row([e["dataset"], display(e["model"]), str(e["seed"]), "as trained"], cells(e["stored"])))
        change = ", ".join(f"{k}={v}" for k, v in e["changes"].items()) or "nothing (reproduction)"
        rows.append(Row([e["dataset"], display(e["model"]), str(e["seed"]), change], cells(e)))
    return Table("reevaluations", "re-evaluated runs",
                 "Finished runs scored again from their best checkpoint with evaluation-time settings changed "
                 "(bench eval): validation and test metrics (%), one seed per row; an empty cell was not evaluated.",
                 ["Dataset", "Model", "Seed", "Evaluation"], metrics, rows)
