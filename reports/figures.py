"""Figures in one seaborn style: bars, training curves, ablation curves, Optuna plots, efficiency."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.reports.collect import SELECT_METRIC, Run, Variant, display
from bench.reports.settings import params_label, sort_key, study_variants
from bench.reports.stats import t_halfwidth

MARKERS = "osD^vph8"          # shapes with an inside, so a hollow one reads as hollow


@dataclass
class Figure:
    name: str           # file name stem
    fig: object         # a matplotlib Figure
    caption: str        # one line: what it shows


def style() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", palette="colorblind",
                  rc={"pdf.fonttype": 42, "savefig.dpi": 120, "axes.titlesize": 10, "legend.fontsize": 8})


# one fixed colour per registered model, hand-picked from seaborn's colorblind and tab10 palettes so
# that no two are near-identical (CIELAB distance >= 40 between every pair); MostPop is the grey floor
MODEL_COLORS = {"diffurecsys": "#0173b2", "diffurec": "#de8f05", "sasrec": "#029e73", "bert4rec": "#d62728",
                "svae": "#cc78bc", "acvae": "#1a1a1a", "pop": "#949494", "preferdiff": "#56b4e9",
                "adrec": "#8c564b", "diqdiff": "#7f3c8d"}
EXTRA_COLORS = ("#ca9161", "#fbafe4", "#bcbd22", "#11a579")       # unknown models: a stable slot by name
MODEL_MARKERS = {"diffurecsys": "o", "diffurec": "s", "sasrec": "D", "bert4rec": "^", "svae": "v",
                 "acvae": "p", "pop": "X", "preferdiff": "h", "adrec": "8", "diqdiff": "P"}


def color(model: str) -> tuple[float, float, float]:
    import zlib

    from matplotlib.colors import to_rgb

    return to_rgb(MODEL_COLORS.get(model) or EXTRA_COLORS[zlib.crc32(model.encode()) % len(EXTRA_COLORS)])


def marker(model: str) -> str:
    import zlib

    return MODEL_MARKERS.get(model) or MARKERS[zlib.crc32(model.encode()) % len(MARKERS)]


def new_figure(w: float, h: float, ncols: int = 1, nrows: int = 1):
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(w, h), layout="constrained", squeeze=False)


def history_stat(variant: Variant, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs, and mean and std over seeds of a history column at each evaluated epoch."""
    by_epoch: dict[float, list[float]] = {}
    for run in variant.runs:
        for e, v in zip(run.history["epoch"], run.history[column]):
            by_epoch.setdefault(float(e), []).append(float(v))
    epochs = np.array(sorted(by_epoch))
    vals = [np.array(by_epoch[e]) for e in epochs]
    return epochs, np.array([v.mean() for v in vals]), np.array([v.std(ddof=1) if len(v) > 1 else 0 for v in vals])


def curves(dataset: str, chosen: dict[str, Variant]) -> Figure:
    fig, axes = new_figure(8, 3.0, ncols=2)
    for m, v in chosen.items():
        for ax, col, scale in ((axes[0, 0], f"valid_{SELECT_METRIC}", 100), (axes[0, 1], "loss", 1)):
            e, mean, std = history_stat(v, col)
            ok = np.isfinite(mean)
            if not ok.any():
                continue
            if ok.sum() == 1:                   # evaluated once (MostPop): a constant line
                ax.axhline(scale * mean[ok][0], ls="--", lw=1, color=color(m), label=display(m))
                continue
            ax.plot(e[ok], scale * mean[ok], label=display(m), color=color(m))
            ax.fill_between(e[ok], scale * (mean - std)[ok], scale * (mean + std)[ok], alpha=0.2, color=color(m))
    axes[0, 0].set(xlabel="epoch", ylabel="validation NDCG@10 (%)", title="validation NDCG@10")
    axes[0, 1].set(xlabel="epoch", ylabel="training loss", title="training loss")
    axes[0, 0].legend()
    return Figure(f"curves_{dataset}", fig, f"Training curves on {dataset}: validation NDCG@10 and training loss "
                                             "per epoch, mean over seeds with a one-std band.")


def numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


MAX_SERIES = 6


def sweep_axis(groups: list[tuple[dict, Variant]]) -> tuple[str | None, list[str]]:
    """The numeric parameter a study sweeps (the one with most values) and the other varying ones,
    which split the curve into series; None when there is none, or too many series (a tuning search).
    A setting that lacks a splitting key (a moot field, see settings.MOOT) belongs to every series."""
    keys = sorted({k for p, _ in groups for k in p})
    distinct = {k: len({repr(p[k]) for p, _ in groups if k in p}) for k in keys}
    varying = [k for k in keys if distinct[k] > 1]
    nums = [k for k in varying if all(k in p for p, _ in groups) and numeric([p[k] for p, _ in groups])]
    if not nums:
        return None, varying
    if len(varying) > 2:
        return None, varying                    # a tuning search, not a sweep
    x = max(nums, key=lambda k: distinct[k])
    others = [k for k in varying if k != x]
    return (x, others) if len(split_series(groups, others)) <= MAX_SERIES else (None, varying)


