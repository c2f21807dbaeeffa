"""Live curves: `--log tensorboard` writes each run's training loss, learning rate and validation metrics,
at every validation, to `<run folder>/tensorboard` (torch.utils.tensorboard; the `tensorboard` package is
the optional extra `bench[tensorboard]`). `tensorboard --logdir runs` then shows every run of a grid."""
from __future__ import annotations

import math
from pathlib import Path

from bench.errors import BenchError

LOGS = ("none", "tensorboard")
FOLDER = "tensorboard"


def check(log: str) -> None:
    """A `--log` value this machine can write, checked before any work."""
    if log not in LOGS:
        raise BenchError(f"unknown --log '{log}'; choose {' or '.join(LOGS)}")
    if log == "tensorboard":
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise BenchError("--log tensorboard needs the tensorboard package: pip install 'bench[tensorboard]' "
                             "(or pip install tensorboard)") from None


class TensorBoardLog:
    def __init__(self, folder: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder))

    def write(self, entry: dict) -> None:
        """One validation's history line: loss, lr and valid_* metrics at its epoch."""
        epoch = int(entry["epoch"])
        for key, value in entry.items():
            if key == "loss" or key == "lr":
                tag = f"train/{key}"
            elif key.startswith("valid_"):
                tag = f"valid/{key[len('valid_'):]}"
            else:
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def open_log(log: str, run_dir: Path) -> TensorBoardLog | None:
    return TensorBoardLog(run_dir / FOLDER) if log == "tensorboard" else None
