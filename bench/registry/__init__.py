"""Models by name, each with a frozen config dataclass and training defaults.

Entries are import paths, imported on first use, so listing or resolving a
name has no side effects. A model class carries `Config` (its frozen
dataclass), `train_defaults` (a TrainConfig) and `train_format`, and may carry
`dataset_presets`: {dataset name: {field: raw value}}, settings that replace the
defaults on one named dataset (chosen there on validation). `--set` wins over both.
A model class may also carry `paper` and `summary` (one line each) for `bench models`. Each config
field is declared once, with its default, one-line meaning and range (`bench.params.param`), so a
model inside the package is one file plus its line in MODELS.

Models from outside the package (docs/adding-a-model.md): `--models mypkg.mymodel:MyRec` names any
importable class (a module on the path, or a file in the current folder), and an installed package
registers names in the entry-point group `bench.models` (`myrec = "mypkg.mymodel:MyRec"`). A run records
where such a model was imported from (`model_dir`), so later commands in other folders import it too.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import sys
import typing
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from bench.registry import contract, fields as field_docs
from bench.errors import BenchError
from bench.registry.overrides import apply_overrides
from bench.train.config import TrainConfig

MODELS: dict[str, str] = {
    "pop": "bench.baselines.pop:MostPop",
    "sasrec": "bench.baselines.sasrec:SASRec",
    "bert4rec": "bench.baselines.bert4rec:BERT4Rec",
    "svae": "bench.baselines.svae:SVAE",
    "acvae": "bench.baselines.acvae:ACVAE",
    "diffurec": "bench.models.diffurec:DiffuRec",
    "diffurecsys": "bench.models.diffurec:DiffuRecSys",
    "preferdiff": "bench.models.preferdiff:PreferDiff",
    "diqdiff": "bench.models.diqdiff:DiQDiff",
    "adrec": "bench.models.adrec:ADRec",
}
# The one display name of each model, in the order of every table and figure (the model of
# study first); unknown models follow, sorted.
DISPLAY: dict[str, str] = {"diffurecsys": "DiffuRecSys", "diffurec": "DiffuRec", "preferdiff": "PreferDiff",
                           "adrec": "ADRec", "diqdiff": "DiQDiff",
                           "sasrec": "SASRec", "bert4rec": "BERT4Rec", "svae": "SVAE", "acvae": "ACVAE",
                           "pop": "MostPop"}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    config: Any            # an instance of cls.Config
    train: TrainConfig

    def build(self, n_items: int):
        return self.cls(self.config, n_items)


ENTRY_POINTS = "bench.models"


@functools.lru_cache(maxsize=1)
def installed() -> dict[str, str]:
    """Models that installed packages register: {name: "module:Class"} from the `bench.models` entry
    points (a name of the package's own registry wins over one of them)."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINTS) if ep.name not in MODELS}


def names() -> list[str]:
    """The registered models, then those installed packages register."""
    return list(MODELS) + sorted(installed())


def import_path(name: str) -> str:
    """'module:Class' of a model name: the registry's, an installed entry point's, or the name itself."""
    if name in MODELS:
        return MODELS[name]
    if name in installed():
        return installed()[name]
    module, _, attr = name.partition(":")
    if not (module and attr and all(part.isidentifier() for part in (*module.split("."), *attr.split(".")))):
        raise BenchError(f"unknown model '{name}'; choose from: {', '.join(names())}, or name a class as "
                         "module:Class (e.g. mypkg.mymodel:MyRec)")
    return name


def search(folder: str | os.PathLike) -> None:
    """Let models be imported from `folder` (a run's recorded `model_dir`), here and in every process
    this one starts (PYTHONPATH)."""
    folder = str(Path(folder).resolve())
    if folder not in sys.path:
        sys.path.append(folder)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if folder not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (*paths, folder) if p)


def load_module(name: str, module: str):
    """Import a model's module: from the path, else from the current folder; one error line if neither."""
    def fail(e: Exception):
        return BenchError(f"cannot import model '{name}': {type(e).__name__}: {str(e).splitlines()[0][:200]}")

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if name in MODELS or not (e.name and (module == e.name or module.startswith(e.name + "."))):
            raise fail(e) from None
        search(os.getcwd())                 # a module file in the current folder, as `python -m` finds it
    except Exception as e:                  # the module's own code failed
        raise fail(e) from None
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise BenchError(f"cannot import model '{name}': no module named '{e.name}' on the path or in "
                         f"{os.getcwd()}") from None
    except Exception as e:
        raise fail(e) from None


def model_class(name: str) -> type:
    module, attr = import_path(name).split(":")
    target = load_module(name, module)
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise BenchError(f"cannot import model '{name}': module '{module}' has no '{attr}'")
    if not isinstance(target, type):
        raise BenchError(f"model '{name}' is not a class")
    return contract.check(name, target)


