"""The harness from Python (a notebook): the same runs, checks and results store as the `bench` command.

    import bench
    bench.run(models="sasrec,pop", dataset="synthetic", seeds=2, epochs=5, out="runs")
    bench.results("runs")       # one row per run: its settings and every metric (a pandas DataFrame)
    bench.summary("runs")       # one row per model and config: mean and std over seeds

`run` takes the options of `bench run` as keyword arguments, checks them all before any work (a
mistake raises `bench.errors.BenchError` with the command's one-line message), skips runs already
finished in `out`, and returns the records of its runs as a DataFrame. `sets` is a list of
"MODEL.FIELD=VALUE" strings or a dict {"sasrec": {"hidden": 128}}.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

METRICS = ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr")


def run(models: str | list[str] = "all", dataset: str = "synthetic", seeds: int | str | list[int] = 1,
        epochs: int | None = None, out: str | Path = "runs", sets: list[str] | dict | None = None,
        max_len: int = 50, exclude_seen: bool = False, split: str = "leave-one-out", cutoff: float = 0.9,
        order: str = "chronological", jobs: int = 1, threads: int = 0, device: str = "auto",
        force: bool = False, data_dir: str | Path | None = None, config: str | Path | None = None,
        progress: bool = False):
    """Train and evaluate `models` x `seeds` on `dataset` (as `bench run`); the runs' records, one row each.
    progress=True prints the progress lines `bench run` prints to stderr."""
    from bench.cli.commands import run_requests
    from bench.cli.runoptions import RunOptions
    from bench.runs.grid import run_grid

    opts = RunOptions(dataset=dataset, models=",".join(models) if isinstance(models, (list, tuple)) else models,
                      seeds=seed_spec(seeds), epochs=epochs, out=Path(out), sets=set_strings(sets), max_len=max_len,
                      exclude_seen=exclude_seen, split=split, cutoff=cutoff, order=order, jobs=jobs, threads=threads,
                      device=device, force=force, data_dir=data_dir, config=config)
    requests, jobs, _, _, out = run_requests(opts, progress="lines" if progress else "none", quiet=not progress)
    return frame(run_grid(requests, jobs))


def results(out: str | Path = "runs", studies: bool = True):
    """Every run stored in `out` (its latest record), one row each: model, dataset, seed, the protocol,
    epochs, seconds, and valid_/test_/test_kept_/test_removed_ metrics (fractions, not percent).
    With studies=False the runs only studies trained are left out, as `bench results` does."""
    from bench.runs import results as store
    from bench.runs.summary import main_runs

    return frame(main_runs(store.read(Path(out)), studies)[0])


def summary(out: str | Path = "runs", studies: bool = False):
    """`bench results` as a DataFrame: one row per dataset, model and config, metrics in percent as
    (mean, std over seeds) pairs; std is None for one seed."""
    import pandas as pd

    from bench.runs import results as store
    from bench.runs.summary import main_runs, summarize

    return pd.DataFrame(summarize(main_runs(store.read(Path(out)), studies)[0]))


def frame(records: list[dict]):
    import pandas as pd

    rows = []
    for r in records:
        proto = r.get("protocol", {})
        row: dict[str, Any] = {k: r.get(k) for k in ("run_id", "model", "dataset", "seed", "best_epoch",
                                                      "epochs_run", "train_seconds", "eval_seconds")}
        row.update(split=proto.get("split", "leave-one-out"), order=proto.get("order", "chronological"),
                   exclude_seen=proto.get("exclude_seen"), max_len=proto.get("max_len"),
                   study=r.get("study"), point=r.get("point"), skipped=bool(r.get("skipped")))
        for part in ("valid", "test"):
            row.update({f"{part}_{m}": (r.get(part) or {}).get(m) for m in METRICS})
        for seen, metrics in (r.get("test_seen") or {}).items():
            row.update({f"test_{seen}_{m}": metrics.get(m) for m in METRICS})
        row["config"] = r.get("config")
        rows.append(row)
    return pd.DataFrame(rows)


def seed_spec(seeds: int | str | list[int]) -> str:
    """3 -> '3' (seeds 0..2); [0, 2] -> '0,2'."""
    if isinstance(seeds, (list, tuple)):
        return ",".join(str(s) for s in seeds) + ("," if len(seeds) == 1 else "")
    return str(seeds)


def set_strings(sets: list[str] | dict | None) -> list[str]:
    """{"sasrec": {"hidden": 128}} -> ["sasrec.hidden=128"]; a list passes through."""
    if not sets:
        return []
    if isinstance(sets, dict):
        from bench.registry.runconfig import raw

        return [f"{model}.{field}={raw(value)}" for model, fields in sets.items() for field, value in fields.items()]
    return list(sets)