def split_series(groups: list[tuple[dict, Variant]], others: list[str]) -> dict[str, list[tuple[dict, Variant]]]:
    """Series name -> its settings; a setting lacking one of `others` (one run shared by every
    series, e.g. offset_noise=0 of both offset kinds) is put in every series."""
    series: dict[str, list[tuple[dict, Variant]]] = {}
    for p, v in groups:
        if all(k in p for k in others):
            series.setdefault(", ".join(f"{k}={p[k]}" for k in others), []).append((p, v))
    shared = [(p, v) for p, v in groups if not all(k in p for k in others)]
    if not series:
        series[""] = []
    for items in series.values():
        items += shared
    return dict(sorted(series.items()))


def is_shared(params: dict, others: list[str]) -> bool:
    return not all(k in params for k in others)


def sweep_scale(ax, values) -> None:
    """A log2 axis for a sweep over a wide positive range (e.g. T in 4..128)."""
    x = np.array(values, dtype=float)
    if x.min() > 0 and x.max() / x.min() >= 8:
        ax.set_xscale("log", base=2)


def spread_words(groups: list[tuple[dict, Variant]]) -> str:
    single = sum(1 for _, v in groups if v.seeds < 2)
    if not single:
        return ""
    return (f" n = 1 seed{'' if single == len(groups) else f' for {single} of {len(groups)} settings'}: "
            "no spread, no band or bar there.")


def interval(v: Variant, split: str) -> tuple[float, float]:
    """Mean NDCG@10 over seeds and the half-width of its 95 % t-interval (0 for one seed)."""
    values = v.values(split, SELECT_METRIC)
    return float(np.mean(values)), t_halfwidth(values) or 0.0


def ablation(study: str, dataset: str, model: str, runs: list[Run]) -> Figure | None:
    """Metric against the swept value with 95 % interval bands, or dots with interval bars for named
    or categorical points."""
    from bench.reports.ablations import ordered

    groups = sorted(study_variants(runs), key=lambda g: sort_key(g[0]))
    x_key, others = sweep_axis(groups)
    named = any(v.record.get("point") for _, v in groups)
    if x_key is None and not named and (len(groups) > 12 or len(others) > 2):
        return None                             # a tuning search: its Optuna plots show it
    fig, axes = new_figure(8, 3.0, ncols=2)
    panels = ((axes[0, 0], "valid", "validation NDCG@10 (%)"), (axes[0, 1], "test", "test NDCG@10 (%)"))
    if x_key is None or named:
        points = ordered(runs)
        labels = [f"{name}{' *' if registered else ''} (n = {v.seeds})" for name, v, registered in points]
        for ax, split, label in panels:
            stats = np.array([interval(v, split) for _, v, _ in points])
            ax.errorbar(range(len(points)), stats[:, 0], yerr=stats[:, 1], fmt=marker(model), color=color(model),
                        capsize=3, ls="none")
            ax.set_xticks(range(len(points)), labels, rotation=30, ha="right", fontsize=7)
            ax.set(ylabel=label)
            ax.margins(x=0.25, y=0.15)
        what = ("mean over seeds per point, bars: 95 % t-interval over seeds (axis zoomed to the values)"
                + ("; *: the registered setting" if any(r for *_, r in points) else ""))
    else:
        series = split_series(groups, others)
        shared = [(p, v) for p, v in groups if is_shared(p, others)]
        for i, (name, items) in enumerate(series.items()):
            items.sort(key=lambda g: g[0][x_key])
            xs = np.array([p[x_key] for p, _ in items], dtype=float)
            own = [j for j, (p, _) in enumerate(items) if not is_shared(p, others)]
            for ax, split, label in panels:
                stats = np.array([interval(v, split) for _, v in items])
                line = ax.plot(xs, stats[:, 0], marker=MARKERS[i % len(MARKERS)], markevery=own,
                               label=name or display(model))[0]
                ax.fill_between(xs, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], alpha=0.2,
                                color=line.get_color())
                ax.set(xlabel=x_key, ylabel=label)
        for ax, split, _ in panels:             # a run common to every series: drawn once, in black
            for p, v in shared:
                ax.plot(p[x_key], interval(v, split)[0], "o", color="k", zorder=3,
                        label=f"{params_label(p)} (one run, every series)")
            sweep_scale(ax, [p[x_key] for p, _ in groups])
        axes[0, 0].legend()
        what = f"NDCG@10 against {x_key}, mean over seeds with a 95 % t-interval band over seeds"
    fig.suptitle(f"study {study}: {display(model)} on {dataset}", fontsize=10)
    from bench.reports.ablations import under_budget

    return Figure(f"ablation_{study}_{dataset}_{model}", fig,
                  f"Study '{study}' of {display(model)} on {dataset}: validation and test {what}."
                  + spread_words(groups) + under_budget(runs))


