"""Progress display for the training loop: rich bars on a terminal, plain lines in a log, or nothing.

The epoch counter says when early stopping ends the run at the latest ("stop by 30") beside
the epoch budget, so a budget of 200 does not read as 200 epochs to go; validation metrics
are in %, as in the tables; the validation pass shows as its own phase.
"""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def epoch_text(epoch: int, epochs: int, stop_by: int | None) -> str:
    """'12 (stop by 30, budget 200)': the latest epoch early stopping allows without a new best."""
    if stop_by is None or stop_by >= epochs:
        return f"{epoch}/{epochs}"
    return f"{epoch} (stop by {stop_by}, budget {epochs})"


def pct(ndcg10: float) -> str:
    return f"{100 * ndcg10:.2f} %"


class NullProgress:
    def start_epoch(self, epoch: int, epochs: int, n_batches: int, stop_by: int | None = None) -> None: ...
    def advance(self, loss: float) -> None: ...
    def validating(self) -> None: ...
    def evaluated(self, ndcg10: float) -> None: ...
    def resumed(self, epoch: int) -> None: ...
    def close(self) -> None: ...


class RichProgress(NullProgress):
    """One bar per run: epoch, batch (or the validation phase), ETA, running loss, latest validation NDCG@10."""

    def __init__(self, label: str, console: Console | None = None):
        self.label = label
        self.console = console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]{task.fields[label]}[/] {task.fields[phase]} {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  val NDCG@10 {task.fields[val]}"),
            console=self.console,
            transient=True,
        )
        self.task = None
        self.val = "-"
        self.loss = 0.0
        self.bar.start()

    def start_epoch(self, epoch: int, epochs: int, n_batches: int, stop_by: int | None = None) -> None:
        fields = dict(label=self.label, phase="epoch", epoch=epoch_text(epoch, epochs, stop_by), loss=self.loss,
                      val=self.val)
        if self.task is None:
            self.task = self.bar.add_task("", total=n_batches, **fields)
        else:
            self.bar.reset(self.task, total=n_batches, **fields)

    def advance(self, loss: float) -> None:
        self.loss = 0.9 * self.loss + 0.1 * loss if self.loss else loss
        self.bar.update(self.task, advance=1, loss=self.loss)

    def validating(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, phase="validating after epoch")

    def evaluated(self, ndcg10: float) -> None:
        self.val = pct(ndcg10)
        if self.task is not None:
            self.bar.update(self.task, val=self.val, phase="epoch")

    def resumed(self, epoch: int) -> None:
        self.console.print(f"{self.label}: resuming from epoch {epoch}")

    def close(self) -> None:
        self.bar.stop()


class LineProgress(NullProgress):
    """One flushed line per validation, for logs (nohup, batch schedulers, parallel workers),
    and a line every `every` seconds inside an epoch (or a validation pass) that takes longer.

    A rich bar writes nothing once stderr is not a terminal, so a run of several hours
    (an ML-1M diffusion epoch on a CPU core is one) would otherwise be silent until it ends.
    """

    def __init__(self, label: str, stream=None, every: float = 600.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.every = every
        self.epoch, self.epochs, self.total, self.n, self.n_batches = 0, 0, 0.0, 0, 0
        self.stop_by: int | None = None
        self.t0 = self.last = time.perf_counter()

    def _print(self, text: str) -> None:
        print(f"{self.label}: {text}", file=self.stream, flush=True)

    def start_epoch(self, epoch: int, epochs: int, n_batches: int, stop_by: int | None = None) -> None:
        self.epoch, self.epochs, self.total, self.n, self.n_batches = epoch, epochs, 0.0, 0, n_batches
        self.stop_by = stop_by

    def advance(self, loss: float) -> None:
        self.total += loss
        self.n += 1
        now = time.perf_counter()
        if now - self.last >= self.every and self.n < self.n_batches:
            self.last = now
            self._print(f"epoch {epoch_text(self.epoch, self.epochs, self.stop_by)}  batch {self.n}/{self.n_batches}"
                        f"  loss {self.total / self.n:.4f}  {now - self.t0:.0f} s")

    def validating(self) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:       # a long epoch said where it was; say the phase changed
            self.last = now
            self._print(f"validating after epoch {self.epoch}  {now - self.t0:.0f} s")

    def evaluated(self, ndcg10: float) -> None:
        loss = self.total / self.n if self.n else float("nan")
        self.last = time.perf_counter()
        if not self.epochs:                     # nothing to train (MostPop)
            self._print(f"val NDCG@10 {pct(ndcg10)} (no training)")
            return
        self._print(f"epoch {epoch_text(self.epoch, self.epochs, self.stop_by)}  loss {loss:.4f}  "
                    f"val NDCG@10 {pct(ndcg10)}  {self.last - self.t0:.0f} s")

    def resumed(self, epoch: int) -> None:
        self._print(f"resuming from epoch {epoch}")


def make(kind: str, label: str) -> NullProgress:
    """`bar`, `lines` or `none`."""
    if kind == "bar":
        return RichProgress(label)
    if kind == "lines":
        return LineProgress(label)
    return NullProgress()
