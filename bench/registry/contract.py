"""What a model is: the contract every registered model meets, written once.

A model is a class (an `nn.Module`) registered by name in `bench.registry`. Required:

    Config            a frozen dataclass of the model's own fields, all with defaults; an
                      optional `validate()` checks what needs two fields at once
    train_defaults    a `bench.train.config.TrainConfig`: the loop's settings for this model
    train_format      how `bench.train.batching` builds its training examples ("sequence", "prefix")
    __init__(config, n_items)
    score(batch)      (B, N+1) scores of every item for each history in `batch["history"]`
                      (item 0 is padding; the protocol never ranks it)
    loss(batch)       a scalar training loss (not needed by a model that is fitted)

Optional, each read through one function below so no caller probes for attributes:

    fit(train)                count-based models (MostPop): fitted on the training sequences, not trained
    valid_score(batch)        a cheaper `score` for validation passes (the diffusion models' one-step reverse)
    trajectory(history)       states of the reverse process, for the reporter's GIF
    eval_fields               config fields `bench eval` may change on a trained model
    dataset_presets           {dataset: {field: raw value}}, chosen on that dataset's validation split
    max_len_fields            config fields whose default is the run's history length (`--max-len`)
    variants                  {name: {field: raw value}}, selected with `--set MODEL.variant=NAME` (e.g. the
                              authors' code); the value "max_len" stands for the run's history length
    search_space              {field: spec} for `bench tune` (studies/spaces.py has the rest)

Torch-free: the registry, the reports and `bench status` import it.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Protocol

from bench.train.config import TrainConfig
from bench.errors import BenchError

REQUIRED = ("Config", "train_defaults", "train_format", "score")


class Model(Protocol):
    Config: ClassVar[type]
    train_defaults: ClassVar[TrainConfig]
    train_format: ClassVar[str]

    def __init__(self, config: Any, n_items: int) -> None: ...
    def score(self, batch: dict) -> Any: ...
    def loss(self, batch: dict) -> Any: ...


def check(name: str, cls: type) -> type:
    """The class, if it meets the contract; else one BenchError line naming what it lacks."""
    missing = [part for part in REQUIRED if not hasattr(cls, part)]
    if not (fitted(cls) or callable(getattr(cls, "loss", None))):
        missing.append("loss (or fit)")
    if missing:
        raise BenchError(f"model '{name}' ({cls.__module__}.{cls.__name__}) lacks {', '.join(missing)}")
    if not isinstance(cls.train_defaults, TrainConfig):
        raise BenchError(f"model '{name}': train_defaults must be a TrainConfig")
    return cls


def fitted(model: Any) -> bool:
    """Whether the model is fitted on the training sequences (count-based) rather than trained."""
    return callable(getattr(model, "fit", None))


def validation_scorer(model: Any) -> Callable:
    return getattr(model, "valid_score", None) or model.score


def has_trajectory(model: Any) -> bool:
    return callable(getattr(model, "trajectory", None))


def eval_fields(cls: type) -> tuple[str, ...]:
    return tuple(getattr(cls, "eval_fields", ()))


def dataset_presets(cls: type) -> dict[str, dict[str, str]]:
    return dict(getattr(cls, "dataset_presets", {}))


def variants(cls: type) -> dict[str, dict[str, str]]:
    return dict(getattr(cls, "variants", {}))


def max_len_fields(cls: type) -> tuple[str, ...]:
    return tuple(getattr(cls, "max_len_fields", ()))


def search_space(cls: type) -> dict | None:
    return getattr(cls, "search_space", None)
