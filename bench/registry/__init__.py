"""Models by name, each with a frozen config dataclass and training defaults.

Entries are import paths, imported on first use, so listing or resolving a
name has no side effects. A model class carries `Config` (its frozen
dataclass), `train_defaults` (a TrainConfig) and `train_format`, and may carry
`dataset_presets`: {dataset name: {field: raw value}}, settings that replace the
defaults on one named dataset (chosen there on validation). `--set` wins over both.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

from bench.registry import contract
from bench.errors import BenchError
from bench.registry.overrides import apply_overrides
from bench.train.config import TrainConfig

MODELS: dict[str, str] = {
    "pop": "baselines.pop:MostPop",
    "sasrec": "baselines.sasrec:SASRec",
    "bert4rec": "baselines.bert4rec:BERT4Rec",
    "svae": "baselines.svae:SVAE",
    "acvae": "baselines.acvae:ACVAE",
    "diffurec": "models.diffurec:DiffuRec",
    "diffurecsys": "models.diffurec:DiffuRecSys",
}
# The one display name of each model, in the order of every table and figure (the model of
# study first); unknown models follow, sorted.
DISPLAY: dict[str, str] = {"diffurecsys": "DiffuRecSys", "diffurec": "DiffuRec", "sasrec": "SASRec",
                           "bert4rec": "BERT4Rec", "svae": "SVAE", "acvae": "ACVAE", "pop": "MostPop"}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    config: Any            # an instance of cls.Config
    train: TrainConfig

    def build(self, n_items: int):
        return self.cls(self.config, n_items)


def names() -> list[str]:
    return list(MODELS)


def model_class(name: str) -> type:
    if name not in MODELS:
        raise BenchError(f"unknown model '{name}'; choose from: {', '.join(MODELS)}")
    module, attr = MODELS[name].split(":")
    return contract.check(name, getattr(importlib.import_module(module), attr))


def parse_models(spec: str) -> list[str]:
    """'all' or a comma-separated list of registered names."""
    if spec.strip() == "all":
        return names()
    chosen = [s.strip() for s in spec.split(",") if s.strip()]
    if not chosen:
        raise BenchError(f"no model given; choose from: all, {', '.join(MODELS)}")
    for name in chosen:
        model_class(name)
    return chosen


def presets(name: str, dataset: str | None) -> dict[str, str]:
    """The model's preset for a named dataset ({} for any other dataset or a path)."""
    return dict(contract.dataset_presets(model_class(name)).get(dataset or "", {}))


def resolve(name: str, overrides: dict[str, dict[str, str]] | None = None,
            dataset: str | None = None) -> ModelSpec:
    """The model's config and training config: defaults, then the dataset's preset, then `--set`.

    overrides: {model_name: {field: raw string}}; a field may belong to the
    model config or to the training config.
    """
    cls = model_class(name)
    values = {**presets(name, dataset), **(overrides or {}).get(name, {})}
    config, train = apply_overrides(name, cls.Config(), cls.train_defaults, values)
    return ModelSpec(name, cls, config, train)


def describe(name: str) -> list[tuple[str, str, str, str]]:
    """(section, field, type, default) rows for `bench models`."""
    cls = model_class(name)
    rows = []
    for section, obj in (("model", cls.Config()), ("train", cls.train_defaults)):
        for f in dataclasses.fields(obj):
            rows.append((section, f.name, getattr(f.type, "__name__", str(f.type)), repr(getattr(obj, f.name))))
    return rows
