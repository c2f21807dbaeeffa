"""`bench run`'s options, declared once: name, type, default, flag and help of each in one frozen record.

The Typer command is built from this record (`command`), `bench.cli.commands.run` and the Python API
(`bench.api.run`) take it, and an experiment file replaces its grid options (those marked GRID). A new
option is one line here and its use where the runs are built. Torch-free.
"""
from __future__ import annotations

import dataclasses
import inspect
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, List, Optional

import typer

from bench.cli.options import Cutoff, DataDir, Device, Log, Order, Split, Threads

GRID = "grid"        # marks an option an experiment file sets: given beside --experiment it is a mistake


@dataclass(frozen=True)
class RunOptions:
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", help="beauty, toys, ml-1m, synthetic, or a .pkl/.tsv path."), GRID] = None
    models: Annotated[Optional[str], typer.Option(
        "--models", help="Comma-separated model names, or 'all' (the default)."), GRID] = None
    seeds: Annotated[Optional[str], typer.Option(
        "--seeds", help="Number of seeds (0..N-1) or a comma list (0,2; '2,' is seed 2 alone). [default: 1]",
        show_default=False), GRID] = None
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Override every model's epoch budget."),
                      GRID] = None
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Output folder (results.jsonl, runs/). [default: runs]", show_default=False)] = None
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel worker processes.")] = 1
    device: Device = "auto"
    max_len: Annotated[Optional[int], typer.Option(
        "--max-len", help="History length (last items kept). [default: 50]", show_default=False), GRID] = None
    exclude_seen: Annotated[bool, typer.Option(
        "--exclude-seen", help="Remove history items from the candidates."), GRID] = False
    sets: Annotated[List[str], typer.Option(
        "--set", help="Override a field: MODEL.FIELD=VALUE (repeatable)."), GRID] = field(default_factory=list)
    force: Annotated[bool, typer.Option("--force", help="Rerun finished runs.")] = False
    data_dir: DataDir = None
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="A saved config (e.g. best.json from `bench tune`).")] = None
    backend: Annotated[str, typer.Option("--backend", help="local (processes on this machine) or dask.")] = "local"
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", help="Dask scheduler address, for --backend dask.")] = None
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the plan (each run's state and time estimate) and exit.")] = False
    experiment: Annotated[Optional[Path], typer.Option(
        "--experiment", help="A TOML file that sets the grid (models, datasets, seeds, protocol, --set, out).")
    ] = None
    threads: Threads = 0
    log: Log = "none"
    split: Annotated[Split, GRID] = "leave-one-out"
    cutoff: Annotated[Cutoff, GRID] = 0.9
    order: Annotated[Order, GRID] = "chronological"

    def __post_init__(self):
        object.__setattr__(self, "sets", list(self.sets))

    def replace(self, **changes) -> "RunOptions":
        return dataclasses.replace(self, **changes)

    def grid_given(self) -> list[str]:
        """The flags of grid options given away from their defaults (a clash beside --experiment)."""
        default = RunOptions()
        return [flag(name) for name in grid_names() if getattr(self, name) != getattr(default, name)]


def _hints(cls) -> dict:
    return typing.get_type_hints(cls, include_extras=True)


def grid_names() -> list[str]:
    return [name for name, hint in _hints(RunOptions).items() if GRID in getattr(hint, "__metadata__", ())]


def flag(name: str) -> str:
    """The command-line flag of an option ('max_len' -> '--max-len')."""
    for meta in getattr(_hints(RunOptions)[name], "__metadata__", ()):
        if isinstance(meta, typer.models.OptionInfo):     # in Annotated, the first flag is held as `default`
            decls = [d for d in (meta.default, *meta.param_decls) if isinstance(d, str) and d.startswith("-")]
            if decls:
                return decls[0]
    return "--" + name.replace("_", "-")


def command(options: type, target: Callable, name: str) -> Callable:
    """A Typer command whose parameters are the fields of the dataclass `options` (their annotations carry
    the flags and help; a field without a default is required); it calls `target(options(**values))` and
    takes its help from target's docstring."""
    hints = _hints(options)
    own = options.__dict__.get("__annotations__", {})
    params = []
    # a subclass's own options first in the help, then those it shares with its base
    for f in sorted(dataclasses.fields(options), key=lambda f: f.name not in own):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = inspect.Parameter.empty
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name],
                                        default=default))

    def cli(**values):
        return target(options(**values))

    cli.__signature__ = inspect.Signature(params)
    cli.__annotations__ = {p.name: p.annotation for p in params}
    cli.__name__ = cli.__qualname__ = name
    cli.__doc__ = target.__doc__
    return cli
