"""Progress display for the training loop: rich bars on a terminal, plain lines in a log, or nothing."""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class NullProgress:
    def start_epoch(self, epoch: int, epochs: int, n_batches: int) -> None: ...
    def advance(self, loss: float) -> None: ...
    def evaluated(self, ndcg10: float) -> None: ...
    def close(self) -> None: ...


class RichProgress(NullProgress):
    """One bar per run: epoch, batch, ETA, running loss, latest validation NDCG@10."""

    def __init__(self, label: str, console: Console | None = None):
        self.label = label
        self.bar = Progress(
            TextColumn("[bold]{task.fields[label]}[/] ep {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  val ndcg@10 {task.fields[val]}"),
            console=console,
            transient=True,
        )
        self.task = None
        self.val = "-"
        self.loss = 0.0
        self.bar.start()

    def start_epoch(self, epoch: int, epochs: int, n_batches: int) -> None:
        fields = dict(label=self.label, epoch=f"{epoch}/{epochs}", loss=self.loss, val=self.val)
        if self.task is None:
            self.task = self.bar.add_task("", total=n_batches, **fields)
        else:
            self.bar.reset(self.task, total=n_batches, **fields)

    def advance(self, loss: float) -> None:
        self.loss = 0.9 * self.loss + 0.1 * loss if self.loss else loss
        self.bar.update(self.task, advance=1, loss=self.loss)

    def evaluated(self, ndcg10: float) -> None:
        self.val = f"{ndcg10:.4f}"
        if self.task is not None:
            self.bar.update(self.task, val=self.val)

    def close(self) -> None:
        self.bar.stop()


class LineProgress(NullProgress):
    """One flushed line per validation, for logs (nohup, batch schedulers, parallel workers),
    and a line every `every` seconds inside an epoch that takes longer.

    A rich bar writes nothing once stderr is not a terminal, so a run of several hours
    (an ML-1M diffusion epoch on a CPU core is one) would otherwise be silent until it ends.
    """

    def __init__(self, label: str, stream=None, every: float = 600.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.every = every
        self.epoch, self.epochs, self.total, self.n, self.n_batches = 0, 0, 0.0, 0, 0
        self.t0 = self.last = time.perf_counter()

    def start_epoch(self, epoch: int, epochs: int, n_batches: int) -> None:
        self.epoch, self.epochs, self.total, self.n, self.n_batches = epoch, epochs, 0.0, 0, n_batches

    def advance(self, loss: float) -> None:
        self.total += loss
        self.n += 1
        now = time.perf_counter()
        if now - self.last >= self.every and self.n < self.n_batches:
            self.last = now
            print(f"{self.label}: epoch {self.epoch}/{self.epochs}  batch {self.n}/{self.n_batches}  "
                  f"loss {self.total / self.n:.4f}  {now - self.t0:.0f} s", file=self.stream, flush=True)

    def evaluated(self, ndcg10: float) -> None:
        loss = self.total / self.n if self.n else float("nan")
        self.last = time.perf_counter()
        print(f"{self.label}: epoch {self.epoch}/{self.epochs}  loss {loss:.4f}  val ndcg@10 {ndcg10:.4f}  "
              f"{self.last - self.t0:.0f} s", file=self.stream, flush=True)


def make(kind: str, label: str) -> NullProgress:
    """`bar`, `lines` or `none`."""
    if kind == "bar":
        return RichProgress(label)
    if kind == "lines":
        return LineProgress(label)
    return NullProgress()
