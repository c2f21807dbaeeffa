"""How many compute threads each training process of a command takes. Torch-free.

`--threads N` gives N to every process. By default the cores are shared out: the cores not busy with
other work right now, divided by the processes the command starts (`--jobs`, `--workers`), at least
one each. A process never starts more compute threads than it was given: several processes each
spinning as many threads as there are cores ran 10-20x slower on a 2-core machine, not 2x.
"""
from __future__ import annotations

import os
import statistics
import time

from bench.errors import BenchError


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_elsewhere(samples: int = 3, gap: float = 0.1) -> int:
    """Cores other processes keep busy now: runnable tasks in /proc/loadavg, less this one (median of a
    few samples); 0 where the kernel does not say."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        counts.append(max(0, running - 1))
        if i + 1 < samples:
            time.sleep(gap)
    return int(statistics.median(counts))


def check(threads: int) -> None:
    if threads < 0:
        raise BenchError(f"--threads must be 0 (share the free cores) or more, got {threads}")


def per_process(threads: int, processes: int) -> tuple[int, str]:
    """(threads each process takes, why): `threads` when given (> 0), else this machine's free cores
    divided by `processes`."""
    check(threads)
    if threads:
        return threads, f"--threads {threads}"
    n, busy = cores(), busy_elsewhere()
    free = max(1, n - busy)
    each = max(1, free // max(processes, 1))
    why = f"{n} cores" + (f", {busy} busy with other work now" if busy else "")
    return each, f"{each} per process ({why}; --threads N to choose)"
