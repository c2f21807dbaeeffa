"""A config field declared once: its default, its one-line meaning and, for a number, its range.

    hidden: int = param(128, "embedding and Transformer width", SIZES)

`bench models NAME` prints the meaning; `--set` and every resolved config are checked against the
range (`bench.registry.ranges`) before any work, so a typo is one `error:` line and never a crash
mid-training. tests/test_models_cli.py fails on a registered model's field without a meaning, or a
numeric field without a range. Torch-free: a model's config module and the training config import it.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

INF = math.inf
SIZE = 16384            # the widest layer any model here is built with, with room to spare

# ranges: (low, high, low included, high included)
Range = tuple[float, float, bool, bool]
FRACTION: Range = (0, 1, True, False)           # a probability that cannot be 1 (dropout)
UNIT: Range = (0, 1, True, True)
SIZES: Range = (1, SIZE, True, True)            # a layer width
POSITIVE: Range = (0, INF, False, False)
NONNEGATIVE: Range = (0, INF, True, False)
COUNT: Range = (0, 1 << 24, True, True)         # steps, epochs: 0 = none
AT_LEAST_ONE: Range = (1, 1 << 24, True, True)
LENGTH: Range = (1, 1 << 20, True, True)
LENGTH_OR_OFF: Range = (0, 1 << 20, True, True)


def param(default: Any, help: str, range: Range | None = None) -> Any:
    """A dataclass field with its meaning and range in its metadata (read by bench.registry)."""
    return dataclasses.field(default=default, metadata={"help": help, "range": range})


def redefault(cls: type, name: str, default: Any, help: str | None = None) -> Any:
    """`cls`'s field `name` with another default (for a subclass's config); its meaning and range stay
    unless `help` is given."""
    found = {f.name: f for f in dataclasses.fields(cls)}[name]
    return param(default, found.metadata["help"] if help is None else help, found.metadata.get("range"))


def meaning(cls: type, name: str) -> str:
    """The field's one-line meaning; "" where it has none."""
    found = {f.name: f for f in dataclasses.fields(cls)}.get(name)
    return found.metadata.get("help", "") if found else ""


def range_of(cls: type, name: str) -> Range | None:
    found = {f.name: f for f in dataclasses.fields(cls)}.get(name)
    return found.metadata.get("range") if found else None
