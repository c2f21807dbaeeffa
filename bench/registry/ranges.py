"""The range of every numeric config field, checked before any run starts.

Each field declares its range where it is declared (`bench.params.param`); a value outside it is one
`error:` line naming the field and its range, never a crash mid-training or a quietly stored result.
Every float must be finite. Upper limits on sizes keep a typo (hidden=1000000) from turning into an
allocation traceback; a model's own `validate` adds what needs two fields. tests/test_models_cli.py
fails on a registered model's numeric field without a range, so none is silently unchecked.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from bench.errors import BenchError
from bench.params import INF, Range, range_of

__all__ = ["check", "check_value", "interval", "range_of"]


def interval(low: float, high: float, low_in: bool, high_in: bool) -> str:
    return f"{'[' if low_in else '('}{low:g}, {'inf' if high == INF else f'{high:g}'}{']' if high_in else ')'}"


def check_value(section: str, name: str, value: Any, bounds: Range | None = None) -> None:
    """Raise BenchError if a numeric value is not finite or out of its field's range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    where = f"{section}.{name}"
    if isinstance(value, float) and not math.isfinite(value):
        raise BenchError(f"{where} must be a finite number, got {value}")
    if bounds is None:
        return
    low, high, low_in, high_in = bounds
    inside = (value >= low if low_in else value > low) and (value <= high if high_in else value < high)
    if not inside:
        raise BenchError(f"{where} must be in {interval(low, high, low_in, high_in)}, got {value:g}")


def check(section: str, obj: Any) -> None:
    """Raise BenchError for the first numeric field of a config dataclass out of its range."""
    for f in dataclasses.fields(obj):
        check_value(section, f.name, getattr(obj, f.name), f.metadata.get("range"))
    if hasattr(obj, "hidden") and hasattr(obj, "heads") and obj.hidden % obj.heads:
        raise BenchError(f"{section}.hidden ({obj.hidden}) must be divisible by {section}.heads ({obj.heads})")
