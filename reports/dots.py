"""Who wins and by how much: dot plots of test metrics with 95% t-intervals over seeds, the same as
differences against SASRec, and accuracy against cost, one panel per dataset."""
from __future__ import annotations

import numpy as np

from bench.reports.collect import SELECT_METRIC, Collection, Variant, display, model_order
from bench.reports.figures import Figure, color, marker, new_figure
from bench.reports.stats import CONFIDENCE, t_halfwidth, welch_halfwidth
from bench.reports.tables import ANCHOR, HEADERS

# panels of a dot plot, two rows of four; the last slot holds the key
PANELS = (("hr@5", "hr@10", "hr@20", "mrr"), ("ndcg@5", "ndcg@10", "ndcg@20", None))
CI = f"{100 * CONFIDENCE:.0f}% t-interval"


def test_values(v: Variant | None, metric: str) -> np.ndarray:
    """A variant's finite test values (%), one per seed; empty when the model did not run."""
    if v is None:
        return np.array([])
    x = np.array(v.values("test", metric), dtype=float)
    return x[np.isfinite(x)]


def row_label(model: str, chosen: dict[str, Variant]) -> str:
    if model not in chosen:
        return f"{display(model)} (not run)"
    n = len(test_values(chosen[model], SELECT_METRIC))
    return f"{display(model)} (n = {n})" if n else f"{display(model)} (no value)"


def bounded(mean: float, half: float | None):
    """Error-bar extents of mean +- half clipped to [0, 100]: a metric's mean lies in it."""
    if half is None:
        return None
    return [[mean - max(mean - half, 0.0)], [min(mean + half, 100.0) - mean]]


