"""The `bench` command: Typer signatures only; each command calls its plain function in commands.py."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console

from bench.errors import BenchError, interrupt_said
from bench.cli import commands
from bench.cli.options import DataDir, Device, Threads
from bench.cli.runoptions import RunOptions, command

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Benchmark and ablate sequential recommenders under one protocol.")
data_app = typer.Typer(no_args_is_help=True, help="List and fetch datasets.")
app.add_typer(data_app, name="data")



app.command("run")(command(RunOptions, commands.run, "run"))


@app.command()
def results(
    out: Annotated[Path, typer.Argument(help="A folder holding results.jsonl.")] = Path("runs"),
    studies: Annotated[bool, typer.Option(
        "--studies", help="Include the runs of studies (bench ablate, bench tune), left out by default.")] = False,
):
    """Show mean +- std over seeds of every run stored in a results folder (study runs with --studies)."""
    commands.results(out=out, studies=studies)


@app.command()
def status(
    out: Annotated[Path, typer.Argument(help="A results folder (the --out of bench run).")] = Path("runs"),
):
    """Every run in a results folder: finished, training now, stopped (resumable) or started."""
    commands.status(out=out)


@app.command()
def export(
    sources: Annotated[List[Path], typer.Argument(help="Results folders to copy from (searched recursively).")],
    dest: Annotated[Path, typer.Option("--to", help="The folder to copy into (created; added to if it exists).")],
):
    """Copy finished runs without their checkpoints (records, histories, per-user test ranks gzipped):
    a folder `bench report` reads like the original, small enough to keep in git or share."""
    commands.export(sources=sources, dest=dest)


@app.command("eval")
def eval_runs(
    models: Annotated[str, typer.Option("--models", help="Comma-separated model names.")],
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset the runs trained on.")],
    out: Annotated[Path, typer.Option("--out", help="The results folder of the runs.")] = Path("runs"),
    seed: Annotated[Optional[str], typer.Option(
        "--seed", help="The seeds to evaluate, e.g. 0 or 0,2; default all.")] = None,
    run_id: Annotated[Optional[str], typer.Option(
        "--run-id", help="Only the run whose id starts with this.")] = None,
    sets: Annotated[List[str], typer.Option(
        "--set", help="An evaluation-time field: MODEL.FIELD=VALUE (repeatable).")] = [],
    exclude_seen: Annotated[Optional[bool], typer.Option(
        "--exclude-seen/--include-seen", help="Change whether history items are ranked.")] = None,
    split: Annotated[str, typer.Option("--split", help="valid, test or both.")] = "both",
    device: Device = "auto",
    data_dir: DataDir = None,
    threads: Threads = 0,
):
    """Score finished runs again from their best checkpoint with evaluation-time settings
    changed (e.g. --set diffurec.eval_samples=4); appends to <out>/evals.jsonl."""
    commands.eval_runs(
        models=models,
        dataset=dataset,
        out=out,
        seed=seed,
        run_id=run_id,
        sets=sets,
        exclude_seen=exclude_seen,
        split=split,
        device=device,
        data_dir=data_dir,
        threads=threads,
    )


@app.command()
def perf(
    models: Annotated[str, typer.Option("--models", help="Comma-separated model names, or 'all'.")] = "all",
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset name or path.")] = "beauty",
    device: Device = "auto",
    precision: Annotated[str, typer.Option("--precision", help="Comma-separated: fp32, bf16.")] = "fp32,bf16",
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", help="Also write the figures here as JSON.")] = None,
    train_steps: Annotated[int, typer.Option(
        "--train-steps", help="Timed training steps (after the warm-up).")] = 20,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed training steps first.")] = 3,
    eval_users: Annotated[int, typer.Option(
        "--eval-users", help="Test (and validation) users sampled for evaluation.")] = 1024,
    parity_steps: Annotated[int, typer.Option(
        "--parity-steps", help="Training steps before the parity NDCG@10.")] = 100,
    threads: Annotated[int, typer.Option("--threads", help="torch threads; 0 = the default (one per core).")] = 0,
    sets: Annotated[List[str], typer.Option(
        "--set", help="Override a field: MODEL.FIELD=VALUE (repeatable).")] = [],
    data_dir: DataDir = None,
):
    """Training and evaluation throughput, peak memory and precision parity of each model."""
    commands.perf(
        models=models,
        dataset=dataset,
        device=device,
        precision=precision,
        json_path=json_path,
        train_steps=train_steps,
        warmup=warmup,
        eval_users=eval_users,
        parity_steps=parity_steps,
        threads=threads,
        sets=sets,
        data_dir=data_dir,
    )






@app.command()
def recommend(
    out: Annotated[Path, typer.Option("--out", help="The file to write: .csv (or .parquet, with pyarrow).")],
    run_dir: Annotated[Optional[Path], typer.Argument(
        help="A finished run's folder, <out>/runs/<dataset>/<model>/seed<N>-<run id>.")] = None,
    run_id: Annotated[Optional[str], typer.Option(
        "--run-id", help="Instead of RUN_DIR: a run id (or a unique prefix) in --runs.")] = None,
    runs: Annotated[Path, typer.Option("--runs", help="The results folder holding --run-id.")] = Path("runs"),
    users: Annotated[Optional[Path], typer.Option(
        "--users", help="A file of original user ids, one per line (default: every user).")] = None,
    k: Annotated[int, typer.Option("--k", help="Items per user.")] = 20,
    exclude_seen: Annotated[Optional[bool], typer.Option(
        "--exclude-seen/--include-seen", help="Remove a user's history items (default: as the run's protocol).")] = None,
    device: Device = "auto",
    data_dir: DataDir = None,
):
    """Write the top-k items per user from a finished run's best checkpoint, scored as the test split is."""
    commands.recommend(out=out, run_dir=run_dir, run_id=run_id, runs=runs, users=users, k=k,
                       exclude_seen=exclude_seen, device=device, data_dir=data_dir)