def optuna_figures(journal: Path, notes: list[str]) -> list[Figure]:
    """Optimization history, parameter importances (and Pareto front) of each study in an Optuna journal."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = JournalStorage(JournalFileBackend(str(journal)))
        summaries = storage.get_all_studies()
    except ValueError as e:         # a torn journal (JSONDecodeError too); the study command repairs it
        notes.append(f"Optuna journal {journal} does not read back ({str(e)[:80]}); rerun its study "
                     "command to repair it. No plots from it.")
        return []
    out = []
    for summary in summaries:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if is_grid(study.trials):
            notes.append(f"Optuna study '{summary.study_name}' ({journal}) is a fixed grid (bench ablate: "
                         "its trials are grid points x seeds): no history or importance plots, which would "
                         "rank the point label and the seed; its ablation table and figure show it.")
            continue
        if len(done) < 2:
            notes.append(f"Optuna study '{summary.study_name}' ({journal}): fewer than 2 complete trials, no plots.")
            continue
        for kind, ax, what in optuna_plots(study, notes):
            fig = ax.figure
            fig.set_size_inches(7, 3.2)
            fig.set_layout_engine("constrained")
            out.append(Figure(f"optuna_{kind}_{summary.study_name}", fig,
                              f"Optuna study '{summary.study_name}' ({len(done)} complete trials): {what}."))
    return out


GRID_PARAMS = {"point", "seed"}     # what studies.grid suggests: a point label and a seed, not a search space


def is_grid(trials) -> bool:
    """A `bench ablate` study: every trial that drew parameters drew the grid's point and seed."""
    drawn = [t for t in trials if t.params]
    return bool(drawn) and all(set(t.params) == GRID_PARAMS for t in drawn)


def optuna_plots(study, notes: list[str]):
    """(kind, axes, description) of each Optuna plot that can be drawn; a multi-objective study
    plots its first objective's history and importances, and its Pareto front."""
    from matplotlib import rc_context
    from optuna.visualization import matplotlib as ovm

    n = len(study.directions)
    names = study.metric_names or (["the objective"] if n == 1 else [f"objective {i + 1}" for i in range(n)])
    first = {"target": (lambda t: t.values[0]), "target_name": names[0]} if len(names) > 1 else {}
    plots = [("history", lambda: ovm.plot_optimization_history(study, **first),
              f"{names[0]} of each trial and the best so far"),
             ("importance", lambda: ovm.plot_param_importances(study, **first),
              f"fANOVA importance of each parameter for {names[0]}")]
    if len(names) > 1:
        plots.append(("pareto", lambda: ovm.plot_pareto_front(study, target_names=names),
                      f"trials on {' vs '.join(names)}, the Pareto front highlighted"))
    for kind, draw, what in plots:
        try:
            with warnings.catch_warnings(), rc_context():      # Optuna switches the global style to ggplot
                warnings.simplefilter("ignore")
                ax = draw()
            restyle(ax)
        except Exception as e:              # e.g. importances need two trials with varying parameters
            notes.append(f"Optuna study '{study.study_name}': no {kind} plot ({type(e).__name__}: {e}).")
            continue
        yield kind, ax, what


def restyle(ax) -> None:
    """Optuna's axes in the report's seaborn style."""
    import matplotlib as mpl

    ax.set_facecolor(mpl.rcParams["axes.facecolor"])
    ax.grid(True, color=mpl.rcParams["grid.color"])
    for spine in ax.spines.values():
        spine.set_edgecolor(mpl.rcParams["axes.edgecolor"])
    for loc in ("left", "center", "right"):
        if ax.get_title(loc):
            ax.set_title(ax.get_title(loc), loc=loc, fontsize=mpl.rcParams["axes.titlesize"])
    for label in (ax.xaxis.label, ax.yaxis.label):
        label.set_fontsize(mpl.rcParams["axes.labelsize"])
        label.set_color(mpl.rcParams["axes.labelcolor"])
    ax.tick_params(labelsize=mpl.rcParams["xtick.labelsize"], colors=mpl.rcParams["xtick.color"])
    if ax.get_legend():
        ax.get_legend().get_frame().set_facecolor("white")
