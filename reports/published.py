"""Published numbers the reports compare against, read from `published.csv` beside this file.

Each row is one published figure: the model (a registered name, or another model
such as eSASRec shown for reference), the dataset, its protocol (seen items kept
or removed from the candidates, max_len, item count), test HR@10 / NDCG@10 in
percent and its source (repository path at a commit, or paper and table). A row
is shown only beside runs of the same dataset, item count, max_len and
seen-item setting, so protocols are never mixed.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bench.errors import BenchError

PUBLISHED = Path(__file__).with_name("published.csv")
SEEN = ("kept", "removed")


@dataclass(frozen=True)
class Published:
    model: str
    label: str
    dataset: str
    seen: str               # "kept" | "removed"
    max_len: int
    n_items: int
    seeds: int
    hr10: float             # percent
    ndcg10: float
    source: str

    def metric(self, name: str) -> float:
        return {"hr@10": self.hr10, "ndcg@10": self.ndcg10}[name]


def load(path: Path | None = None) -> tuple[Published, ...]:
    """Every row of `path` (default: PUBLISHED), checked; a bad row is one error naming its line."""
    return _load(Path(path or PUBLISHED))


@lru_cache(maxsize=4)
def _load(path: Path) -> tuple[Published, ...]:
    rows = []
    with open(path, newline="") as f:
        for n, r in enumerate(csv.DictReader(f), start=2):
            try:
                row = Published(r["model"], r["label"], r["dataset"], r["seen"], int(r["max_len"]),
                                int(r["n_items"]), int(r["seeds"]), float(r["hr@10"]), float(r["ndcg@10"]),
                                r["source"])
            except (KeyError, TypeError, ValueError) as e:
                raise BenchError(f"{path}:{n}: not a published row ({e})") from None
            if row.seen not in SEEN or not (math.isfinite(row.hr10) and math.isfinite(row.ndcg10)) or not row.source:
                raise BenchError(f"{path}:{n}: seen must be kept or removed, metrics finite, source given")
            rows.append(row)
    return tuple(rows)


def matching(dataset: str, n_items: int, max_len: int, seen: str,
             rows: tuple[Published, ...] | None = None) -> list[Published]:
    """The published rows of exactly this dataset and protocol."""
    return [p for p in (load() if rows is None else rows)
            if p.dataset == dataset and p.n_items == n_items and p.max_len == max_len and p.seen == seen]
