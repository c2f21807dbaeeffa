"""`bench export`: a checkpoint-free copy of finished runs that the reports read like the original."""
import gzip
import json
import shutil

import numpy as np

from bench.reports.build import build_report
from bench.reports.collect import collect
from tests.conftest import bench_cli
from tests.report_fixture import records

METRICS = ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr")


def tables(out):
    return {p.name: p.read_text() for p in sorted((out / "tables").iterdir())}


def test_the_export_reports_the_same_tables_from_ranks_alone(runs, tmp_path):
    dest = tmp_path / "exported"
    proc = bench_cli("export", str(runs), "--to", str(dest))
    assert proc.returncode == 0, proc.stderr
    lines = records(dest)
    assert len(lines) == len(records(runs)) and f"{len(lines)} runs exported" in proc.stdout
    assert not list(dest.rglob("*.pt")) and not list(dest.rglob("trajectory.npz"))
    for r in lines:                                   # per-user files: one gzipped rank column
        for rel in {r["per_user"], *r["per_user_seen"].values()}:
            assert rel.endswith(".csv.gz")
            with gzip.open(dest / rel, "rt") as f:
                assert f.readline() == "rank\n"
    # every per-user metric, derived from the ranks, equals the one the run wrote
    original = {(v.model, v.record["run_id"]): v for v in collect([runs]).variants()}
    for v in collect([dest]).variants():
        for a, b in zip(v.runs, original[(v.model, v.record["run_id"])].runs):
            for m in METRICS:
                assert np.allclose(a.per_user[m], b.per_user[m], atol=1e-6), m
    build_report([runs], tmp_path / "from_runs", {"md", "csv", "tex"})
    build_report([dest], tmp_path / "from_export", {"md", "csv", "tex"})
    assert tables(tmp_path / "from_export") == tables(tmp_path / "from_runs")
    assert {"compare_synthetic.csv", "protocols_synthetic.csv"} <= set(tables(tmp_path / "from_export"))


def test_a_second_export_adds_nothing_and_a_cut_export_is_completed(runs, tmp_path):
    dest = tmp_path / "exported"
    assert bench_cli("export", str(runs), "--to", str(dest)).returncode == 0
    files = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    again = bench_cli("export", str(runs), "--to", str(dest))
    assert again.returncode == 0 and "0 runs exported" in again.stdout
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == files
    # an export cut after some files but before their record: the rerun adds the missing lines
    lines = (dest / "results.jsonl").read_text().splitlines(keepends=True)
    (dest / "results.jsonl").write_text("".join(lines[:2]) + lines[2][:40])       # a torn last line
    proc = bench_cli("export", str(runs), "--to", str(dest))
    assert proc.returncode == 0, proc.stderr
    assert f"{len(lines) - 2} runs exported" in proc.stdout
    kept = [json.loads(x) for x in (dest / "results.jsonl").read_text().splitlines()[:2]]
    assert kept == [json.loads(x) for x in lines[:2]]
    assert {(r["run_id"], r.get("study")) for r in records_ok(dest)} == {
        (r["run_id"], r.get("study")) for r in records(runs)}


def records_ok(folder):
    from bench.runs import results

    return results.read(folder)


def test_bad_input_is_one_error_line_and_a_broken_run_is_named(runs, tmp_path):
    missing = bench_cli("export", str(tmp_path / "nothing"), "--to", str(tmp_path / "x"))
    assert missing.returncode != 0 and missing.stderr.strip().count("\n") == 0 and "is not a folder" in missing.stderr
    itself = bench_cli("export", str(runs), "--to", str(runs))
    assert itself.returncode != 0 and "destination itself" in itself.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    none = bench_cli("export", str(empty), "--to", str(tmp_path / "x"))
    assert none.returncode != 0 and "no results.jsonl" in none.stderr
    assert not (tmp_path / "x").exists()
    # one run's per-user file gone: that run is named and left out, the others exported
    broken = tmp_path / "broken"
    shutil.copytree(runs, broken, ignore=shutil.ignore_patterns("*.pt", "trajectory.npz"))
    victim = next(r for r in records(broken) if r["model"] == "sasrec")
    (broken / victim["per_user_seen"]["kept"]).unlink()
    proc = bench_cli("export", str(broken), "--to", str(tmp_path / "out"))
    assert proc.returncode != 0 and victim["run_id"] in proc.stderr
    exported = {r["run_id"] for r in records(tmp_path / "out")}
    assert victim["run_id"] not in exported
    assert exported == {r["run_id"] for r in records(broken)} - {victim["run_id"]}
