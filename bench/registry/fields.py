"""What each config field means, for `bench models NAME`: read from the field's declaration
(`bench.params.param`: default, meaning and range in one place). tests/test_models_cli.py fails on a
registered model's field without a meaning, so a new field comes with its meaning.
"""
from __future__ import annotations

from bench.params import meaning
from bench.train.config import TrainConfig


def description(model: str, section: str, field: str) -> str:
    """The field's line; "" where it has none (the test catches that for registered models)."""
    from bench.registry import model_class

    return meaning(TrainConfig if section == "train" else model_class(model).Config, field)
