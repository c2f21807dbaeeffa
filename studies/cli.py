"""`bench ablate` and `bench tune`: thin commands over studies.runner; optuna is imported inside them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from bench.errors import BenchError
from bench.cli.options import Cutoff, DataDir, Device, Log, Order, Split, Threads
from bench.cli.paths import output_dir
from bench.runs.threads import per_process

# the options both study commands take, declared once
Storage = Annotated[Optional[str], typer.Option(
    "--storage", help="postgresql://... (many machines) or a journal file (default: one in the study folder).")]
Workers = Annotated[int, typer.Option("--workers", help="Worker processes on this machine, sharing the storage.")]


@dataclass(frozen=True, kw_only=True)
class StudyOptions:
    """What `bench ablate` and `bench tune` share: the data, the run every trial starts from, the protocol
    of `bench run` (a study's numbers sit beside the verdict's when run as it was), where and how to run."""
    dataset: Annotated[str, typer.Option("--dataset", help="beauty, toys, ml-1m, synthetic, or a path.")]
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Epoch budget of every run.")] = None
    sets: Annotated[List[str], typer.Option(
        "--set", help="MODEL.FIELD=VALUE for every run of the study (repeatable).")] = field(default_factory=list)
    storage: Storage = None
    workers: Workers = 1
    out: Annotated[Path, typer.Option("--out", help="Results folder (results.jsonl, studies/).")] = Path("runs")
    device: Device = "auto"
    data_dir: DataDir = None
    max_len: Annotated[int, typer.Option("--max-len", help="History length (last items kept).")] = 50
    exclude_seen: Annotated[bool, typer.Option(
        "--exclude-seen", help="Remove history items from the candidates (selection and the stored test).")] = False
    split: Split = "leave-one-out"
    cutoff: Cutoff = 0.9
    order: Order = "chronological"
    threads: Threads = 0
    log: Log = "none"

    def base(self, model: str, threads: int):
        """The run every trial of a study starts from (a RunSpec at seed 0), every option checked before
        any work."""
        from bench import data, registry
        from bench.cli.commands import announce
        from bench.eval import splits
        from bench.eval.protocol import Protocol
        from bench.registry.overrides import parse_sets
        from bench.runs import spec as runspec
        from bench.train import tblog

        output_dir(self.out)
        registry.model_class(model)
        base = parse_sets(self.sets, [model]).get(model, {})
        if self.max_len < 1:
            raise BenchError("--max-len must be at least 1")
        if self.epochs is not None:
            if self.epochs < 1:
                raise BenchError("--epochs must be at least 1")
            base.setdefault("epochs", str(self.epochs))
        tblog.check(self.log)
        splits.check(self.split, self.order, self.cutoff)
        protocol = Protocol(max_len=self.max_len, exclude_seen=self.exclude_seen, split=self.split,
                            order=self.order, cutoff=self.cutoff)
        resolved = runspec.resolve(model, self.dataset, protocol, base)     # a bad --set fails here
        announce(data.resolve(self.dataset, self.data_dir, fetch_missing=True), protocol)
        return runspec.RunSpec(model=resolved, data=runspec.DataRef.of(self.dataset, self.data_dir),
                               protocol=protocol, seed=0, sets=base, out=str(self.out), device=self.device,
                               threads=threads, log=self.log)

    def storage_url(self, study_id: str) -> str:
        return self.storage or str(self.out / "studies" / study_id / "journal.log")


@dataclass(frozen=True, kw_only=True)
class AblateOptions(StudyOptions):
    name: Annotated[str, typer.Argument(
        help="noisy_target, offset_noise, diffusion_steps, attention, code_fidelity, shuffled, "
             "or a name for --grid.")]
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Model to ablate (default: the study's, diffurecsys; diffurec for code_fidelity, "
                        "sasrec for shuffled).")] = None
    seeds: Annotated[str, typer.Option("--seeds", help="Number of seeds (0..N-1) or a comma list.")] = "2"
    grid: Annotated[List[str], typer.Option(
        "--grid", help="FIELD=V1,V2: keep these values of a study's field, or build a grid of your own "
                       "(repeatable).")] = field(default_factory=list)
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the plan (each point x seed: state and time estimate) and exit.")] = False


@dataclass(frozen=True, kw_only=True)
class TuneOptions(StudyOptions):
    model: Annotated[str, typer.Argument(help="A registered model with a search space.")]
    trials: Annotated[int, typer.Option("--trials", help="Trials in the study (a rerun completes it).")] = 20
    objectives: Annotated[str, typer.Option(
        "--objectives", help="ndcg, or ndcg,latency for a Pareto front.")] = "ndcg"
    pruner: Annotated[str, typer.Option("--pruner", help="median, hyperband or none.")] = "median"
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampler and of every run.")] = 0


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


def ablate_command(o: AblateOptions):
    """Run a named ablation (a grid x seeds) as a resumable Optuna study; print its table."""
    from bench.cli.options import parse_seeds
    from bench.studies import ablation, grid as grids, runner
    from bench.studies.rescore import rescore
    from bench.studies.storage import check as check_storage, shown

    if o.workers < 1:
        raise BenchError("--workers must be at least 1")
    study = ablation.find(o.name, o.model, ablation.parse_grid(o.grid))
    if o.storage:
        check_storage(o.storage)          # before the plan's timing
    each, why = per_process(o.threads, o.workers)
    plan = grids.GridPlan.of(study, o.base(study.model, each), parse_seeds(o.seeds))
    show_grid_plan(plan, o.workers, o.dry_run, why)
    if o.dry_run:
        return
    url = o.storage_url(plan.study_id)
    finished = runner.run_study(plan, url, o.workers)
    rescore(study, plan, o.device)
    header, rows = grids.table_rows(plan, finished)
    _print_table(f"{plan.name} on {o.dataset} ({study.model}), percent, mean ± std over seeds; "
                 f"* = best validation NDCG@10", header, rows)
    typer.echo(f"study {plan.study_id}: {shown(url)}; results: {o.out / 'results.jsonl'}")


def tune_command(o: TuneOptions):
    """Tune a model on validation NDCG@10 with seeded TPE; save the best config as best.json."""
    from bench.studies import runner, tune as tuning
    from bench.studies.storage import check as check_storage, shown

    if o.trials < 1 or o.workers < 1:
        raise BenchError("--trials and --workers must be at least 1")
    if o.pruner not in tuning.PRUNERS:
        raise BenchError(f"unknown --pruner '{o.pruner}'; choose from {', '.join(tuning.PRUNERS)}")
    if o.storage:
        check_storage(o.storage)
    base = o.base(o.model, per_process(o.threads, o.workers)[0])
    plan = tuning.TunePlan.of(base, o.trials, tuning.parse_objectives(o.objectives), o.pruner, o.seed)
    url = o.storage_url(plan.study_id)
    study = runner.run_study(plan, url, o.workers)
    every = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    _print_table(f"tune {o.model} on {o.dataset}: trials", *tuning.trial_rows(plan, study, every))
    if len(plan.objectives) > 1:
        front = tuning.best_trials(plan, study)
        _print_table("Pareto front: validation NDCG@10 against inference ms per user",
                     *tuning.trial_rows(plan, study, front))
    best_path = o.out / "studies" / plan.study_id / "best.json"
    best = tuning.save_best(plan, study, best_path)
    default = [t for t in tuning.finished(study) if t.params == plan.first[0]]
    if default:
        typer.echo(f"defaults (trial {default[0].number}): valid NDCG@10 {100 * default[0].values[0]:.2f}%")
    typer.echo(f"best (trial {best.number}): valid NDCG@10 {100 * best.values[0]:.2f}%; "
               f"saved to {best_path}; reuse with: bench run --config {best_path} --dataset {o.dataset}")
    typer.echo(f"study {plan.study_id}: {shown(url)}")


def register(app: typer.Typer) -> None:
    from bench.cli.runoptions import command

    app.command("ablate")(command(AblateOptions, ablate_command, "ablate"))
    app.command("tune")(command(TuneOptions, tune_command, "tune"))