@app.command("models")
def list_models(
    name: Annotated[Optional[str], typer.Argument(
        help="Models, comma-separated, or 'all': every field of each (default: one line per model).")] = None,
):
    """One line per registered model (paper, what it is, dataset presets); with NAME, every config
    field of those models with its default, its dataset presets and what it means."""
    commands.list_models(name=name)


@data_app.command("list")
def data_list(
    data_dir: DataDir = None,
):
    """Each dataset: present or not, and its statistics."""
    commands.data_list(data_dir=data_dir)


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="beauty, toys or ml-1m.")],
    data_dir: DataDir = None,
    base_url: Annotated[Optional[str], typer.Option(
        "--base-url", help="Mirror holding <dir>/dataset.pkl.")] = None,
):
    """Download a dataset from its public address and verify its SHA-256."""
    commands.data_fetch(name=name, data_dir=data_dir, base_url=base_url)


@data_app.command("prepare")
def data_prepare(
    log: Annotated[Path, typer.Argument(help="The raw interaction log: .csv, .tsv/.txt, .parquet, or a RecBole .inter file.")],
    out: Annotated[Path, typer.Option("--out", help="The dataset file to write (NAME.pkl); `bench run --dataset NAME.pkl` reads it.")],
    user_col: Annotated[Optional[str], typer.Option("--user-col", help="User column (default: user; user_id in .inter).")] = None,
    item_col: Annotated[Optional[str], typer.Option("--item-col", help="Item column (default: item; item_id in .inter).")] = None,
    time_col: Annotated[Optional[str], typer.Option("--time-col", help="Time column, numbers or ISO-8601 (default: timestamp).")] = None,
    rating_col: Annotated[Optional[str], typer.Option("--rating-col", help="Rating column, for --min-rating (default: rating).")] = None,
    min_rating: Annotated[Optional[float], typer.Option("--min-rating", help="Keep rows rated at least this.")] = None,
    min_user: Annotated[int, typer.Option("--min-user", help="k-core: users need this many interactions (repeated with --min-item to a fixed point).")] = 0,
    min_item: Annotated[int, typer.Option("--min-item", help="k-core: items need this many interactions.")] = 0,
    sep: Annotated[Optional[str], typer.Option("--sep", help="Field separator of a text log (default: ',' for .csv, tab otherwise).")] = None,
):
    """Turn a raw interaction log into a leave-one-out dataset file, and say what each rule dropped."""
    commands.data_prepare(log=log, out=out, user_col=user_col, item_col=item_col, time_col=time_col,
                          rating_col=rating_col, min_rating=min_rating, min_user=min_user, min_item=min_item, sep=sep)


# Commands kept beside the package they drive (studies/, reports/, ...). Each module
# defines `register(app)`, adds its commands there, and imports heavy libraries
# (optuna, matplotlib) inside the commands so `bench --help` stays fast.
EXTENSIONS: tuple[str, ...] = ("bench.studies.cli", "bench.reports.cli")
for _module in EXTENSIONS:
    importlib.import_module(_module).register(app)


def version(value: bool) -> None:
    if value:
        import bench

        typer.echo(f"bench {bench.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=version, is_eager=True, help="Print the version and exit.")] = False,
):
    """Benchmark and ablate sequential recommenders under one protocol."""


def main() -> None:
    """Every mistake, a user's or a command line's, is one `error:` line and exit code 2; Ctrl-C says how
    to go on."""
    import signal
    import warnings

    from typer._click import exceptions as cli_errors

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    # a warning is one line, as an error is (a skipped results line, a torn journal)
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    terminated: list[int] = []

    def on_term(signum, frame):         # SIGTERM (kill, a batch system's time limit) stops as Ctrl-C does
        terminated.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        code = app(standalone_mode=False, prog_name="bench")
    except BenchError as e:
        err.print(f"[red]error:[/] {e}")
        sys.exit(2)
    except cli_errors.NoArgsIsHelpError:
        sys.exit(2)                                  # the help is printed
    except cli_errors.UsageError as e:
        hint = f" (see bench {e.ctx.command_path.split(' ', 1)[1]} --help)" if e.ctx and " " in e.ctx.command_path \
            else " (see bench --help)"
        err.print(f"[red]error:[/] {e.format_message()}{hint}")
        sys.exit(2)
    except KeyboardInterrupt:
        code = 130
    if code == 130 and not interrupt_said():        # Typer turns Ctrl-C into exit code 130
        err.print("stopped; rerun the same command to resume from the last checkpoint")
    if code == 130 and terminated:
        code = 128 + signal.SIGTERM                 # the shell's code for a terminated process
    if code == 130 or terminated:
        stop_now(code if isinstance(code, int) else 0)
    sys.exit(code if isinstance(code, int) else 0)


def stop_now(code: int) -> None:
    """Exit with `code` after a Ctrl-C or SIGTERM. CPython remembers a KeyboardInterrupt that escaped a
    string `exec` (a namedtuple or dataclass being built during an import) and, at shutdown, kills the
    process with SIGINT whatever `sys.exit` asked for; exiting here, once the exit handlers have run,
    keeps the promised code (130, 143). A caller of `main()` in the same process is ended too, as by a
    signal, rather than handed a SystemExit."""
    import atexit
    import os
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):         # a second signal does not break the exit handlers
        signal.signal(sig, signal.SIG_IGN)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
