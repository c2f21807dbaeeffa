"""Progress display for the training loop: rich bars, or nothing."""
from __future__ import annotations

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
