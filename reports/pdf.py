"""Pages of the PDF report: title, tables, figures with captions, GIF still frames.

Every page is A4 landscape; text is wrapped to the page's width, and what does not fit on a page
(a table's notes, a long text) flows onto continuation pages, so nothing is cut at an edge."""
from __future__ import annotations

import textwrap
from pathlib import Path

from bench.reports.figures import Figure
from bench.reports.gifs import still
from bench.reports.tables import Table

PAGE = (11.69, 8.27)            # A4 landscape, inches
GIF_DPI = 72                    # a GIF frame's pixel to one PDF point: its native resolution
CAPTION_WIDTH = 170             # characters of an 8-point caption line across the page
TEXT_WIDTH = 130                # characters of a 9-point monospaced line
TITLE_WIDTH = 100               # characters of a 14-point bold title line
TEXT_LINES = 48                 # 9-point lines on a text page
NOTE_LINE = 8 * 1.25 / 72 / PAGE[1]     # one 8-point line, as a fraction of the page height
BOTTOM = 0.04                   # the bottom margin, as a fraction of the page height


def wrap(lines: list[str], width: int, indent: str = "") -> list[list[str]]:
    """Each line wrapped to `width`: one group of printed lines per given line."""
    return [textwrap.wrap(line, width, subsequent_indent=indent) or [""] for line in lines]


def take(groups: list[list[str]], capacity: int) -> tuple[list[str], list[list[str]]]:
    """The printed lines that fit in `capacity` lines, whole groups only (a group longer than a page is
    split), and the groups left for the next page."""
    lines: list[str] = []
    for i, group in enumerate(groups):
        if len(lines) + len(group) > capacity:
            if lines:
                return lines, groups[i:]
            return group[:capacity], [group[capacity:], *groups[i + 1:]]
        lines += group
    return lines, []


def text_page(pdf, title: str, lines: list[str] | None = None, groups: list[list[str]] | None = None) -> None:
    """A page of monospaced text, continued on as many pages as it takes."""
    import matplotlib.pyplot as plt

    groups = groups if groups is not None else wrap(lines or [], TEXT_WIDTH, "    ")
    shown, rest = take(groups, TEXT_LINES)
    fig = plt.figure(figsize=PAGE)
    fig.text(0.06, 0.95, "\n".join(textwrap.wrap(title, TITLE_WIDTH)), fontsize=14, weight="bold", va="top")
    fig.text(0.06, 0.86, "\n".join(shown), fontsize=9, va="top", family="DejaVu Sans Mono")
    pdf.savefig(fig)
    plt.close(fig)
    if rest:
        text_page(pdf, title.removesuffix(" (continued)") + " (continued)", groups=rest)


def caption(fig, text: str) -> float:
    """The caption at the foot of the page, wrapped to its width; returns the height it takes (fraction)."""
    lines = textwrap.wrap(text, CAPTION_WIDTH)
    fig.text(0.5, 0.015, "\n".join(lines), ha="center", va="bottom", fontsize=8, style="italic")
    return 0.015 + len(lines) * NOTE_LINE + 0.01


def draw_table(fig, table: Table, fontsize: float):
    """The table on the page at `fontsize`, header and best cells bold, drawn (so it can be measured)."""
    ax = fig.add_axes((0.03, 0.25, 0.94, 0.62))
    ax.axis("off")
    rows = table.rows + table.footer
    cells = [r.labels + [(c.text() + c.mark) if c else "" for c in r.cells] for r in rows]
    drawn = ax.table(cellText=cells, colLabels=table.headers(), loc="upper center", cellLoc="center")
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(fontsize)
    drawn.auto_set_column_width(list(range(len(table.headers()))))
    drawn.scale(1, 1.5)
    for j in range(len(table.headers())):
        drawn[0, j].get_text().set_weight("bold")
    for i, row in enumerate(rows, start=1):
        for j, c in enumerate(row.cells, start=len(row.labels)):
            if c is not None and c.rank == 0:
                drawn[i, j].get_text().set_weight("bold")
    fig.canvas.draw()
    return ax, drawn


