"""Pages of the PDF report: title, tables, figures with captions, GIF still frames."""
from __future__ import annotations

import textwrap
from pathlib import Path

from reports.figures import Figure
from reports.gifs import still
from reports.tables import Table

PAGE = (11.69, 8.27)            # A4 landscape, inches
CAPTION_WIDTH = 150


def text_page(pdf, title: str, lines: list[str]) -> None:
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=PAGE)
    fig.text(0.06, 0.92, title, fontsize=18, weight="bold")
    wrapped = [w for line in lines for w in (textwrap.wrap(line, 130, subsequent_indent="    ") or [""])]
    fig.text(0.06, 0.86, "\n".join(wrapped[:48]), fontsize=9, va="top", family="DejaVu Sans Mono")
    pdf.savefig(fig)
    plt.close(fig)
    if len(wrapped) > 48:
        text_page(pdf, title + " (continued)", wrapped[48:])


def caption(fig, text: str) -> None:
    fig.text(0.5, 0.015, "\n".join(textwrap.wrap(text, CAPTION_WIDTH)), ha="center", va="bottom", fontsize=8,
             style="italic")


def table_page(pdf, table: Table) -> None:
    """The table drawn with matplotlib: best cell bold, second underlined, marks kept."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig = plt.figure(figsize=PAGE)
    fig.text(0.5, 0.93, table.title, ha="center", fontsize=14, weight="bold")
    ax = fig.add_axes((0.03, 0.25, 0.94, 0.62))
    ax.axis("off")
    rows = table.rows + table.footer
    cells = [r.labels + [(c.text() + c.mark) if c else "" for c in r.cells] for r in rows]
    drawn = ax.table(cellText=cells, colLabels=table.headers(), loc="upper center", cellLoc="center")
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(8 if len(table.headers()) > 8 else 9)
    drawn.auto_set_column_width(list(range(len(table.headers()))))
    drawn.scale(1, 1.5)
    for j in range(len(table.headers())):
        drawn[0, j].get_text().set_weight("bold")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for i, row in enumerate(rows, start=1):
        for j, c in enumerate(row.cells, start=len(row.labels)):
            if c is None or c.rank is None:
                continue
            text = drawn[i, j].get_text()
            if c.rank == 0:
                text.set_weight("bold")
            else:                                  # underline: a line under the text's extent
                box = text.get_window_extent(renderer).transformed(fig.transFigure.inverted())
                fig.add_artist(Line2D([box.x0, box.x1], [box.y0 - 0.002] * 2, lw=0.7, color="k"))
    notes = [table.caption] + table.notes
    fig.text(0.05, 0.2, "\n".join(w for n in notes for w in textwrap.wrap(n, CAPTION_WIDTH)), fontsize=8, va="top")
    pdf.savefig(fig)
    plt.close(fig)


def figure_page(pdf, figure: Figure) -> None:
    """The figure as drawn for its PNG, with room at the bottom for its one-line caption."""
    fig = figure.fig
    w, h = fig.get_size_inches()
    fig.set_size_inches(w, h + 0.5)
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set"):
        engine.set(rect=(0, 0.5 / (h + 0.5), 1, 1 - 0.5 / (h + 0.5)))
    caption(fig, figure.caption)
    pdf.savefig(fig)


def still_page(pdf, gif: Path, description: str) -> None:
    import matplotlib.pyplot as plt

    frame, n = still(gif)
    fig = plt.figure(figsize=PAGE)
    ax = fig.add_axes((0.15, 0.12, 0.7, 0.78))
    ax.imshow(frame)
    ax.axis("off")
    fig.text(0.5, 0.93, f"{gif.name}  (last of {n} frames)", ha="center", fontsize=13, weight="bold")
    caption(fig, description)
    pdf.savefig(fig)
    plt.close(fig)
