"""The `bench report` command; heavy imports (matplotlib, optuna) stay inside it."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

DEFAULT_REFERENCE = "diffurecsys"


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        runs: Optional[List[Path]] = typer.Argument(None, help="Folders searched for results.jsonl (default: runs)."),
        out: Path = typer.Option(Path("reports_out"), "--out", help="Folder for the report files."),
        baseline: Optional[str] = typer.Option(
            None, "--baseline", help=f"Model compared against all others in the Improv. row and significance marks "
                                     f"(default {DEFAULT_REFERENCE})."),
        formats: str = typer.Option("pdf,md,tex,csv,png,gif", "--format",
                                    help="Comma list of pdf, md, tex, csv, png, gif."),
        test: str = typer.Option("ttest", "--test", help="Paired test over per-user values: ttest or wilcoxon."),
        rescored: bool = typer.Option(
            False, "--rescored", help="Use each run's latest `bench eval` with no change (a re-scoring by newer "
                                      "code) in place of its stored metrics and per-user values."),
    ):
        """Tables (Markdown, LaTeX, CSV), figures, GIFs and a PDF report from result files."""
        from rich.console import Console

        from reports.build import build_report, parse_formats

        from bench.cli.paths import output_dir

        output_dir(out)
        chosen = parse_formats(formats)
        done = build_report(runs or [Path("runs")], out, chosen, baseline or DEFAULT_REFERENCE, test,
                            strict_reference=baseline is not None, rescored=rescored)
        console = Console(width=200)
        for path, what in done.written:
            console.print(f"{path}: {what}", highlight=False, markup=False)
