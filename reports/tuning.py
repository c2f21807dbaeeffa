"""How many configurations were tried on validation to choose each model's registered settings,
read from `tuning.csv` beside this file, so that an unequal tuning budget shows in every table.

A row names the model, the datasets whose runs use that choice (the registered defaults, or a
dataset preset), the dataset whose validation split chose it, the number of configurations
tried there, the settings chosen (field=value; a run counts as at those settings only when its
config and training config hold every one) and where the trials are written down.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bench.errors import BenchError

TUNING = Path(__file__).with_name("tuning.csv")


@dataclass(frozen=True)
class Tuning:
    model: str
    datasets: tuple[str, ...]
    tuned_on: str
    configs: int
    settings: tuple[tuple[str, str], ...]
    source: str

    def holds(self, record: dict) -> bool:
        """Whether a run's record is at the chosen settings (every listed field equal)."""
        fields = {**record.get("train", {}), **record.get("config", {})}
        return all(field in fields and same(fields[field], value) for field, value in self.settings)

    def label(self, dataset: str) -> str:
        return str(self.configs) if dataset == self.tuned_on else f"{self.configs} on {self.tuned_on}"


def same(stored: object, written: str) -> bool:
    if isinstance(stored, bool) or not isinstance(stored, (int, float)):
        return str(stored).lower() == written.lower()
    try:
        return float(stored) == float(written)
    except ValueError:
        return False


def load(path: Path | None = None) -> tuple[Tuning, ...]:
    return _load(Path(path or TUNING))


@lru_cache(maxsize=4)
def _load(path: Path) -> tuple[Tuning, ...]:
    rows = []
    with open(path, newline="") as f:
        for n, r in enumerate(csv.DictReader(f), start=2):
            try:
                settings = tuple(tuple(kv.split("=", 1)) for kv in r["settings"].split(";") if kv)
                row = Tuning(r["model"], tuple(d for d in r["datasets"].split(";") if d), r["tuned_on"],
                             int(r["configs"]), settings, r["source"])
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise BenchError(f"{path}:{n}: not a tuning row ({e})") from None
            if (not row.datasets or row.configs < 1 or not row.source or not row.settings
                    or any(len(kv) != 2 for kv in row.settings)):
                raise BenchError(f"{path}:{n}: datasets, a positive configs count, field=value settings "
                                 "and a source are required")
            rows.append(row)
    return tuple(rows)


def matching(record: dict, rows: tuple[Tuning, ...] | None = None) -> Tuning | None:
    """The tuning row behind a run's settings: same model, a dataset the choice applies to, and the
    run at the chosen settings; None when the run's config was not chosen that way."""
    for t in load() if rows is None else rows:
        if t.model == record["model"] and record["dataset"] in t.datasets and t.holds(record):
            return t
    return None
