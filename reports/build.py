"""`bench report`: every table, figure, GIF and the PDF from the result files under some folders."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.atomic import atomic_write, atomic_write_text, sweep
from bench.errors import BenchError
from bench.runs import results as store
from bench.runs.locks import holding
from bench.reports import dots, figures, gifs, render, tables
from bench.reports.collect import Collection, collect, display, model_order, table_label, trajectory_file
from bench.reports.settings import study_variants
from bench.reports.stats import TESTS

FORMATS = ("pdf", "md", "tex", "csv", "png", "gif")
GIF_TEXT = {
    "growth": "Validation HR@10 and NDCG@10 of every model on {d}, growing one evaluation per frame.",
    "ablation": "Study '{s}' ({m} on {d}): validation NDCG@10 against {x}, one frame per evaluated epoch.",
    "reverse": "Reverse diffusion of {m} on {d}: the rank of each recorded test user's target item (1 = top, log "
               "scale) when the whole catalogue is scored by dot product with the state x_t, at each reverse "
               "step from x_T (pure noise, step 0) to the final estimate that the model scores; thin lines: one "
               "test user each, black: their median, dotted: the top-10 cut.",
}


def parse_formats(spec: str) -> set[str]:
    chosen = {s.strip() for s in spec.split(",") if s.strip()}
    unknown = chosen - set(FORMATS)
    if unknown or not chosen:
        raise BenchError(f"unknown --format '{', '.join(sorted(unknown)) or spec}'; choose from: {', '.join(FORMATS)}")
    return chosen


@dataclass
class Report:
    out: Path
    formats: set[str]
    written: list[tuple[Path, str]] = field(default_factory=list)   # (file, one-line description)

    def write(self, rel: str, text: str, what: str) -> None:
        path = self.out / rel
        atomic_write_text(path, text)
        self.written.append((path, what))


def title_lines(coll: Collection, dirs: list[Path], reference: str, test: str) -> list[str]:
    recs = [r.record for r in coll.runs]

    def distinct(get) -> str:
        return ", ".join(sorted({str(get(r)) for r in recs}))

    lines = [f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}", f"runs: {', '.join(map(str, dirs))} ({plural(len(recs), 'run')})",
             "", "protocol:"]
    for key in sorted({k for r in recs for k in r["protocol"]}):
        lines.append(f"  {key}: {distinct(lambda r: r['protocol'].get(key))}")
    lines.append("  model selection: validation NDCG@10; test evaluated once at the best validation checkpoint")
    lines += ["", "datasets:"]
    for d in coll.datasets():
        r = next(r for r in recs if table_label(r) == d)
        lines.append(f"  {d}: {r['n_users']:,} users, {r['n_items']:,} items, "
                     f"models {', '.join(display(m) for m in coll.chosen(d))}")
    lines += ["", "environment:",
              f"  device: {distinct(lambda r: r['device'])}; threads: {distinct(lambda r: r['threads'])}"]
    for key in sorted({k for r in recs for k in r.get("versions", {})}):
        lines.append(f"  {key}: {distinct(lambda r: r.get('versions', {}).get(key))}")
    lines += [f"  git revision: {distinct(lambda r: r.get('git_revision'))}"]
    again = [r for r in recs if "rescored_by" in r]
    if again:
        lines.append(f"  re-scored (--rescored): {len(again)} of {len(recs)} runs, by "
                     f"{', '.join(sorted({str(r['rescored_by']) for r in again}))}")
    models = {r.model for r in coll.runs}
    against = (f"{display(reference)} against the other models; {TESTS[test]} over per-user test values, "
               "Holm-corrected" if reference in models and len(models) > 1 else
               f"none ({'no runs of ' + display(reference) if reference not in models else 'one model'}; "
               "--baseline names the model the others are compared with)")
    lines += ["", f"comparison: {against}; per model the configuration with the best validation NDCG@10 is shown"]
    return lines


def budget_notes(coll: Collection) -> list[str]:
    """A note per dataset and model whose runs stopped at their epoch budget still improving."""
    hit: dict[tuple[str, str], list[dict]] = {}
    for r in coll.runs:
        if store.still_improving(r.record):
            hit.setdefault((table_label(r.record), r.model), []).append(r.record)
    notes = []
    for (d, m), recs in sorted(hit.items()):
        seeds = ", ".join(str(r["seed"]) for r in recs)
        budgets = ", ".join(sorted({str(r["train"]["epochs"]) for r in recs}))
        notes.append(f"{d}, {display(m)}: {store.BUDGET_HIT} ({plural(len(recs), 'run')}, seeds {seeds}: the best "
                     f"epoch is the last validation of a {budgets}-epoch budget; a longer budget may score higher).")
    return notes


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def make_tables(coll: Collection, reference: str, test: str) -> list[tables.Table]:
    out = []
    coll.notes += budget_notes(coll)
    for d in coll.datasets():
        out += [tables.comparison(coll, d, reference, test), tables.protocols(coll, d, test)]
    for (study, d, m), runs in sorted(coll.studies().items()):
        out.append(tables.ablation(study, d, m, runs, coll.evals, test))
    if not coll.studies():
        coll.notes.append("No study runs (bench ablate / bench tune) found: no ablation tables or curves.")
    again = tables.reevaluations(coll)
    if again:
        out.append(again)
    return out


def make_figures(coll: Collection) -> list[figures.Figure]:
    out = []
    models = model_order({r.model for r in coll.runs})
    for d in coll.datasets():
        chosen = coll.chosen(d)
        out.append(dots.forest(d, chosen, models))
        delta = dots.deltas(d, chosen, models)
        if delta is None:
            coll.notes.append(f"{d}: no {display(tables.ANCHOR)} runs, or nothing to compare with: no delta plot.")
        else:
            out.append(delta)
        out.append(figures.curves(d, chosen))
    for (study, d, m), runs in sorted(coll.studies().items()):
        fig = figures.ablation(study, d, m, runs)
        if fig is None:
            coll.notes.append(f"Study '{study}' ({m}, {d}) is a search over several parameters: "
                              "no ablation curve; see its table and Optuna plots.")
        else:
            out.append(fig)
    for journal in coll.journals:
        out += figures.optuna_figures(journal, coll.notes)
    if not coll.journals:
        coll.notes.append("No Optuna journal file found: no optimization history or importance plots.")
    out += [dots.efficiency(coll, kind) for kind in dots.COSTS]
    return out


def make_gifs(coll: Collection, folder: Path) -> list[tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for d in coll.datasets():
        chosen = coll.chosen(d)
        path = gifs.growth(d, chosen, folder / f"growth_{tables.slug(d)}.gif")
        if path:
            out.append((path, GIF_TEXT["growth"].format(d=d)))
        else:
            coll.notes.append(f"{d}: no model was evaluated more than once, no validation-growth GIF.")
        out += reverse_gifs(coll, d, chosen, folder)
    if not any(p.name.startswith("reverse_diffusion") for p, _ in out):
        coll.notes.append("No trajectory.npz in the chosen runs: no reverse-diffusion GIF.")
    for (study, d, m), runs in sorted(coll.studies().items()):
        x_key, _ = figures.sweep_axis(study_variants(runs))
        path = gifs.ablation(study, d, m, runs, folder / f"ablation_{tables.slug(study)}_{tables.slug(d)}_{m}.gif")
        if path:
            out.append((path, GIF_TEXT["ablation"].format(s=study, m=display(m), d=d, x=x_key)))
    if not any(p.name.startswith("ablation") for p, _ in out):
        coll.notes.append("No study sweeping one numeric value over several evaluations: no ablation GIF.")
    return out


def reverse_gifs(coll: Collection, dataset: str, chosen: dict, folder: Path) -> list[tuple[Path, str]]:
    """One reverse-diffusion GIF per chosen model whose runs recorded a trajectory.npz."""
    out = []
    for m, v in chosen.items():
        npz = trajectory_file(v)
        if npz is None:
            continue
        try:
            traj = gifs.load_trajectory(npz)
        except (OSError, ValueError) as e:
            coll.notes.append(f"Skipped trajectory {npz}: {e}.")
            continue
        path = folder / f"reverse_diffusion_{tables.slug(dataset)}_{m}.gif"
        out.append((gifs.reverse_diffusion(traj, f"{display(m)}, {dataset}", path, figures.color(m)),
                    GIF_TEXT["reverse"].format(m=display(m), d=dataset)))
    return out


def build_report(dirs: list[Path], out: Path, formats: set[str], reference: str = "diffurecsys",
                 test: str = "ttest", strict_reference: bool = False, rescored: bool = False) -> Report:
    """Writes the requested outputs under `out`; returns what was written."""
    if test not in TESTS:
        raise BenchError(f"unknown --test '{test}'; choose from: {', '.join(TESTS)}")
    coll = collect(dirs, rescored)
    if strict_reference and reference not in {r.model for r in coll.runs}:
        raise BenchError(f"--baseline {reference}: no runs of it; models found: "
                         f"{', '.join(sorted({r.model for r in coll.runs}))}")
    report = Report(out, formats)
    out.mkdir(parents=True, exist_ok=True)
    with holding(out, "report"):    # every file is written whole (atomically); two reports into one folder take turns
        for folder in (out, out / "tables", out / "figures", out / "gifs"):
            sweep(folder, recursive=False)      # temporary files of a report killed mid-write
        write_files(report, coll, dirs, reference, test)
    return report


def write_files(report: Report, coll: Collection, dirs: list[Path], reference: str, test: str) -> None:
    out, formats = report.out, report.formats
    if formats & {"pdf", "png", "gif"}:
        figures.style()
    tabs = make_tables(coll, reference, test)
    for t in tabs:
        for fmt, fn in (("md", render.markdown), ("tex", render.latex), ("csv", render.csv_text)):
            if fmt in formats:
                report.write(f"tables/{t.key}.{fmt}", fn(t), f"{t.title} ({fmt})")
    need_figs = formats & {"pdf", "png"}
    figs = make_figures(coll) if need_figs else []
    animations = make_gifs(coll, out / "gifs") if "gif" in formats else []
    report.written += animations
    if "png" in formats:
        for f in figs:
            path = out / "figures" / f"{tables.slug(f.name)}.png"
            atomic_write(path, lambda file, fig=f.fig: fig.savefig(file, format="png"))
            report.written.append((path, f.caption))
    if "pdf" in formats:
        write_pdf(report, coll, dirs, reference, test, tabs, figs, animations)
    if "md" in formats:
        write_index(report, coll, tabs, figs, animations)
    if figs:
        import matplotlib.pyplot as plt

        for f in figs:
            plt.close(f.fig)


def write_pdf(report, coll, dirs, reference, test, tabs, figs, animations) -> None:
    path = report.out / "report.pdf"
    atomic_write(path, lambda file: pdf_pages(file, report, coll, dirs, reference, test, tabs, figs, animations))
    report.written.append((path, "the PDF report: title page, tables, figures, GIF still frames, notes"))


def pdf_pages(file, report, coll, dirs, reference, test, tabs, figs, animations) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    from bench.reports import pdf

    with PdfPages(file) as doc:
        pdf.text_page(doc, "bench report", title_lines(coll, dirs, reference, test))
        for t in tabs:
            pdf.table_page(doc, t)
        for f in figs:
            pdf.figure_page(doc, f)
        for gif, what in animations:
            pdf.still_page(doc, gif, what)
        if "gif" not in report.formats:
            coll.notes.append("GIFs not requested (--format): no still frames.")
        pdf.text_page(doc, "Notes", coll.notes or ["Nothing was skipped."])
        info = doc.infodict()
        info["Title"] = "bench report"


def write_index(report, coll, tabs, figs, animations) -> None:
    """report.md: every table in Markdown, then the figures and GIFs with their captions, then the notes."""
    parts = ["# bench report", ""]
    parts += [render.markdown(t) for t in tabs]
    if figs:
        parts += ["## Figures", ""] + [f"- `figures/{tables.slug(f.name)}.png`: {f.caption}" for f in figs] + [""]
    if animations:
        parts += ["## GIFs", ""] + [f"- `gifs/{p.name}`: {what}" for p, what in animations] + [""]
    parts += ["## Notes", ""] + [f"- {n}" for n in coll.notes or ["Nothing was skipped."]]
    report.write("report.md", "\n".join(parts) + "\n", "all tables, figure and GIF list, notes (Markdown)")
