"""RunSpec: one run described once, resolved by one builder, taken by the plan, the run and the studies."""
import pickle

import pytest

from bench import registry
from bench.errors import BenchError
from bench.eval.protocol import Protocol
from bench.runs import spec as runspec
from bench.runs.identity import dataset_fingerprint, run_id

TINY = {"hidden": "16", "blocks": "1", "epochs": "2", "eval_every": "1"}


def test_the_builder_resolves_strings_and_typed_values_to_the_same_run():
    from_flags = runspec.build("sasrec", "synthetic", seed=3, sets={"hidden": "16", "dropout": "0.1", "epochs": "2"})
    typed = runspec.build("sasrec", "synthetic", seed=3, sets={"hidden": 16, "dropout": 0.1, "epochs": 2})
    assert from_flags.model == typed.model and from_flags.run_id == typed.run_id
    assert typed.model.config.hidden == 16 and typed.model.train.epochs == 2
    # the identity is the one every record was named by
    expected = run_id(registry.resolve("sasrec", {"sasrec": {"hidden": "16", "dropout": "0.1", "epochs": "2"}},
                                       "synthetic"), dataset_fingerprint("synthetic", None), 3, Protocol())
    assert typed.run_id == expected


@pytest.mark.parametrize("value", ["sixteen", 1.5, True])
def test_a_value_of_the_wrong_type_is_one_error_line(value):
    with pytest.raises(BenchError, match="sasrec.hidden") as e:
        runspec.build("sasrec", "synthetic", sets={"hidden": value})
    assert "\n" not in str(e.value)


def test_a_study_point_is_resolved_from_the_defaults_with_the_given_values_under_it():
    base = runspec.build("diffurecsys", "synthetic", sets={"hidden": "32", "epochs": "3"})
    point = base.at({"offset_noise": 0.3, "order": "shuffled"}, protocol_fields=("order",))
    assert point.model.config.offset_noise == 0.3 and point.model.config.hidden == 32
    assert point.model.train.epochs == 3 and point.protocol.order == "shuffled"
    assert base.model.config.offset_noise != 0.3 and base.protocol.order == "chronological"
    assert point.run_id != base.run_id and base.at({}).run_id == base.run_id


def test_a_spec_pickles_by_name_and_keeps_its_run():
    spec = runspec.build("diffurec", "synthetic", seed=1, sets={"hidden": "16"}, out="somewhere", threads=1)
    back = pickle.loads(pickle.dumps(spec))
    assert back.model == spec.model and back.run_id == spec.run_id
    assert (back.out, back.threads, back.data) == ("somewhere", 1, spec.data)


def test_a_finished_runs_record_gives_back_its_spec(tmp_path):
    from bench.runs.run import run_one

    record = run_one(runspec.build("sasrec", "synthetic", seed=0, out=str(tmp_path), sets=TINY,
                                   protocol=Protocol(max_len=20, exclude_seen=True)))
    again = runspec.from_record(record, tmp_path)
    assert again.run_id == record["run_id"]
    assert again.model.config.hidden == 16 and again.protocol.exclude_seen and again.protocol.max_len == 20


def test_bench_runs_settings_are_resolved_once_per_model_from_flags_to_the_stored_record(tmp_path, monkeypatch):
    """`--set` strings are parsed once: the plan and the run take the resolved spec."""
    from bench.cli import commands
    from bench.runs import plan
    from bench.runs.grid import run_grid

    calls = []
    real = registry.resolve
    monkeypatch.setattr(registry, "resolve", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    from bench.cli.runoptions import RunOptions

    specs, jobs, *_ = commands.run_requests(RunOptions(
        dataset="synthetic", models="pop,sasrec", seeds="2", out=tmp_path / "out",
        sets=[f"sasrec.{k}={v}" for k, v in TINY.items()]), quiet=True)
    assert sorted(calls) == ["pop", "sasrec"]
    plan.plan(specs)
    records = run_grid(specs, jobs)
    assert sorted(calls) == ["pop", "sasrec"]            # nothing resolved again in the plan or the runs
    assert [r["run_id"] for r in records] == [s.run_id for s in specs]
    assert {r["config"]["hidden"] for r in records if r["model"] == "sasrec"} == {16}


def test_a_record_stored_before_a_field_existed_is_read_back_as_the_run_it_was():
    """The verdict's first DiffuRecSys records (the paper's reading, kept in results/verdict-paper) predate
    the Approximator switches, whose defaults have since changed: a field the record lacks takes the value
    of the time (LATER_FIELDS), not today's default, so `bench eval` and `bench recommend` rebuild the
    model that was trained."""
    import json
    from pathlib import Path

    from bench.runs.plan import record_steps

    lines = (Path(__file__).resolve().parent.parent / "results" / "verdict-paper" / "results.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if r["model"] == "diffurecsys" and not r.get("study")]
    assert records and all("chain_blocks" not in r["config"] for r in records)
    for record in records:
        spec = runspec.from_record(record, "out")
        assert spec.run_id == record["run_id"]
        c = spec.model.config
        assert (c.chain_blocks, c.shared_norm, c.query_norm, c.query_per_position, c.padding_sink) == (
            True, False, True, False, 0)
        assert record_steps(record) == (32, 32)