def dot_panels(title: str, rows: list[str], labels: list[str], draw, lines: dict[str, float], line_color,
               key: str, xlabel: str = "{metric} (%)") -> object:
    """Two rows of metric panels, a row per model (first on top); draw(ax, metric, y, model) puts
    one model's dot; lines: a vertical reference line per metric; key: what the marks mean, in the
    free eighth slot. Returns the matplotlib figure."""
    fig, axes = new_figure(8, 1.6 + 0.5 * len(rows), ncols=4, nrows=2)
    y = np.arange(len(rows))[::-1]
    for r, keys in enumerate(PANELS):
        for c, metric in enumerate(keys):
            ax = axes[r, c]
            if metric is None:
                ax.axis("off")
                ax.text(0, 0.5, key, transform=ax.transAxes, fontsize=7, va="center")
                continue
            if metric in lines:
                ax.axvline(lines[metric], ls=":", lw=1, color=line_color)
            for yi, m in zip(y, rows):
                draw(ax, metric, yi, m)
            ax.set_yticks(y, labels if c == 0 else [""] * len(rows), fontsize=7)
            ax.set_ylim(-0.6, len(rows) - 0.4)
            ax.set_xlabel(xlabel.format(metric=HEADERS[metric]), fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
            ax.margins(x=0.12)
        for tick, label in zip(axes[r, 0].get_yticklabels(), labels):
            if label.endswith("(not run)") or label.endswith("(no value)"):
                tick.set_color("0.55")
    fig.suptitle(title, fontsize=10)
    return fig


def forest(dataset: str, chosen: dict[str, Variant], models: list[str]) -> Figure:
    """Per metric, each model's test mean with its t-interval over seeds; every model of the report
    has a row, one that did not run on this dataset is marked and has no dot. Axes zoom to the values."""

    def draw(ax, metric, y, m):
        vals = test_values(chosen.get(m), metric)
        if len(vals):
            ax.errorbar(vals.mean(), y, xerr=bounded(vals.mean(), t_halfwidth(vals)), fmt=marker(m),
                        color=color(m), ms=4, capsize=2, lw=1)

    ref = {k: test_values(chosen.get(ANCHOR), k) for keys in PANELS for k in keys if k}
    lines = {k: x.mean() for k, x in ref.items() if len(x)}
    key = ["dot: mean over seeds", f"bar: {CI}", "  (within 0..100)", "no bar: n = 1 seed"]
    key += [f"dotted: {display(ANCHOR)}'s mean"] * bool(lines) + ["(not run): no runs here"]
    fig = dot_panels(f"{dataset}: test metrics (%), mean and {CI} over seeds", models,
                     [row_label(m, chosen) for m in models], draw, lines, color(ANCHOR), "\n".join(key))
    anchor = f"; dotted line: {display(ANCHOR)}'s mean" if lines else ""
    return Figure(f"forest_{dataset}", fig,
                  f"Test HR, NDCG and MRR (%) on {dataset}: each model's mean over seeds (dot) and {CI} "
                  f"(bar, within 0..100; none for n = 1, the seed count is in the label){anchor}; axes zoomed "
                  "to the values, not from 0; models marked 'not run' have no runs on this dataset.")


def deltas(dataset: str, chosen: dict[str, Variant], models: list[str], reference: str = ANCHOR) -> Figure | None:
    """Per metric, each model's test mean minus the reference's (points), with a Welch t-interval;
    a filled dot when the interval excludes 0. None without the reference or another model."""
    if reference not in chosen or len(chosen) < 2:
        return None
    rows = [m for m in models if m != reference]
    n_ref = len(test_values(chosen[reference], SELECT_METRIC))

    def draw(ax, metric, y, m):
        ref, vals = test_values(chosen[reference], metric), test_values(chosen.get(m), metric)
        if not len(vals) or not len(ref):
            return
        gap, half = vals.mean() - ref.mean(), welch_halfwidth(vals, ref)
        clear = half is not None and abs(gap) > half
        ax.errorbar(gap, y, xerr=half, fmt=marker(m), color=color(m), mfc=color(m) if clear else "white",
                    ms=5, mew=1, capsize=2, lw=1)

    fig = dot_panels(f"{dataset}: test metric minus {display(reference)}'s (n = {n_ref}), percentage points, "
                     f"Welch {CI}", rows, [row_label(m, chosen) for m in rows], draw,
                     {k: 0.0 for keys in PANELS for k in keys if k}, color(reference),
                     f"dot: mean minus {display(reference)}'s\nbar: Welch {CI}\nfilled: it excludes 0\n"
                     "no bar: n = 1 seed\n(not run): no runs here", xlabel="Δ {metric} (pp)")
    return Figure(f"deltas_{dataset}", fig,
                  f"Test HR, NDCG and MRR on {dataset} as differences against {display(reference)} (percentage "
                  f"points, mean over seeds minus {display(reference)}'s mean): dot and Welch {CI} (none when "
                  "either side has n = 1); filled: the interval excludes 0 (a clear win or loss), hollow: it "
                  "does not; dotted line: no difference.")


# kind -> (x label, x value of a variant, what the caption calls it)
COSTS = {
    "train": ("training time (s)", lambda v: v.mean_of("train_seconds"), "training seconds"),
    "inference": ("inference ms per user (test pass)",
                  lambda v: float(np.mean([r.inference_ms_per_user() for r in v.runs])),
                  "test-pass milliseconds per user"),
}


def cost_scale(ax, xs: list[float]) -> None:
    """Log for costs spread over decades; symlog when one sits at 0 (MostPop trains in 0 s); else linear."""
    if not xs or max(xs) <= 0:
        return
    if min(xs) > 0 and max(xs) / min(xs) >= 20:
        ax.set_xscale("log")
    elif min(xs) <= 0 and max(xs) >= 10:
        ax.set_xscale("symlog", linthresh=1)


def efficiency(coll: Collection, kind: str) -> Figure:
    """Test NDCG@10 against a cost, one panel per dataset, models told apart by colour, marker and
    a shared legend (no text labels to collide); models that did not run on a dataset are listed in
    its panel."""
    xlabel, cost, words = COSTS[kind]
    datasets = coll.datasets()
    every = model_order({r.model for r in coll.runs})
    ncols = min(len(datasets), 3)
    nrows = -(-len(datasets) // ncols)
    fig, axes = new_figure(8 if ncols > 1 else 5.5, 2.9 * nrows, ncols=ncols, nrows=nrows)
    handles = {}
    for ax, dataset in zip(axes.flat, datasets):
        chosen, xs = coll.chosen(dataset), []
        for m, v in chosen.items():
            vals = test_values(v, SELECT_METRIC)
            if not len(vals):
                continue
            xs.append(cost(v))
            handles[m] = ax.errorbar(xs[-1], vals.mean(), yerr=bounded(vals.mean(), t_halfwidth(vals)),
                                     fmt=marker(m), color=color(m), ms=5, capsize=2, lw=1)
        missing = [display(m) for m in every if m not in chosen]
        if missing:
            ax.text(0.02, 0.02, "not run: " + ", ".join(missing), transform=ax.transAxes, fontsize=6, color="0.4")
        cost_scale(ax, xs)
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("test NDCG@10 (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.margins(x=0.15, y=0.15)
    for ax in axes.flat[len(datasets):]:
        fig.delaxes(ax)
    shown = [m for m in every if m in handles]
    fig.legend([handles[m] for m in shown], [display(m) for m in shown], loc="outside right upper", fontsize=7)
    return Figure(f"efficiency_{kind}", fig,
                  f"Efficiency: test NDCG@10 (mean over seeds, {CI} bars; none for n = 1) against {words}, "
                  "one panel per dataset, the chosen configuration of each model.")
