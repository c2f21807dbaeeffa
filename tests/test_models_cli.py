"""`bench models`: a short line per model, and every field of one model with what it means."""
import dataclasses
import typing

from bench import registry
from bench.params import meaning
from bench.train.config import TrainConfig
from tests.conftest import bench_cli


def rows(stdout: str) -> list[list[str]]:
    """The cells of each body row of a rich table printed with box characters."""
    return [[c.strip() for c in line.strip().strip("│").split("│")] for line in stdout.splitlines()
            if line.startswith("│")]


def test_every_field_of_every_model_has_a_description():
    for name in registry.names():
        missing = [f"{f.section}.{f.name}" for f in registry.describe(name) if not f.description.strip()]
        assert not missing, f"{name}: give {', '.join(missing)} a meaning where it is declared (bench.params.param)"


def test_every_number_has_a_range():
    # a numeric field without a range would be silently unchecked: --set hidden=1000000 would crash a run
    for cls in [TrainConfig] + [registry.model_class(name).Config for name in registry.names()]:
        hints = typing.get_type_hints(cls)
        unchecked = [f.name for f in dataclasses.fields(cls)
                     if hints[f.name] in (int, float) and f.metadata.get("range") is None]
        assert not unchecked, f"{cls.__name__}: declare a range for {', '.join(unchecked)} (bench.params.param)"


def test_a_value_out_of_its_declared_range_is_one_line():
    proc = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--set", "sasrec.dropout=1.5",
                     "--dry-run")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: sasrec.dropout must be in [0, 1), got 1.5"


def test_every_model_says_what_it_is_in_its_own_words():
    abouts = [registry.about(n) for n in registry.names()]
    assert all(a.paper and a.summary for a in abouts)
    assert len({a.summary for a in abouts}) == len(abouts)


def test_bench_models_is_one_short_line_per_model():
    proc = bench_cli("models")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) < 20, proc.stdout
    body = rows(proc.stdout)
    names = [r[0] for r in body]
    assert sorted(names) == sorted(registry.names()) and len(names) == len(set(names)), proc.stdout
    by_name = {r[0]: r for r in body}
    assert by_name["diffurec"][1:] != by_name["diffurecsys"][1:]
    assert by_name["diffurec"][3] != by_name["diffurecsys"][3]            # what each is, in its own line
    assert "cross-attention" in by_name["diffurecsys"][3] and "offset noise" in by_name["diffurecsys"][3]
    assert "ROEGEN@RecSys" in by_name["diffurecsys"][2] and "TOIS 2023" in by_name["diffurec"][2]
    assert by_name["sasrec"][1] == "SASRec" and "synthetic" in by_name["sasrec"][4]
    assert by_name["svae"][4] == "-"                                       # no presets


def test_bench_models_sasrec_has_every_field_its_meaning_and_presets():
    proc = bench_cli("models", "sasrec")
    assert proc.returncode == 0, proc.stderr
    header = next(line for line in proc.stdout.splitlines() if "description" in line)
    assert "on synthetic" in header and "on ml-1m" in header
    body = {r[1]: r for r in rows(proc.stdout) if len(r) > 1 and r[1]}
    assert set(body) == {f.name for f in registry.describe("sasrec")}
    dropout = body["dropout"]
    assert dropout[:4] == ["model", "dropout", "float", "0.6"]
    assert dropout[4:6] == ["0.2", "0.2"]                                   # ml-1m, synthetic presets
    assert dropout[6].startswith(meaning(registry.model_class("sasrec").Config, "dropout")[:40])
    assert body["patience"][4:6] == ["", "3"]                              # a train field preset on synthetic only


def test_bench_models_takes_several_names_and_refuses_an_unknown_one():
    proc = bench_cli("models", "pop,diffurecsys")
    assert proc.returncode == 0, proc.stderr
    assert "MostPop (pop)" in proc.stdout and "DiffuRecSys (diffurecsys)" in proc.stdout
    assert "offset_kind" in proc.stdout
    bad = bench_cli("models", "nosuch")
    assert bad.returncode == 2 and "unknown model 'nosuch'" in bad.stderr
