import pytest

from bench import registry
from bench.errors import BenchError
from bench.overrides import parse_sets


def test_typed_overrides_reach_model_and_training_configs():
    sets = parse_sets(["sasrec.hidden=32", "sasrec.heads=4", "sasrec.lr=0.01", "sasrec.precision=fp32",
                       "sasrec.loss=bce"], ["sasrec"])
    spec = registry.resolve("sasrec", sets)
    assert spec.config.hidden == 32 and spec.config.heads == 4 and spec.config.loss == "bce"
    assert spec.train.lr == 0.01 and spec.train.precision == "fp32"


def test_booleans_are_parsed_not_truthy_strings():
    from bench.overrides import coerce
    assert coerce("False", bool, "x") is False and coerce("true", bool, "x") is True
    with pytest.raises(BenchError):
        coerce("maybe", bool, "x")


def test_invalid_combinations_are_refused():
    with pytest.raises(BenchError, match="divisible"):
        registry.resolve("sasrec", {"sasrec": {"hidden": "30", "heads": "4"}})
    with pytest.raises(BenchError, match="batch_size"):
        registry.resolve("sasrec", {"sasrec": {"batch_size": "0"}})
    with pytest.raises(BenchError, match="not among"):
        parse_sets(["bert4rec.hidden=3"], ["sasrec"])


def test_all_means_every_registered_model():
    assert registry.parse_models("all") == registry.names()
    assert registry.parse_models("pop, sasrec") == ["pop", "sasrec"]
