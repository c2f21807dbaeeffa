"""Command-line values shared by every command module (bench, studies, reports). Torch-free."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bench.errors import BenchError

# options several commands take, declared once
DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Dataset folder (else $BENCH_DATA_DIR, else the user cache).")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
Log = Annotated[str, typer.Option(
    "--log", help="Live curves of each run: none or tensorboard (<run folder>/tensorboard).")]
Threads = Annotated[int, typer.Option(
    "--threads", help="Compute threads per training process; 0 = the free cores divided by the processes.")]

# the protocol's split and history order (bench.eval.splits), for bench run, ablate and tune
Split = Annotated[str, typer.Option(
    "--split", help="leave-one-out, or temporal (a global cutoff in time; needs a dataset with timestamps).")]
Cutoff = Annotated[float, typer.Option(
    "--cutoff", help="--split temporal: the share of interactions before the test cutoff.")]
Order = Annotated[str, typer.Option(
    "--order", help="chronological, or shuffled (every history permuted per user: a control for order).")]

MAX_SEED = 2**31 - 1
MAX_SEEDS = 10_000          # seeds in one command, counted (--seeds 3) or listed (0,1,2)


def seed_list(spec: str, option: str) -> list[int]:
    """Seeds named one by one ('0,2'): each in [0, 2^31), at least one, duplicates dropped in order."""
    try:
        seeds = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise BenchError(f"bad {option} '{spec}'; give seeds like 0 or 0,2") from None
    if not seeds:
        raise BenchError(f"{option} '{spec}' names no seed; give seeds like 0 or 0,2")
    if len(seeds) > MAX_SEEDS:
        raise BenchError(f"{option} lists {len(seeds):,} seeds; at most {MAX_SEEDS:,}")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise BenchError(f"{option}: seed {bad[0]} is out of range; seeds are 0 to {MAX_SEED}")
    return list(dict.fromkeys(seeds))


def parse_seeds(spec: str) -> list[int]:
    """'3' -> [0, 1, 2]; '1,5,7' -> [1, 5, 7]."""
    if "," in spec:
        return seed_list(spec, "--seeds")
    try:
        n = int(spec)
    except ValueError:
        raise BenchError(f"bad --seeds '{spec}'; give a count (3) or a list (0,1,2)") from None
    if not 1 <= n <= MAX_SEEDS:
        raise BenchError(f"--seeds must be a count from 1 to {MAX_SEEDS} or a list (0,1,2), got {n}")
    return list(range(n))


def parse_seed_list(spec: str) -> list[int]:
    """'0' -> [0]; '0,2' -> [0, 2]: seeds named one by one."""
    return seed_list(spec, "--seed")
