"""The plain functions behind every `bench` command: arguments in, tables out, BenchError for a mistake.

Each is what its Typer command in main.py calls with the parsed options, so it can be called
(and tested) without the command line.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cli.options import parse_seed_list, parse_seeds
from bench.cli.paths import output_dir
from bench.cli.runoptions import RunOptions, grid_names
from bench.errors import BenchError

console = Console() if sys.stdout.isatty() else Console(width=200)
# in a log file (not a terminal) lines are as wide as they need, so tables keep every name whole
err_console = Console(stderr=True, highlight=False, soft_wrap=True, **({} if sys.stderr.isatty() else {"width": 200}))


def from_experiment(opts):
    """(experiment, datasets, options) from --experiment: the file's grid replaces the options'; the
    command line may add --out and --data-dir only where the file does not set them."""
    from bench.runs import experiment as exp

    clash = opts.grid_given()
    if clash:
        raise BenchError(f"{', '.join(clash)} cannot be given with --experiment: the file {opts.experiment} sets "
                         "the grid (edit it, or drop --experiment)")
    e = exp.load(opts.experiment)
    if e.out is not None and opts.out is not None and e.out.resolve() != Path(opts.out).resolve():
        raise BenchError(f"--out {opts.out} differs from the out of {opts.experiment} ({e.out}); drop one")
    grid = {name: getattr(e, name) for name in grid_names() if name != "dataset"}
    return e, list(e.datasets), opts.replace(**grid, out=e.out or opts.out,
                                              data_dir=opts.data_dir if opts.data_dir is not None else e.data_dir)


def run(opts: RunOptions):
    """Train and evaluate models x seeds on a dataset (or an experiment file's); skip runs already finished."""
    from bench.runs.grid import run_grid
    from bench.runs.summary import render, summarize

    if opts.backend not in ("local", "dask"):
        raise BenchError(f"unknown --backend '{opts.backend}'; choose local or dask")
    if opts.backend == "dask":
        from bench.runs.grid import check_scheduler

        check_scheduler(opts.scheduler)          # before the plan's timing
    requests, jobs, why, e, out = run_requests(
        opts, progress="bar" if sys.stderr.isatty() and opts.jobs == 1 else "lines", local=opts.backend == "local")
    rows = show_plan(requests, jobs, opts.dry_run, threads=why)
    if opts.dry_run:
        return
    if e:
        e.store(out)
    records = run_grid(requests, jobs, opts.backend, opts.scheduler, rows)
    skipped = sum(1 for r in records if r.get("skipped"))
    if skipped:
        console.print(f"{skipped} of {len(records)} runs were already finished in {out} (use --force to rerun)")
    console.print(render(summarize(records)))
    console.print(f"results: {out / 'results.jsonl'}")


def run_requests(opts: RunOptions, progress="lines", local=True, quiet=False):
    """The runs of `bench run`'s options (or of the Python API, bench.api.run), every option checked
    before any work: (RunSpecs, jobs, what set the threads, the experiment or None, out)."""
    from bench import data, registry
    from bench.registry import runconfig
    from bench.runs import spec as runspec
    from bench.registry.overrides import parse_sets
    from bench.eval.protocol import Protocol

    e = None
    if opts.experiment is not None:
        e, datasets, opts = from_experiment(opts)
    elif opts.dataset is None:
        raise BenchError("bench run needs --dataset NAME (or --experiment FILE.toml)")
    else:
        datasets = [opts.dataset]
    out = Path(opts.out) if opts.out is not None else Path("runs")
    max_len = 50 if opts.max_len is None else opts.max_len
    output_dir(out)
    saved = runconfig.load(opts.config) if opts.config else None
    names = registry.parse_models(opts.models or (saved.model if saved else "all"))
    seed_list = parse_seeds("1" if opts.seeds is None else str(opts.seeds))
    if max_len < 1 or opts.jobs < 1:
        raise BenchError("--max-len and --jobs must be at least 1")
    from bench.runs import threads as thread_counts
    from bench.train import tblog
    from bench.eval import splits

    thread_counts.check(opts.threads)            # a bad --threads, --log or --split: before any work
    tblog.check(opts.log)
    splits.check(opts.split, opts.order, opts.cutoff)
    overrides = parse_sets(opts.sets, names)
    if opts.epochs is not None:
        for name in names:
            overrides.setdefault(name, {}).setdefault("epochs", str(opts.epochs))
    if saved:
        saved.merge_into(overrides, names)          # --set and --epochs win over the file
    protocol = Protocol(max_len=max_len, exclude_seen=opts.exclude_seen, split=opts.split, order=opts.order,
                        cutoff=opts.cutoff)
    # each model's settings resolved and checked once per dataset, before any data is read
    resolved = {(d, m): runspec.resolve(m, d, protocol, overrides.get(m, {})) for d in datasets for m in names}
    for dataset in datasets:
        ds = data.resolve(dataset, opts.data_dir, fetch_missing=True)
        if quiet:
            splits.for_protocol(ds, protocol)       # a split the dataset cannot give fails here, as below
        else:
            announce(ds, protocol)
    refs = {d: runspec.DataRef.of(d, opts.data_dir) for d in datasets}
    requests = [runspec.RunSpec(model=resolved[d, m], data=refs[d], protocol=protocol, seed=s,
                                sets=overrides.get(m, {}), out=str(out), device=opts.device, force=opts.force,
                                progress=progress, tags=e.tags() if e else {}, log=opts.log)
                for d in datasets for m in names for s in seed_list]
    jobs = opts.jobs
    capped = min(jobs, len(requests), os.cpu_count() or 1)
    if capped < jobs and local:
        if not quiet:
            err_console.print(f"--jobs {jobs} capped at {capped} ({len(requests)} runs, {os.cpu_count()} cores)")
        jobs = capped
    if local or opts.threads:       # a Dask worker on another machine shares its own cores
        each, why = thread_counts.per_process(opts.threads, jobs)
        requests = [r.with_(threads=each) for r in requests]
    else:
        why = "each Dask worker's own (--threads N to choose)"
    return requests, jobs, why, e, out


def results(out, studies=False):
    """`bench results`: show mean +- std over seeds of every run stored in a results folder; study
    runs (`bench ablate`, `bench tune`) only with `studies`."""
    from bench.runs import results as store
    from bench.runs.summary import main_runs, render, summarize

    stored = store.read(out)
    if not stored:
        raise BenchError(f"no results in {out / store.RESULTS}")
    records, left_out = main_runs(stored, studies)
    if records:
        console.print(render(summarize(records)))
    if left_out:
        console.print(f"{left_out} study run{'s' * (left_out != 1)} (bench ablate, bench tune) left out"
                      f"{'' if records else f' of {out / store.RESULTS}: it holds no others'}; "
                      "--studies includes them")


def status(out):
    """`bench status`: every run in a results folder: finished, training now, stopped (resumable) or started."""
    from bench.runs.status import scan

    rows = scan(out)
    if not rows:
        raise BenchError(f"no runs in {out}")
    table = Table("dataset", "model", "seed", "point", "run id", "state", "epoch", "best epoch", "valid NDCG@10 %",
                  "test NDCG@10 %", "train s", "took s", "planned s", title=f"runs in {out}",
                  caption="took: training, validation and test of a finished run; planned: the plan's estimate "
                          "when the run started (bench run, bench ablate)", caption_justify="left")
    pct = lambda v: "" if v is None else f"{100 * v:.2f}"
    secs = lambda v: "" if v is None else f"{v:,.0f}"
    for r in rows:
        table.add_row(r.dataset, r.model, str(r.seed), r.point or "", r.run_id, r.state,
                      "" if r.epoch is None else str(r.epoch), "" if r.best_epoch is None else str(r.best_epoch),
                      pct(r.best_valid), pct(r.test), secs(r.train_seconds), secs(r.took), secs(r.planned))
    console.print(table)


def export(sources, dest):
    """`bench export`: copy finished runs without their checkpoints into `dest`."""
    from bench.runs.export import export as copy_runs, folder_bytes

    done = copy_runs([Path(s) for s in sources], output_dir(Path(dest), "--to"))
    for why in done.skipped:
        err_console.print(f"skipped {why}")
    console.print(f"{len(done.added)} run{'s' * (len(done.added) != 1)} exported to {dest}, {done.present} "
                  f"already there, {len(done.skipped)} skipped; {dest} holds {folder_bytes(Path(dest)) / 1e6:.1f} MB")
    if done.skipped:
        raise BenchError(f"{len(done.skipped)} run{'s' * (len(done.skipped) != 1)} could not be exported "
                         "(listed above); the others were")


def eval_runs(models, dataset, out, seed, run_id, sets, exclude_seen, split, device, data_dir, threads=0):
    """`bench eval runs`: score finished runs again from their best checkpoint with evaluation-time settings"""
    from bench import data, registry
    from bench.eval import reeval
    from bench.registry.overrides import parse_sets
    from bench.runs import results as store
    from bench.runs.threads import per_process

    output_dir(out)
    torch_threads(per_process(threads, 1)[0])
    store.read(out)            # the store's records say where models from outside the package live
    names = registry.parse_models(models)
    if split not in ("valid", "test", "both"):
        raise BenchError(f"unknown --split '{split}'; choose valid, test or both")
    overrides = parse_sets(sets, names)
    for name in names:
        reeval.check_overrides(name, overrides.get(name, {}))
    directory = str(data_dir) if data_dir else None
    ds = data.resolve(dataset, data_dir)
    found = reeval.find_runs(out, names, dataset, directory, parse_seed_list(seed) if seed else None, run_id)
    splits = ("valid", "test") if split == "both" else (split,)
    table = Table(title=f"{dataset}: stored -> re-evaluated (%)", title_justify="left")
    for col in ("model", "seed", "run", "changes", *(f"{s} {m}" for s in splits for m in ("HR@10", "NDCG@10")), "s"):
        table.add_column(col, justify="left" if col in ("model", "run", "changes") else "right")
    for record in found:
        entry = reeval.reevaluate(out, record, ds, overrides.get(record["model"], {}), device, exclude_seen, splits)
        cells = [f"{100 * entry['stored'][s][m]:.2f} -> {100 * entry[s][m]:.2f}"
                 for s in splits for m in ("hr@10", "ndcg@10")]
        changes = ", ".join(f"{k}={v}" for k, v in entry["changes"].items()) or "none"
        seconds = sum(entry[f"{s}_seconds"] for s in splits)
        table.add_row(record["model"], str(record["seed"]), record["run_id"][:8], changes, *cells, f"{seconds:.1f}")
    console.print(table)
    console.print(f"evaluations: {out / reeval.EVALS}")


def perf(models, dataset, device, precision, json_path, train_steps, warmup, eval_users, parity_steps,
         threads, sets, data_dir):
    """`bench perf`: training and evaluation throughput, peak memory and precision parity of each model."""
    from bench.train import perf as perf_mod
    from bench import registry
    from bench.registry.overrides import parse_sets

    names = registry.parse_models(models)
    overrides = parse_sets(sets, names)
    for name in names:
        registry.resolve(name, overrides, dataset)
    if min(train_steps, eval_users) < 1 or min(warmup, parity_steps, threads) < 0:
        raise BenchError("--train-steps and --eval-users must be >= 1; --warmup, --parity-steps, --threads >= 0")
    if threads:
        torch_threads(threads)
    cfg = perf_mod.PerfConfig(warmup=warmup, train_steps=train_steps, eval_users=eval_users,
                              parity_steps=parity_steps)
    result = perf_mod.run(names, dataset, device, [p.strip() for p in precision.split(",") if p.strip()], cfg,
                          overrides, str(data_dir) if data_dir else None,
                          report=lambda r: console.print(f"  {r['model']} {r['precision']}: done"),
                          start=lambda ds: console.print(f"bench perf on {ds}: {', '.join(names)}; "
                                                         f"precisions {precision}"))
    console.print(perf_table(result))
    if json_path:
        perf_mod.write_json(result, json_path)
        console.print(f"json: {json_path}")


def list_models(name):
    """`bench models`: one line per registered model; `bench models NAME[,NAME]`: every field of those
    models with its default, its dataset presets and what it means."""
    from bench import registry

    if not name:
        table = Table(title="registered models; bench models NAME: every field, its default and meaning",
                      title_justify="left")
        for col in ("name", "model", "paper", "what it is", "presets"):
            table.add_column(col)
        for n in registry.display_order(registry.names()):
            a = registry.about(n)
            table.add_row(a.name, a.display, a.paper, a.summary, ", ".join(a.presets) or "-")
        console.print(table)
        return
    for n in registry.parse_models(name):
        console.print(model_fields_table(n))


def model_fields_table(name: str) -> Table:
    """`bench models NAME`: section, field, type, default, a column per dataset preset, meaning."""
    from bench import registry

    from bench.registry import contract

    a = registry.about(name)
    datasets = {d: registry.presets(name, d) for d in a.presets}
    variants = contract.variants(registry.model_class(name))
    captions = [f"on DATASET: {a.display}'s preset there, chosen on its validation split; it replaces the "
                "default on that dataset, and a --set wins over both"] if datasets else []
    captions += [f"variant {v}: selected with --set {name}.variant={v} (a further --set wins); "
                 "max_len = the run's --max-len" for v in variants]
    table = Table(title=f"{a.display} ({name}): {a.paper}; {a.summary}", title_justify="left",
                  caption="\n".join(captions) or None, caption_justify="left")
    columns = {**{f"on {d}": v for d, v in datasets.items()}, **{f"variant {v}": f for v, f in variants.items()}}
    for col in ("section", "field", "type", "default", *columns, "description"):
        table.add_column(col, overflow="fold", max_width=28 if col == "type" else None)
    for f in registry.describe(name):
        table.add_row(f.section, f.name, f.type, f.default, *(v.get(f.name, "") for v in columns.values()),
                      f.description)
    return table


def announce(ds, protocol=None) -> None:
    """The dataset a command is about to train on, in one summary: its size and, for a raw log, what
    reading it dropped (users with fewer than 3 interactions among it); then what the protocol's split
    and order make of it. A dataset without timestamps under --split temporal fails here, before any work."""
    from bench.data.prepare import dataset_summary
    from bench.eval import splits

    lines = dataset_summary(ds).lines(f"dataset {ds.name}")
    if protocol is not None:
        lines += splits.describe(splits.for_protocol(ds, protocol))
    for line in lines:      # stdout: stderr is for the one error line
        console.print(line, markup=False, highlight=False)


def data_prepare(log, out, user_col, item_col, time_col, rating_col, min_rating, min_user, min_item, sep):
    """`bench data prepare`: a raw log into a dataset file, with the summary of what each rule dropped."""
    from bench.data import prepare

    if Path(out).suffix not in (".pkl", ".pickle"):
        raise BenchError(f"--out must end in .pkl, got {Path(out).name}")
    raw, summary = prepare.prepare(Path(log), user_col, item_col, time_col, rating_col, min_rating, min_user,
                                   min_item, sep)
    prepare.write(raw, Path(out))
    for line in summary.lines(Path(log).name):
        console.print(line, markup=False, highlight=False)
    console.print(f"wrote {out}; train on it with: bench run --models sasrec --dataset {out}", markup=False,
                  highlight=False)


def data_list(data_dir):
    """`bench data list`: each dataset: present or not, and its statistics."""
    from bench import data

    directory = data.data_dir(data_dir)
    table = Table(title=f"datasets in {directory}")
    for col in ("name", "present", "users", "items", "interactions", "avg length", "density"):
        table.add_column(col, justify="left" if col in ("name", "present") else "right")
    missing = []
    for name in (*data.NAMED, *data.BUILTIN):
        path = directory / f"{name}.pkl"
        if name in data.NAMED and not path.exists():
            table.add_row(name, "no", *["-"] * 5)
            missing.append(name)
            continue
        try:
            st = data.resolve(name, directory).stats()
        except BenchError as e:             # a file that is not the pinned one: say so, list the rest
            table.add_row(name, "damaged", *["-"] * 5)
            err_console.print(f"warning: {e}")
            continue
        table.add_row(name, "built in" if name in data.BUILTIN else "yes", f"{st['users']:,}", f"{st['items']:,}",
                      f"{st['interactions']:,}", f"{st['avg_length']:.2f}", f"{st['density']:.5f}")
    console.print(table)
    if missing:
        where = f" --data-dir {data_dir}" if data_dir else ""
        console.print(f"missing: {', '.join(missing)}; get one with `bench data fetch {missing[0]}{where}`, or point "
                      "--data-dir or BENCH_DATA_DIR at a folder that holds them")


def data_fetch(name, data_dir, base_url):
    """`bench data fetch`: download a dataset from its public address and verify its SHA-256."""
    from bench import data
    from bench.data import fetch

    path = fetch.fetch(name, data.data_dir(data_dir), base_url)
    console.print(f"{name}: verified and saved to {path}")


def torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def perf_table(result: dict) -> Table:
    m = result["machine"]
    peaks = ", ".join(f"{p} {g:,.0f}" for p, g in result["matmul_peak_gflops"].items())
    title = (f"{result['dataset']} on {m.get('gpu') or m.get('cpu', m['device'])}, {m['threads']} threads; "
             f"matmul peak GFLOP/s: {peaks}")
    table = Table(title=title, title_justify="left")
    cols = ("model", "precision", "train targets/s", "ms/step", "matmul GFLOP/s", "% of peak",
            "eval users/s", "peak MiB", "valid NDCG@10")
    for col in cols:
        table.add_column(col, justify="left" if col in ("model", "precision") else "right")

    def fmt(row, key, spec):
        return format(row[key], spec) if row.get(key) is not None else "-"

    for r in result["rows"]:
        frac = f"{100 * r['train_fraction_of_peak']:.1f}" if "train_fraction_of_peak" in r else "-"
        table.add_row(r["model"], r["precision"], fmt(r, "train_targets_per_s", ",.0f"), fmt(r, "ms_per_step", ".0f"),
                      fmt(r, "train_gflops", ",.1f"), frac, fmt(r, "eval_users_per_s", ",.0f"),
                      fmt(r, "peak_memory_mib", ",.0f"), fmt(r, "valid_ndcg@10", ".4f"))
    return table


def recommend(out, run_dir, run_id, runs, users, k, exclude_seen, device, data_dir):
    """`bench recommend`: the top-k items per user of a finished run, written to a file."""
    from bench.eval import recommend as rec

    if (run_dir is None) == (run_id is None):
        raise BenchError("give a run folder or --run-id (one of them)")
    if out.suffix not in rec.FORMATS:
        raise BenchError(f"--out {out}: give a {' or '.join(rec.FORMATS)} file")
    if out.is_dir():
        raise BenchError(f"--out {out} is a folder; give a file")
    output_dir(out.parent)
    folder, record = rec.find_record(run_dir, run_id, runs)
    rows, short = rec.recommend(folder, record, k, exclude_seen, users, device, str(data_dir) if data_dir else None)
    if not rows:
        raise BenchError(f"no candidate items for the chosen users (every item is among their seen ones); "
                         f"nothing written to {out}")
    rec.write(rows, out)
    if short:
        err_console.print(f"note: {short:,} user{'s' * (short != 1)} had fewer than {k} items left to recommend "
                          "(seen items removed): fewer rows for them")
    console.print(f"{out}: top {k} of {len({r[0] for r in rows}):,} users from {record['model']} "
                  f"{record['dataset']} seed {record['seed']} (run {record['run_id']})")


def show_plan(requests, jobs: int, dry_run: bool, labels: list[str] | None = None, jobs_flag: str = "--jobs",
              threads: str = "") -> list:
    """The plan table, on stderr (stdout keeps the results table); printed before any grid with work left.
    labels: a first column naming each run (a study's point)."""
    from bench.runs import plan

    rows = plan.plan(requests)
    for row, text in zip(rows, labels or []):
        row.label = text
    if not dry_run and all(r.state == "finished" for r in rows):
        return rows
    if not dry_run:         # kept beside the results, so that `bench status` sets each estimate beside the actual
        plan.record(requests, rows)
    table, hints = plan.table(rows, jobs, os.cpu_count() or 1, jobs_flag)
    target = console if dry_run else err_console
    target.print(table)
    for folder in sorted({os.path.realpath(r.out) for r in requests}):
        target.print(f"output: {folder}", markup=False, highlight=False)
    if threads:
        target.print(f"threads: {threads}", markup=False, highlight=False)
    for hint in hints:
        target.print(f"faster: {hint}")
    return rows