def model_dir(name: str) -> str | None:
    """The folder a model from outside the package is imported from (the path entry holding its module),
    for the run's record; None for the package's own models."""
    if name in MODELS:
        return None
    module = sys.modules.get(import_path(name).split(":")[0])
    file = getattr(module, "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    for _ in range(import_path(name).split(":")[0].count(".")):
        root = root.parent
    return str(root)


def folder(name: str) -> str:
    """A model's folder name under a results folder's runs/ (a 'module:Class' name without the colon)."""
    return name.replace(":", ".")


def parse_models(spec: str) -> list[str]:
    """'all' or a comma-separated list of registered names or module:Class paths."""
    if spec.strip() == "all":
        return names()
    chosen = [s.strip() for s in spec.split(",") if s.strip()]
    if not chosen:
        raise BenchError(f"no model given; choose from: all, {', '.join(names())}")
    for name in chosen:
        model_class(name)
    return chosen


def presets(name: str, dataset: str | None) -> dict[str, str]:
    """The model's preset for a named dataset ({} for any other dataset or a path)."""
    return dict(contract.dataset_presets(model_class(name)).get(dataset or "", {}))


def resolve(name: str, overrides: dict[str, dict[str, str]] | None = None,
            dataset: str | None = None, max_len: int | None = None) -> ModelSpec:
    """The model's config and training config: defaults, then the run's history length for the
    fields that follow it (`max_len_fields`), then the dataset's preset, then `--set`.

    overrides: {model_name: {field: raw string}}; a field may belong to the
    model config or to the training config.
    """
    cls = model_class(name)
    follow = {f: str(max_len) for f in contract.max_len_fields(cls)} if max_len is not None else {}
    sets = dict((overrides or {}).get(name, {}))
    chosen = variant(name, sets.pop(VARIANT_KEY, None), max_len)
    values = {**follow, **DATASET_DEFAULTS.get(dataset or "", {}), **presets(name, dataset), **chosen, **sets}
    config, train = apply_overrides(name, cls.Config(), cls.train_defaults, values)
    return ModelSpec(name, cls, config, train)


# Every model on a dataset, under its own presets: the built-in synthetic data trains in fp32, since its
# small models gain nothing from bf16 and a CPU without bf16 units (AMD Zen 3) runs bf16 about 10x slower
# (the quick look took over 15 minutes there in bf16).
DATASET_DEFAULTS: dict[str, dict[str, str]] = {"synthetic": {"precision": "fp32"}}

VARIANT_KEY = "variant"     # `--set MODEL.variant=NAME` selects one of the model's `variants`


def variant(name: str, chosen: str | None, max_len: int | None) -> dict[str, str]:
    """The field values of the model's variant `chosen` ({} for none); "max_len" in a value is the
    run's history length (the protocol's default, 50, when none is given)."""
    if chosen is None:
        return {}
    known = contract.variants(model_class(name))
    if chosen not in known:
        raise BenchError(f"unknown variant '{name}.variant={chosen}'; "
                         + (f"choose from: {', '.join(known)}" if known else f"{name} has no variants"))
    return {k: str(max_len or 50) if v == "max_len" else v for k, v in known[chosen].items()}


def display(name: str) -> str:
    """The model's one display name (the registry name for a model not in DISPLAY)."""
    return DISPLAY.get(name, name)


def display_order(models) -> list[str]:
    """`models` in DISPLAY order, unknown names after them, sorted."""
    models = set(models)
    return [m for m in DISPLAY if m in models] + sorted(models - set(DISPLAY))


def rank(name: str) -> int:
    """A model's place in DISPLAY order (every unknown name after the known ones)."""
    order = list(DISPLAY)
    return order.index(name) if name in order else len(order)


@dataclass(frozen=True)
class About:
    name: str
    display: str
    paper: str
    summary: str
    presets: tuple[str, ...]    # datasets with a preset


def about(name: str) -> About:
    """One row of `bench models`: the model's names, paper, what it is, and its preset datasets."""
    cls = model_class(name)
    doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or name).strip().splitlines()[0]
    return About(name, display(name), getattr(cls, "paper", ""), getattr(cls, "summary", doc),
                 tuple(contract.dataset_presets(cls)))


@dataclass(frozen=True)
class Field:
    section: str        # "model" (the model's Config) or "train" (its TrainConfig)
    name: str
    type: str
    default: str
    description: str


def type_name(hint) -> str:
    """'int', or the choices of a Literal as 'a | b | c'."""
    if typing.get_origin(hint) is typing.Literal:
        return " | ".join(str(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def describe(name: str) -> list[Field]:
    """Every field of the model's config and training config, for `bench models NAME`."""
    cls = model_class(name)
    rows = []
    for section, obj in (("model", cls.Config()), ("train", cls.train_defaults)):
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            rows.append(Field(section, f.name, type_name(hints.get(f.name, f.type)), repr(getattr(obj, f.name)),
                              field_docs.description(name, section, f.name)))
    return rows
