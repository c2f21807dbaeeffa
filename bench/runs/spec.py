"""RunSpec: one run, described once. Everything that trains or plans a run takes one: `bench run`, the
Python API, experiment files, study points (`bench ablate`, `bench tune`), the plan and `run_one`.

`build` is the one place a run's settings are resolved: the model's defaults, the fields that follow the
history length, the dataset's preset, a variant, then the given values (`--set` strings as typed, or a
study point's typed values), each checked once. A spec holds the result (`ModelSpec`: the typed model
config and training config), the protocol, the dataset with its content fingerprint, and the seed; its
run id follows from those. The other fields say where and how it runs (out, device, threads, progress,
logging) and what its record carries (tags); they are not part of what the run is.

A spec pickles by name (`__reduce__`): the model's class is imported again where it is unpickled (a
worker process, a Dask worker), from the folder recorded for a model from outside the package.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from bench import data, registry
from bench.eval.protocol import Protocol
from bench.runs.fields import completed
from bench.runs.identity import dataset_fingerprint, run_id


@dataclass(frozen=True)
class DataRef:
    """A dataset as given (a registered name or a file path), where named ones live, and its content."""
    name: str
    data_dir: str | None
    fingerprint: str

    @classmethod
    def of(cls, name: str, data_dir: str | Path | None = None) -> "DataRef":
        directory = str(data_dir) if data_dir else None
        return cls(name, directory, _fingerprint(name, directory, _stamp(name, directory)))

    def load(self, fetch_missing: bool = False) -> data.Dataset:
        return data.resolve(self.name, self.data_dir, fetch_missing=fetch_missing)

    @property
    def stem(self) -> str:
        """The dataset's short name (a file's name without folder and suffix)."""
        return Path(self.name).stem

    def absolute(self) -> "DataRef":
        """The same dataset with absolute paths, for a process whose working folder is another."""
        name = self.name if data.is_named(self.name) else str(Path(self.name).resolve())
        return dataclasses.replace(self, name=name, data_dir=str(Path(self.data_dir).resolve()) if self.data_dir else None)


def _stamp(name: str, data_dir: str | None) -> tuple:
    """What says a dataset file changed (its size and modification time); () for built-in data."""
    if name in data.BUILTIN:
        return ()
    path = data.data_dir(data_dir) / f"{name}.pkl" if name in data.NAMED else Path(name)
    try:
        st = path.stat()
    except OSError:
        return ()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=64)
def _fingerprint(name: str, data_dir: str | None, stamp: tuple) -> str:
    return dataset_fingerprint(name, data_dir)       # each file hashed once per process, again when it changes


@dataclass(frozen=True)
class RunSpec:
    model: registry.ModelSpec       # the resolved, typed model config and training config
    data: DataRef
    protocol: Protocol
    seed: int
    sets: Mapping[str, Any] = field(default_factory=dict)   # the values given over the defaults (provenance)
    # where and how it runs; not part of the run's identity
    out: str = "runs"
    device: str = "auto"
    threads: int = 0                # torch intra-op threads; 0 = leave the default
    force: bool = False
    progress: str = "none"          # bar | lines | none (bench.train.progress.make)
    log: str = "none"               # live curves: none | tensorboard (bench.train.tblog)
    tags: Mapping[str, Any] = field(default_factory=dict)   # merged into the record (a study's trial, point)
    on_eval: Callable | None = None  # see Trainer; a study reports to its pruner here (never pickled)

    @property
    def name(self) -> str:
        return self.model.name

    @functools.cached_property
    def run_id(self) -> str:
        return run_id(self.model, self.data.fingerprint, self.seed, self.protocol)

    def folder(self, dataset_name: str) -> Path:
        """The run's folder under `out` (`dataset_name`: the loaded dataset's name)."""
        return Path(self.out) / "runs" / dataset_name / registry.folder(self.name) / f"seed{self.seed}-{self.run_id}"

    def with_(self, **changes: Any) -> "RunSpec":
        """The same run with other execution fields (out, seed, threads, tags, ...); the model stays resolved."""
        return dataclasses.replace(self, **changes)

    def at(self, point: Mapping[str, Any], protocol_fields: tuple[str, ...] = ()) -> "RunSpec":
        """Another point of the same study: this spec's given values with `point` over them, resolved
        afresh from the model's defaults (`protocol_fields` of the point set the protocol instead)."""
        protocol = dataclasses.replace(self.protocol, **{k: v for k, v in point.items() if k in protocol_fields})
        values = {**self.sets, **{k: v for k, v in point.items() if k not in protocol_fields}}
        return dataclasses.replace(self, model=resolve(self.name, self.data.name, protocol, values),
                                   protocol=protocol, sets=values)

    def __reduce__(self):
        rest = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("model", "on_eval")}
        return _restore, (self.name, registry.model_dir(self.name), dataclasses.asdict(self.model.config),
                          dataclasses.asdict(self.model.train), rest)


def _restore(name: str, where: str | None, config: dict, train: dict, rest: dict) -> RunSpec:
    if where is not None:
        registry.search(where)
    cls = registry.model_class(name)
    model = registry.ModelSpec(name, cls, cls.Config(**config), dataclasses.replace(cls.train_defaults, **train))
    return RunSpec(model=model, **rest)


def stored_values(values: dict, kind, known_only: bool = False) -> dict:
    """A results record's section as keyword arguments of the dataclass `kind`: lists back to tuples, and a
    field the record predates at its earlier value (`completed`); `known_only` drops fields `kind` lacks."""
    names = {f.name for f in dataclasses.fields(kind)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in completed(values, names).items()
            if not known_only or k in names}


def from_record(record: dict, out: str | Path) -> RunSpec:
    """The RunSpec of a finished run, read back from its results record (`bench eval`, `bench recommend`,
    a study's re-scoring); its run_id is the record's."""
    if record.get("model_dir"):                     # a model from outside the package
        registry.search(record["model_dir"])
    cls = registry.model_class(record["model"])
    train = stored_values(record["train"], type(cls.train_defaults))
    model = registry.ModelSpec(record["model"], cls, cls.Config(**stored_values(record["config"], cls.Config)),
                               dataclasses.replace(cls.train_defaults, **train))
    protocol = Protocol(**stored_values(record["protocol"], Protocol))
    where = DataRef(record.get("dataset_path") or record["dataset"], None, record["dataset_fingerprint"])
    return RunSpec(model=model, data=where, protocol=protocol, seed=record["seed"], out=str(out))


def resolve(model: str, dataset: str, protocol: Protocol, values: Mapping[str, Any]) -> registry.ModelSpec:
    return registry.resolve(model, {model: dict(values)}, dataset, protocol.max_len)


def build(model: str, dataset: str, seed: int = 0, protocol: Protocol = Protocol(),
          sets: Mapping[str, Any] | None = None, data_dir: str | Path | None = None, **options: Any) -> RunSpec:
    """The one builder: a model name, a dataset, a seed and the values given over the defaults
    ({field: a raw `--set` string or a typed value}) -> a resolved RunSpec. `options` are the execution
    fields (out, device, threads, force, progress, log, tags, on_eval)."""
    values = dict(sets or {})
    return RunSpec(model=resolve(model, dataset, protocol, values), data=DataRef.of(dataset, data_dir),
                   protocol=protocol, seed=seed, sets=values, **options)
