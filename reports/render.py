"""Tables as Markdown (bold best, <u>second</u>), LaTeX (booktabs) and CSV."""
from __future__ import annotations

import csv
import io

from bench.reports.tables import DAGGER, Cell, Row, Table


def markdown(table: Table) -> str:
    def cell(c: Cell | None) -> str:
        if c is None:
            return ""
        text = c.text()
        text = f"**{text}**" if c.rank == 0 else f"<u>{text}</u>" if c.rank == 1 else text
        return text + c.mark

    lines = [f"**{table.title}**", "", "| " + " | ".join(table.headers()) + " |",
             "|" + "|".join([":--"] * len(table.labels) + ["--:"] * len(table.metrics)) + "|"]
    for row in table.rows + table.footer:
        lines.append("| " + " | ".join(row.labels + [cell(c) for c in row.cells]) + " |")
    lines += ["", table.caption] + [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


TEX_ESCAPE = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
              "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
              "±": r"$\pm$", "†": r"$^\dagger$", "@": "@", "Δ": r"$\Delta$", "−": r"$-$", "≤": r"$\leq$",
              "≥": r"$\geq$", "×": r"$\times$", "→": r"$\to$", "–": "--", "—": "---", "·": r"$\cdot$",
              "λ": r"$\lambda$", "ε": r"$\epsilon$", "σ": r"$\sigma$", "μ": r"$\mu$", "…": r"\ldots{}"}


def tex_escape(text: str) -> str:
    """Text for pdflatex: its special characters escaped, the symbols the reports use as math, any other
    non-ASCII character by its closest ASCII form (an accent dropped), so every table compiles."""
    import unicodedata

    def one(ch: str) -> str:
        if ch in TEX_ESCAPE:
            return TEX_ESCAPE[ch]
        if ch.isascii():
            return ch
        return unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"
    return "".join(one(ch) for ch in text)


def tex_cell(c: Cell | None) -> str:
    if c is None:
        return ""
    value = f"{c.mean:+.2f}" if c.unit else f"{c.mean:.2f}"
    value = rf"\textbf{{{value}}}" if c.rank == 0 else rf"\underline{{{value}}}" if c.rank == 1 else value
    if c.std is not None:
        value += rf"{{\scriptsize$\pm${c.std:.2f}}}"
    value += {"%": r"\%", " pt": " pt"}.get(c.unit, "")
    mark = {DAGGER: r"$^\dagger$", "*": r"$^*$"}.get(c.mark, "")
    return value + mark


def latex(table: Table) -> str:
    """A booktabs table environment, ready to paste (needs \\usepackage{booktabs,graphicx})."""
    cols = "l" * len(table.labels) + "r" * len(table.metrics)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{tex_escape(table.caption)}}}", rf"\label{{tab:{table.key}}}",
             r"\resizebox{\linewidth}{!}{%", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(tex_escape(h) for h in table.headers()) + r" \\", r"\midrule"]
    lines += [tex_row(r) for r in table.rows]
    if table.footer:
        lines.append(r"\midrule")
        lines += [tex_row(r) for r in table.footer]
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def tex_row(row: Row) -> str:
    return " & ".join([tex_escape(x) for x in row.labels] + [tex_cell(c) for c in row.cells]) + r" \\"


def csv_text(table: Table) -> str:
    """One row per table row: labels, then mean, std and adjusted p of each metric (percent)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    header = list(table.labels)
    for m in table.metrics:
        header += [m, f"{m}_std", f"{m}_p"]
    writer.writerow(header)
    for row in table.rows + table.footer:
        out = list(row.labels)
        for c in row.cells:
            out += ["", "", ""] if c is None else [f"{c.mean:.4f}", "" if c.std is None else f"{c.std:.4f}",
                                                  "" if c.p is None else f"{c.p:.4g}"]
        writer.writerow(out)
    return buf.getvalue()