def table_page(pdf, table: Table) -> None:
    """The table drawn with matplotlib: best cell bold, second underlined, marks kept; a table wider or
    taller than the page is drawn at a smaller font until it fits."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig = plt.figure(figsize=PAGE)
    fig.text(0.5, 0.95, "\n".join(textwrap.wrap(table.title, TITLE_WIDTH)), ha="center", va="top", fontsize=14,
             weight="bold")
    fontsize = 8 if len(table.headers()) > 8 else 9
    ax, drawn = draw_table(fig, table, fontsize)
    renderer = fig.canvas.get_renderer()
    box = drawn.get_window_extent(renderer).transformed(fig.transFigure.inverted())
    factor = min(1.0, 0.94 / box.width, 0.77 / box.height)
    if factor < 1:
        ax.remove()
        ax, drawn = draw_table(fig, table, max(3.0, 0.95 * factor * fontsize))
    rows = table.rows + table.footer
    for i, row in enumerate(rows, start=1):
        for j, c in enumerate(row.cells, start=len(row.labels)):
            if c is not None and c.rank == 1:      # underline: a line under the text's extent
                box = drawn[i, j].get_text().get_window_extent(renderer).transformed(fig.transFigure.inverted())
                fig.add_artist(Line2D([box.x0, box.x1], [box.y0 - 0.002] * 2, lw=0.7, color="k"))
    # the notes start under the table as drawn; those that do not fit go on continuation pages
    top = min(0.2, drawn.get_window_extent(renderer).transformed(fig.transFigure.inverted()).y0 - 0.02)
    notes = [table.caption] + table.notes
    shown, rest = take(wrap(notes, CAPTION_WIDTH), max(0, int((top - BOTTOM) / NOTE_LINE)))
    fig.text(0.05, top, "\n".join(shown), fontsize=8, va="top")
    pdf.savefig(fig)
    plt.close(fig)
    if rest:                        # rewrapped to the continuation page's width
        text_page(pdf, f"{table.title}: notes (continued)", [" ".join(g).strip() for g in rest])


def figure_page(pdf, figure: Figure) -> None:
    """The figure (as drawn for its PNG, vector) laid out again on the page, its caption wrapped under it."""
    fig = figure.fig
    w, h = fig.get_size_inches()
    fig.set_size_inches(*PAGE)
    below = caption(fig, figure.caption)
    # the plot keeps its own proportions, as large as the page allows above the caption
    scale = min(0.9 * PAGE[0] / w, (1 - below - 0.05) * PAGE[1] / h)
    width, height = scale * w / PAGE[0], scale * h / PAGE[1]
    rect = ((1 - width) / 2, below + (1 - below - 0.03 - height) / 2, width, height)
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set"):
        engine.set(rect=rect)
    pdf.savefig(fig)


def still_page(pdf, gif: Path, description: str) -> None:
    import matplotlib.pyplot as plt

    frame, n = still(gif)
    fig = plt.figure(figsize=PAGE)
    # at its native size (GIF_DPI pixels per inch), never resampled: shrunk only to fit the page
    h, w = frame.shape[:2]
    scale = min(1.0, 0.9 * PAGE[0] * GIF_DPI / w, 0.75 * PAGE[1] * GIF_DPI / h)
    width, height = scale * w / GIF_DPI / PAGE[0], scale * h / GIF_DPI / PAGE[1]
    ax = fig.add_axes(((1 - width) / 2, 0.12 + (0.78 - height) / 2, width, height))
    ax.imshow(frame, interpolation="none")
    ax.axis("off")
    fig.text(0.5, 0.93, f"{gif.name}  (last of {n} frames)", ha="center", fontsize=13, weight="bold")
    caption(fig, description)
    pdf.savefig(fig)
    plt.close(fig)
