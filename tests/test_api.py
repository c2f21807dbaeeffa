"""The Python API (bench.api): the same runs, checks and store as `bench run` / `bench results`."""
import json
import subprocess
import sys

import pytest

import bench
from bench.errors import BenchError


def test_run_results_and_summary_from_python(tmp_path):
    out = tmp_path / "runs"
    first = bench.run(models=["pop", "sasrec"], dataset="synthetic", seeds=[0], epochs=2, out=out, threads=1,
                      sets={"sasrec": {"hidden": 32}})
    stored = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert list(first["model"]) == ["pop", "sasrec"] and not first["skipped"].any()
    assert {r["run_id"]: r["test"]["ndcg@10"] for r in stored} == dict(zip(first["run_id"], first["test_ndcg@10"]))
    assert next(r for r in stored if r["model"] == "sasrec")["config"]["hidden"] == 32
    again = bench.run(models="pop,sasrec", dataset="synthetic", seeds=[0], epochs=2, out=out, threads=1,
                      sets=["sasrec.hidden=32"])
    assert again["skipped"].all() and list(again["run_id"]) == list(first["run_id"])
    table = bench.results(out)
    assert set(table["run_id"]) == set(first["run_id"]) and (table["split"] == "leave-one-out").all()
    assert {"test_kept_ndcg@10", "test_removed_ndcg@10"} <= set(table.columns)
    rows = bench.summary(out)
    assert set(rows["model"]) == {"pop", "sasrec"}
    sasrec = rows[rows["model"] == "sasrec"].iloc[0]
    assert sasrec["ndcg@10"][0] == pytest.approx(100 * table[table["model"] == "sasrec"]["test_ndcg@10"].iloc[0])


def test_a_bad_option_raises_the_commands_message_before_any_work(tmp_path):
    with pytest.raises(BenchError, match="unknown model 'nosuch'"):
        bench.run(models="nosuch", dataset="synthetic", out=tmp_path / "runs")
    with pytest.raises(BenchError, match="unknown --split"):
        bench.run(models="pop", dataset="synthetic", out=tmp_path / "runs", split="random")
    assert not (tmp_path / "runs" / "results.jsonl").exists()


def test_importing_bench_stays_light():
    code = "import sys, bench; print('torch' in sys.modules, 'pandas' in sys.modules, callable(bench.run))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert shown == ["False", "False", "True"]
