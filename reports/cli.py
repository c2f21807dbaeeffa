"""The `bench report` command; heavy imports (matplotlib, optuna) stay inside it."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

DEFAULT_REFERENCE = "diffurecsys"


def report_command(runs, out, baseline, formats, test, rescored):
    """`bench report`: tables (Markdown, LaTeX, CSV), figures, GIFs and a PDF report from result files."""
    from rich.console import Console

    from bench.reports.build import build_report, parse_formats

    from bench.cli.paths import output_dir

    output_dir(out)
    chosen = parse_formats(formats)
    done = build_report(runs or [Path("runs")], out, chosen, baseline or DEFAULT_REFERENCE, test,
                        strict_reference=baseline is not None, rescored=rescored)
    console = Console(width=200)
    for path, what in done.written:
        console.print(f"{path}: {what}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        runs: Annotated[Optional[List[Path]], typer.Argument(
            help="Folders searched for results.jsonl (default: runs).")] = None,
        out: Annotated[Path, typer.Option("--out", help="Folder for the report files.")] = Path("reports_out"),
        baseline: Annotated[Optional[str], typer.Option(
            "--baseline",
            help=f"The model compared against the others (Improv. row, marks; default {DEFAULT_REFERENCE}).")] = None,
        formats: Annotated[str, typer.Option(
            "--format", help="Comma list of pdf, md, tex, csv, png, gif.")] = "pdf,md,tex,csv,png,gif",
        test: Annotated[str, typer.Option(
            "--test", help="Paired test over per-user values: ttest or wilcoxon.")] = "ttest",
        rescored: Annotated[bool, typer.Option(
            "--rescored",
            help="Take each run's metrics from its latest no-change `bench eval` (newer code).")] = False,
    ):
        """Tables (Markdown, LaTeX, CSV), figures, GIFs and a PDF report from result files."""
        report_command(runs=runs, out=out, baseline=baseline, formats=formats, test=test, rescored=rescored)
