import pytest

from bench import registry
from bench.errors import BenchError
from bench.registry.overrides import parse_sets


def test_typed_overrides_reach_model_and_training_configs():
    sets = parse_sets(["sasrec.hidden=32", "sasrec.heads=4", "sasrec.lr=0.01", "sasrec.precision=fp32",
                       "sasrec.loss=bce"], ["sasrec"])
    spec = registry.resolve("sasrec", sets)
    assert spec.config.hidden == 32 and spec.config.heads == 4 and spec.config.loss == "bce"
    assert spec.train.lr == 0.01 and spec.train.precision == "fp32"


def test_booleans_are_parsed_not_truthy_strings():
    from bench.registry.overrides import coerce
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


def test_a_dataset_preset_replaces_defaults_and_set_wins_over_it():
    beauty, ml1m = registry.resolve("bert4rec", {}, "beauty"), registry.resolve("bert4rec", {}, "ml-1m")
    assert (beauty.config.dropout, beauty.config.mask_prob, beauty.train.lr_schedule) == (0.3, 0.4, "constant")
    assert (ml1m.config.dropout, ml1m.config.mask_prob, ml1m.train.lr_schedule) == (0.1, 0.2, "plateau")
    assert registry.resolve("bert4rec", {}) == beauty                        # no dataset: the defaults
    assert registry.resolve("bert4rec", {}, "/data/ml-1m.pkl") == beauty       # a path: no preset
    mixed = registry.resolve("bert4rec", {"bert4rec": {"dropout": "0.3"}}, "ml-1m")
    assert (mixed.config.dropout, mixed.config.mask_prob, mixed.train.lr_schedule) == (0.3, 0.2, "plateau")


def test_every_preset_names_a_known_dataset_and_typed_fields():
    from bench import data
    for name in registry.names():
        for dataset in getattr(registry.model_class(name), "dataset_presets", {}):
            assert dataset in data.NAMED + data.BUILTIN, (name, dataset)
            registry.resolve(name, {}, dataset)          # unknown field or bad value raises


def test_a_preset_run_is_the_run_with_the_same_values_set():
    """So results stored by an explicit --set command are found (and skipped) by the plain one."""
    from bench.runs import identity as runner
    from bench.eval.protocol import Protocol
    explicit = registry.resolve("bert4rec", {"bert4rec": {"dropout": "0.1", "mask_prob": "0.2",
                                                           "lr_schedule": "plateau", "length_buckets": "50"}})
    preset = registry.resolve("bert4rec", {}, "ml-1m")
    assert runner.run_id(explicit, "fp", 0, Protocol()) == runner.run_id(preset, "fp", 0, Protocol())
    assert runner.run_id(registry.resolve("bert4rec", {}), "fp", 0, Protocol()) != runner.run_id(
        preset, "fp", 0, Protocol())


def test_bench_run_trains_with_the_datasets_preset(tmp_path, monkeypatch):
    from bench.runs.run import run_one
    from bench.runs.spec import build
    cls = registry.model_class("sasrec")
    monkeypatch.setattr(cls, "dataset_presets", {"synthetic": {"hidden": "16", "epochs": "1"}}, raising=False)
    record = run_one(build("sasrec", "synthetic", seed=0, out=str(tmp_path), sets={"heads": "1"}))
    assert record["config"]["hidden"] == 16 and record["config"]["heads"] == 1
    assert record["train"]["epochs"] == 1 and record["epochs_run"] == 1
