"""Animated GIFs: validation metrics growing, an ablation curve over epochs, the target's rank over the
reverse diffusion."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.atomic import atomic_write

from bench.reports.collect import SELECT_METRIC, Run, Variant, display
from bench.reports.figures import MARKERS, color, history_stat, new_figure, split_series, sweep_axis, sweep_scale
from bench.reports.settings import study_variants

SIZE = (400, 300)           # pixels of every GIF
MAX_FRAMES = 40
FRAME_MS, LAST_MS = 250, 1500
TRAJECTORY_KEYS = ("x", "timesteps", "item_emb", "users", "targets", "topk")


def frame_indices(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, MAX_FRAMES)).round().astype(int))


def save_gif(fig, update, frames: list, path: Path) -> Path:
    """Calls update(frame) for each frame, rasterizes the figure, writes an endlessly looping GIF."""
    import matplotlib.pyplot as plt
    from PIL import Image

    fig.set_size_inches(SIZE[0] / 100, SIZE[1] / 100)
    fig.set_dpi(100)
    fig.canvas.draw()
    fig.set_layout_engine("none")               # lay out once; frames only move data
    images = []
    for frame in frames:
        update(frame)
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3]).quantize(colors=128))
    plt.close(fig)
    durations = [FRAME_MS] * (len(images) - 1) + [LAST_MS]
    atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                duration=durations, loop=0))
    return path


def value_at(run: Run, column: str, epoch: float) -> float:
    """The run's last evaluated value at or before `epoch` (NaN before its first evaluation)."""
    e = run.history["epoch"]
    idx = np.searchsorted(e, epoch, side="right") - 1
    return float(run.history[column][idx]) if idx >= 0 else np.nan


def growth(dataset: str, chosen: dict[str, Variant], path: Path) -> Path | None:
    """Validation HR@10 and NDCG@10 of every model, one frame per evaluated epoch."""
    epochs = sorted({float(e) for v in chosen.values() for r in v.runs for e in r.history["epoch"]})
    if not any(len(history_stat(v, f"valid_{SELECT_METRIC}")[0]) > 1 for v in chosen.values()):
        return None
    fig, axes = new_figure(4, 3, nrows=2)
    lines = {}
    for ax, metric in zip(axes[:, 0], ("hr@10", "ndcg@10")):
        top = 0.0
        for m, v in chosen.items():
            e, mean, _ = history_stat(v, f"valid_{metric}")
            if not len(e):                       # no readable history
                continue
            top = max(top, np.nanmax(100 * mean))
            if len(e) == 1:                      # evaluated once (MostPop): a constant line
                ax.axhline(100 * mean[0], ls="--", lw=1, color=color(m), label=display(m))
            else:
                lines[(metric, m)] = (ax.plot([], [], lw=1.5, color=color(m), label=display(m))[0], e, 100 * mean)
        ax.set(xlim=(0, max(epochs[-1], 1)), ylim=(0, 1.1 * top or 1))
        ax.set_ylabel(f"val {metric.upper()} (%)", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=5, ncols=3, loc="lower right")
    axes[1, 0].set_xlabel("epoch", fontsize=7)
    title = fig.suptitle(f"{dataset}: validation metrics, epoch {epochs[-1]:g}", fontsize=8)   # room for it

    def update(epoch):
        for line, e, y in lines.values():
            line.set_data(e[e <= epoch], y[e <= epoch])
        title.set_text(f"{dataset}: validation metrics, epoch {epoch:g}")

    return save_gif(fig, update, [epochs[i] for i in frame_indices(len(epochs))], path)


