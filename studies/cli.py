"""`bench ablate` and `bench tune`: thin commands over studies.runner; optuna is imported inside them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from bench.errors import BenchError
from bench.cli.options import Cutoff, DataDir, Device, Log, Order, Split, Threads
from bench.cli.paths import output_dir
from bench.runs.threads import per_process

# the options both study commands take
Storage = Annotated[Optional[str], typer.Option(
    "--storage", help="postgresql://... (many machines) or a journal file (default: one in the study folder).")]
Workers = Annotated[int, typer.Option("--workers", help="Worker processes on this machine, sharing the storage.")]
Dataset = Annotated[str, typer.Option("--dataset", help="beauty, toys, ml-1m, synthetic, or a path.")]
Out = Annotated[Path, typer.Option("--out", help="Results folder (results.jsonl, studies/).")]
# the protocol options of `bench run`: a study's numbers sit beside the verdict's when run as it was
MaxLen = Annotated[int, typer.Option("--max-len", help="History length (last items kept).")]
ExcludeSeen = Annotated[bool, typer.Option(
    "--exclude-seen", help="Remove history items from the candidates (selection and the stored test).")]


def _base(model: str, dataset: str, out: Path, sets: list[str], epochs: int | None, device: str,
          data_dir: Path | None, max_len: int = 50, exclude_seen: bool = False, threads: int = 0,
          log: str = "none", split: str = "leave-one-out", cutoff: float = 0.9, order: str = "chronological"):
    """The run every trial of a study starts from (a RunSpec at seed 0), every option checked before any work."""
    from bench.train import tblog

    from bench import data, registry
    from bench.eval.protocol import Protocol
    from bench.registry.overrides import parse_sets
    from bench.runs import spec as runspec

    output_dir(out)
    registry.model_class(model)
    base = parse_sets(sets, [model]).get(model, {})
    if max_len < 1:
        raise BenchError("--max-len must be at least 1")
    if epochs is not None:
        if epochs < 1:
            raise BenchError("--epochs must be at least 1")
        base.setdefault("epochs", str(epochs))
    from bench.cli.commands import announce

    from bench.eval import splits

    tblog.check(log)
    splits.check(split, order, cutoff)
    protocol = Protocol(max_len=max_len, exclude_seen=exclude_seen, split=split, order=order, cutoff=cutoff)
    resolved = runspec.resolve(model, dataset, protocol, base)     # a bad --set fails here, before any work
    announce(data.resolve(dataset, data_dir, fetch_missing=True), protocol)
    return runspec.RunSpec(model=resolved, data=runspec.DataRef.of(dataset, data_dir), protocol=protocol, seed=0,
                           sets=base, out=str(out), device=device, threads=threads, log=log)


def _storage(storage: str | None, out: Path, study_id: str) -> str:
    return storage or str(out / "studies" / study_id / "journal.log")


def _print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table
    from bench.studies.runner import stdout_console

    table = Table(title=title, title_justify="left")
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 or col in ("state",) else "right")
    for row in rows:
        table.add_row(*row)
    stdout_console().print(table)


def show_grid_plan(plan, workers: int, dry_run: bool, threads: str = "") -> None:
    """The plan table of a grid study: each point x seed, finished, resumable or new, with estimates."""
    from bench.cli.commands import show_plan

    show_plan(plan.runs(), workers, dry_run, labels=[lab for lab in plan.labels for _ in plan.seeds], jobs_flag="--workers",
              threads=threads)


def ablate_command(name, dataset, model, seeds, epochs, grid, sets, storage, workers, out, device, data_dir,
                   dry_run=False, max_len=50, exclude_seen=False, threads=0, log="none", split="leave-one-out",
                   cutoff=0.9, order="chronological"):
    """`bench ablate`: run a named ablation (a grid x seeds) as a resumable Optuna study; print its table."""
    from bench.cli.options import parse_seeds
    from bench.studies import ablation, grid as grids, runner
    from bench.studies.rescore import rescore
    from bench.studies.storage import check as check_storage, shown

    if workers < 1:
        raise BenchError("--workers must be at least 1")
    study = ablation.find(name, model, ablation.parse_grid(grid))
    if storage:
        check_storage(storage)          # before the plan's timing
    each, why = per_process(threads, workers)
    base = _base(study.model, dataset, out, sets, epochs, device, data_dir, max_len, exclude_seen, each, log,
              split, cutoff, order)
    plan = grids.GridPlan.of(study, base, parse_seeds(seeds))
    show_grid_plan(plan, workers, dry_run, why)
    if dry_run:
        return
    url = _storage(storage, out, plan.study_id)
    finished = runner.run_study(plan, url, workers)
    rescore(study, plan, device)
    header, rows = grids.table_rows(plan, finished)
    _print_table(f"{plan.name} on {dataset} ({study.model}), percent, mean ± std over seeds; "
                 f"* = best validation NDCG@10", header, rows)
    typer.echo(f"study {plan.study_id}: {shown(url)}; results: {out / 'results.jsonl'}")


def tune_command(model, dataset, trials, epochs, objectives, pruner, seed, sets, storage, workers, out,
                 device, data_dir, max_len=50, exclude_seen=False, threads=0, log="none", split="leave-one-out",
                 cutoff=0.9, order="chronological"):
    """`bench tune`: tune a model on validation NDCG@10 with seeded TPE; save the best config as best.json."""
    from bench.studies import runner, tune as tuning
    from bench.studies.storage import check as check_storage, shown

    if trials < 1 or workers < 1:
        raise BenchError("--trials and --workers must be at least 1")
    if pruner not in tuning.PRUNERS:
        raise BenchError(f"unknown --pruner '{pruner}'; choose from {', '.join(tuning.PRUNERS)}")
    if storage:
        check_storage(storage)
    base = _base(model, dataset, out, sets, epochs, device, data_dir, max_len, exclude_seen,
              per_process(threads, workers)[0], log, split, cutoff, order)
    plan = tuning.TunePlan.of(base, trials, tuning.parse_objectives(objectives), pruner, seed)
    url = _storage(storage, out, plan.study_id)
    study = runner.run_study(plan, url, workers)
    every = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    _print_table(f"tune {model} on {dataset}: trials", *tuning.trial_rows(plan, study, every))
    if len(plan.objectives) > 1:
        front = tuning.best_trials(plan, study)
        _print_table("Pareto front: validation NDCG@10 against inference ms per user",
                     *tuning.trial_rows(plan, study, front))
    best_path = out / "studies" / plan.study_id / "best.json"
    best = tuning.save_best(plan, study, best_path)
    default = [t for t in tuning.finished(study) if t.params == plan.first[0]]
    if default:
        typer.echo(f"defaults (trial {default[0].number}): valid NDCG@10 {100 * default[0].values[0]:.2f}%")
    typer.echo(f"best (trial {best.number}): valid NDCG@10 {100 * best.values[0]:.2f}%; "
               f"saved to {best_path}; reuse with: bench run --config {best_path} --dataset {dataset}")
    typer.echo(f"study {plan.study_id}: {shown(url)}")


def register(app: typer.Typer) -> None:
    @app.command()
    def ablate(
        name: Annotated[str, typer.Argument(
            help="noisy_target, offset_noise, diffusion_steps, attention, code_fidelity, shuffled, "
                 "or a name for --grid.")],
        dataset: Dataset,
        model: Annotated[Optional[str], typer.Option(
            "--model",
            help="Model to ablate (default: the study's, diffurecsys; diffurec for code_fidelity, "
                 "sasrec for shuffled).")] = None,
        seeds: Annotated[str, typer.Option("--seeds", help="Number of seeds (0..N-1) or a comma list.")] = "2",
        epochs: Annotated[Optional[int], typer.Option("--epochs", help="Epoch budget of every run.")] = None,
        grid: Annotated[List[str], typer.Option(
            "--grid",
            help="FIELD=V1,V2: keep these values of a study's field, or build a grid of your own (repeatable).")] = [],
        sets: Annotated[List[str], typer.Option(
            "--set", help="MODEL.FIELD=VALUE for every run (repeatable).")] = [],
        storage: Storage = None,
        workers: Workers = 1,
        out: Out = Path("runs"),
        device: Device = "auto",
        data_dir: DataDir = None,
        max_len: MaxLen = 50,
        exclude_seen: ExcludeSeen = False,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Print the plan (each point x seed: state and time estimate) and exit.")] = False,
        threads: Threads = 0,
        log: Log = "none",
        split: Split = "leave-one-out",
        cutoff: Cutoff = 0.9,
        order: Order = "chronological",
    ):
        """Run a named ablation (a grid x seeds) as a resumable Optuna study; print its table."""
        ablate_command(
            name=name,
            dataset=dataset,
            model=model,
            seeds=seeds,
            epochs=epochs,
            grid=grid,
            sets=sets,
            storage=storage,
            workers=workers,
            out=out,
            device=device,
            data_dir=data_dir,
            dry_run=dry_run,
            max_len=max_len,
            exclude_seen=exclude_seen,
            threads=threads,
            log=log,
            split=split,
            cutoff=cutoff,
            order=order,
        )

    @app.command()
    def tune(
        model: Annotated[str, typer.Argument(help="A registered model with a search space.")],
        dataset: Dataset,
        trials: Annotated[int, typer.Option("--trials", help="Trials in the study (a rerun completes it).")] = 20,
        epochs: Annotated[Optional[int], typer.Option("--epochs", help="Epoch budget of every trial.")] = None,
        objectives: Annotated[str, typer.Option(
            "--objectives", help="ndcg, or ndcg,latency for a Pareto front.")] = "ndcg",
        pruner: Annotated[str, typer.Option("--pruner", help="median, hyperband or none.")] = "median",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the sampler and of every run.")] = 0,
        sets: Annotated[List[str], typer.Option(
            "--set", help="MODEL.FIELD=VALUE fixed in every trial (repeatable).")] = [],
        storage: Storage = None,
        workers: Workers = 1,
        out: Out = Path("runs"),
        device: Device = "auto",
        data_dir: DataDir = None,
        max_len: MaxLen = 50,
        exclude_seen: ExcludeSeen = False,
        threads: Threads = 0,
        log: Log = "none",
        split: Split = "leave-one-out",
        cutoff: Cutoff = 0.9,
        order: Order = "chronological",
    ):
        """Tune a model on validation NDCG@10 with seeded TPE; save the best config as best.json."""
        tune_command(
            model=model,
            dataset=dataset,
            trials=trials,
            epochs=epochs,
            objectives=objectives,
            pruner=pruner,
            seed=seed,
            sets=sets,
            storage=storage,
            workers=workers,
            out=out,
            device=device,
            data_dir=data_dir,
            max_len=max_len,
            exclude_seen=exclude_seen,
            threads=threads,
            log=log,
            split=split,
            cutoff=cutoff,
            order=order,
        )
