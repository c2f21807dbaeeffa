"""Experiment files: a `bench run` grid written down once, to share "the exact benchmark of my paper".

    # paper.toml: bench run --experiment paper.toml
    models = ["sasrec", "diffurecsys"]      # or "all"
    datasets = ["beauty", "toys"]           # or dataset = "beauty"
    seeds = 3                               # 0..2; or a list, [0, 2]
    max_len = 50
    exclude_seen = true
    split = "leave-one-out"                 # optional: or "temporal" (with cutoff = 0.9)
    order = "chronological"                 # optional: or "shuffled" (histories permuted per user)
    epochs = 200                            # optional: every model's epoch budget
    out = "runs/paper"                      # relative to the file's folder
    data_dir = "../data"                    # optional, relative to the file's folder

    [set.sasrec]                            # as --set sasrec.dropout=0.5
    dropout = 0.5

The runs are exactly those of the same flags (same run ids). The file is copied into the
results folder (experiments/NAME-SHA.toml) and every result line it produces records it.
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.atomic import atomic_write_bytes
from bench.cli.options import MAX_SEEDS
from bench.errors import BenchError
from bench.registry.runconfig import raw

KEYS = ("models", "dataset", "datasets", "seeds", "max_len", "exclude_seen", "split", "cutoff", "order", "epochs",
        "out", "data_dir", "set")


@dataclass(frozen=True)
class Experiment:
    path: Path
    text: bytes
    datasets: tuple[str, ...]
    models: str = "all"
    seeds: str = "1"
    max_len: int = 50
    exclude_seen: bool = False
    split: str = "leave-one-out"
    cutoff: float = 0.9
    order: str = "chronological"
    epochs: int | None = None
    out: Path | None = None
    data_dir: Path | None = None
    sets: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text).hexdigest()

    @property
    def stored_name(self) -> str:
        return f"experiments/{self.path.stem}-{self.sha256[:12]}.toml"

    def tags(self) -> dict:
        """What every result line of this experiment records."""
        return {"experiment": {"file": self.stored_name, "sha256": self.sha256, "name": self.path.stem}}

    def store(self, out: Path) -> None:
        """Copy the file into the results folder (once: the name holds its hash)."""
        target = out / self.stored_name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, self.text)


def _typed(body: dict, key: str, types: tuple, what: str, where: Path):
    value = body[key]
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise BenchError(f"{where}: '{key}' must be {what}, got {value!r}")
    return value


def _names(body: dict, key: str, where: Path) -> str:
    value = body[key]
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return ",".join(value)
    raise BenchError(f"{where}: '{key}' must be a name or a non-empty list of names, got {value!r}")


def _sets(value: Any, where: Path) -> tuple[str, ...]:
    """[set.MODEL] tables (or a list of "MODEL.FIELD=VALUE") -> --set items."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise BenchError(f"{where}: 'set' must be tables [set.MODEL] with FIELD = VALUE, "
                         "or a list of \"MODEL.FIELD=VALUE\"")
    items = []
    for model, fields in value.items():
        for name, v in fields.items():
            if isinstance(v, list):
                v = ",".join(raw(x) for x in v)
            elif not isinstance(v, (str, int, float, bool)):
                raise BenchError(f"{where}: set.{model}.{name} must be a number, a string, a boolean or a list")
            items.append(f"{model}.{name}={raw(v)}")
    return tuple(items)


def load(path: Path) -> Experiment:
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as e:
        raise BenchError(f"cannot read --experiment {path}: {e.strerror}") from None
    try:
        body = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BenchError(f"--experiment {path} is not valid TOML: {e}") from None
    unknown = sorted(set(body) - set(KEYS))
    if unknown:
        raise BenchError(f"{path}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"valid keys: {', '.join(KEYS)}")
    if ("dataset" in body) == ("datasets" in body):
        raise BenchError(f"{path}: give 'dataset' (one name or path) or 'datasets' (a list), not both or neither")
    datasets = _names(body, "dataset" if "dataset" in body else "datasets", path).split(",")
    if len(set(datasets)) != len(datasets):
        raise BenchError(f"{path}: a dataset is listed twice in 'datasets'")
    kw: dict[str, Any] = {}
    if "models" in body:
        kw["models"] = _names(body, "models", path)
    if "seeds" in body:
        seeds = body["seeds"]
        if isinstance(seeds, list) and len(seeds) > MAX_SEEDS:
            raise BenchError(f"{path}: 'seeds' lists {len(seeds):,} seeds; at most {MAX_SEEDS:,}")
        if isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds):
            kw["seeds"] = ",".join(map(str, seeds)) + ("," if len(seeds) == 1 else "")
        elif type(seeds) is int:
            kw["seeds"] = str(seeds)
        else:
            raise BenchError(f"{path}: 'seeds' must be a number of seeds or a list of seeds, got {seeds!r}")
    if "max_len" in body:
        kw["max_len"] = _typed(body, "max_len", (int,), "an integer", path)
    if "exclude_seen" in body:
        kw["exclude_seen"] = _typed(body, "exclude_seen", (bool,), "true or false", path)
    for key in ("split", "order"):          # their values are checked with the command line's (bench.eval.splits)
        if key in body:
            kw[key] = _typed(body, key, (str,), "a name", path)
    if "cutoff" in body:
        kw["cutoff"] = float(_typed(body, "cutoff", (int, float), "a number", path))
    if "epochs" in body:
        kw["epochs"] = _typed(body, "epochs", (int,), "an integer", path)
    for key in ("out", "data_dir"):         # relative to the file, so the file travels with its folders
        if key in body:
            kw[key] = path.parent / _typed(body, key, (str,), "a path", path)
    if "set" in body:
        kw["sets"] = _sets(body["set"], path)
    from bench import data      # a dataset file is relative to the experiment file, as out is

    datasets = tuple(d if d in data.NAMED + data.BUILTIN else str(path.parent / d) for d in datasets)
    return Experiment(path=path, text=text, datasets=datasets, **kw)