def ablation(study: str, dataset: str, model: str, runs: list[Run], path: Path) -> Path | None:
    """The validation-NDCG@10-vs-value curve of a numeric sweep, one frame per evaluated epoch."""
    groups = study_variants(runs)
    x_key, others = sweep_axis(groups)
    if x_key is None:
        return None
    epochs = sorted({float(e) for _, v in groups for r in v.runs for e in r.history["epoch"]})
    if len(epochs) < 2:
        return None
    col = f"valid_{SELECT_METRIC}"
    series = split_series(groups, others)
    fig, axes = new_figure(4, 3)
    ax, artists = axes[0, 0], []
    for i, (name, items) in enumerate(series.items()):
        items.sort(key=lambda g: g[0][x_key])
        xs = np.array([p[x_key] for p, _ in items], dtype=float)
        # (settings, seeds) values at every epoch; seeds padded with NaN
        vals = np.array([[[value_at(r, col, e) for r in v.runs] + [np.nan] * (max(len(w.runs) for _, w in items)
                         - len(v.runs)) for _, v in items] for e in epochs]) * 100
        line = ax.plot(xs, np.zeros_like(xs), marker=MARKERS[i % len(MARKERS)], ms=3, label=name or display(model))[0]
        artists.append((line, xs, vals, line.get_color()))
    sweep_scale(ax, [p[x_key] for p, _ in groups])
    allv = np.concatenate([a[2].ravel() for a in artists])
    ax.set(ylim=(0, 1.1 * np.nanmax(allv) if np.isfinite(allv).any() else 1))
    ax.set_xlabel(x_key, fontsize=7)
    ax.set_ylabel("validation NDCG@10 (%)", fontsize=7)
    ax.tick_params(labelsize=6)
    if len(series) > 1:
        ax.legend(fontsize=5)
    title = ax.set_title(f"{study}: {display(model)} on {dataset}, epoch {epochs[-1]:g}", fontsize=8)
    bands = []

    def update(k):
        for b in bands:
            b.remove()
        bands.clear()
        for line, xs, vals, c in artists:
            with np.errstate(all="ignore"):
                mean, std = np.nanmean(vals[k], axis=1), np.nan_to_num(np.nanstd(vals[k], axis=1))
            line.set_data(xs, mean)
            bands.append(ax.fill_between(xs, mean - std, mean + std, color=c, alpha=0.2))
        title.set_text(f"{study}: {display(model)} on {dataset}, epoch {epochs[k]:g}")

    return save_gif(fig, update, list(frame_indices(len(epochs))), path)


def load_trajectory(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        missing = [k for k in TRAJECTORY_KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}")
        return {k: z[k] for k in TRAJECTORY_KEYS}


def target_ranks(traj: dict[str, np.ndarray]) -> np.ndarray:
    """(S+1, U) rank of each user's target when the catalogue is scored by dot product with the
    state x_t (as the final estimate is scored); pessimistic, 1 + items other than it scoring >= it."""
    emb = traj["item_emb"].astype(np.float64)                       # (N+1, D), row 0 padding
    users = np.arange(traj["x"].shape[1])
    ranks = []
    for x in traj["x"].astype(np.float64):                          # (U, D) per step: no (S+1, U, N+1) tensor
        scores = x @ emb.T
        scores[:, 0] = -np.inf
        target = scores[users, traj["targets"]][:, None]
        ranks.append((scores >= target).sum(axis=1))                # counts the target itself: 1 + others
    return np.array(ranks)


def reverse_diffusion(traj: dict[str, np.ndarray], title: str, path: Path, line_color="C0") -> Path:
    """The target item's rank for each recorded test user against the reverse step, x_T to the
    final estimate, drawn one step per frame; the median over users in black."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ranks = target_ranks(traj)
    steps, users = ranks.shape[0] - 1, ranks.shape[1]
    n_items = len(traj["item_emb"]) - 1
    median = np.median(ranks, axis=1)
    fig, axes = new_figure(4, 3)
    ax = axes[0, 0]
    ax.set_yscale("log")
    ax.set(xlim=(0, max(steps, 1)), ylim=(1.5 * n_items, 0.8))     # rank 1 on top
    ax.axhline(10, ls=":", lw=0.8, color="0.4", label="top-10 cut")
    # each line ends in a dot at the current step, so the first frame (one point per user) shows too
    lines = [ax.plot([], [], lw=0.8, alpha=0.6, color=line_color, marker="o", markersize=2,
                     label="one test user" if u == 0 else None)[0] for u in range(users)]
    mid = ax.plot([], [], lw=2, color="k", marker="o", markersize=3, label=f"median of {users} users")[0]
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))         # steps are whole
    ax.set_xlabel("reverse step (0: x_T, pure noise)", fontsize=7)
    ax.set_ylabel(f"rank of the target item (of {n_items})", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, frameon=False)
    ttl = fig.suptitle(f"{title}: step {steps}/{steps}, t = 0", fontsize=7)

    def update(k):
        for u, line in enumerate(lines):
            line.set_data(np.arange(k + 1), ranks[:k + 1, u])
            line.set_markevery([k])
        mid.set_data(np.arange(k + 1), median[:k + 1])
        mid.set_markevery([k])
        ttl.set_text(f"{title}: step {k}/{steps}, t = {int(traj['timesteps'][k])}")

    return save_gif(fig, update, list(frame_indices(steps + 1)), path)


def still(path: Path):
    """The last frame of a GIF as an RGB array, and its frame count."""
    from PIL import Image

    with Image.open(path) as im:
        n = getattr(im, "n_frames", 1)
        im.seek(n - 1)
        return np.asarray(im.convert("RGB")), n
