"""The protocol's other split and order (bench.eval.splits): a global temporal split and shuffled histories."""
import csv
import json
import pickle
import random

import pytest

from bench import data
from bench.data import Dataset
from bench.errors import BenchError
from bench.eval import splits
from bench.eval.protocol import Protocol, eval_split
from bench.runs.fields import identity
from tests.conftest import bench_cli


def timed_dataset(n_users=40, seed=3) -> Dataset:
    """Users with random start days and gaps: a global timeline to cut."""
    rng = random.Random(seed)
    seqs, times = [], []
    for _ in range(n_users):
        day, seq, ts = rng.randrange(100), [], []
        for _ in range(rng.randint(3, 9)):
            seq.append(rng.randint(1, 30))
            ts.append(day)
            day += rng.randint(0, 6)
        seqs.append(seq)
        times.append(tuple(ts))
    return Dataset("timed", [s[:-2] for s in seqs], [s[-2] for s in seqs], [s[-1] for s in seqs], 30,
                   times=tuple(times))


def test_the_temporal_split_matches_a_cut_computed_here():
    ds = timed_dataset()
    proto = Protocol(split="temporal", cutoff=0.8)
    view = splits.view(ds, proto)
    events = sorted((t, u, k) for u, ts in enumerate(ds.times) for k, t in enumerate(ts))
    test_cut = events[int(0.8 * len(events))][0]
    valid_cut = test_cut - (events[-1][0] - test_cut)
    full = [s + [v, t] for s, v, t in zip(ds.train, ds.val, ds.test)]
    for which, start, end in (("valid", valid_cut, test_cut), ("test", test_cut, float("inf"))):
        split = eval_split(view, which, proto)
        expected = {}
        for u, (items, ts) in enumerate(zip(full, ds.times)):
            before = [i for i, t in zip(items, ts) if t < start]
            after = [i for i, t in zip(items, ts) if start <= t < end]
            if before and after:
                expected[u] = (before, after[0])
        assert split.users.tolist() == sorted(expected)
        for row, u in enumerate(split.users.tolist()):
            history, target = expected[u]
            assert int(split.target[row]) == target
            assert [i for i in split.history[row].tolist() if i] == history[-proto.max_len:]
    assert view.train == [[i for i, t in zip(items, ts) if t < valid_cut] for items, ts in zip(full, ds.times)]


def test_shuffled_histories_keep_items_and_targets_and_are_the_same_every_time():
    ds = data.synthetic()
    proto = Protocol(order="shuffled")
    a, b = splits.view(ds, proto), splits.view(ds, proto)
    assert a.train == b.train and a.train != ds.train
    assert all(sorted(x) == sorted(y) for x, y in zip(a.train, ds.train))
    for which in ("valid", "test"):
        plain, mixed = eval_split(ds, which, Protocol()), eval_split(a, which, proto)
        assert mixed.target.tolist() == plain.target.tolist()
        assert (mixed.history.sort(1).values == plain.history.sort(1).values).all()
        assert (mixed.history != plain.history).any()


def test_leave_one_out_runs_keep_their_identity():
    # the protocol fields added for these settings are left out at their defaults, so earlier run ids stand
    assert identity(Protocol().to_dict()) == {"max_len": 50, "exclude_seen": False, "ks": (5, 10, 20),
                                              "split": "leave-one-out", "ranking": "full", "ties": "pessimistic"}
    assert "order" in identity(Protocol(order="shuffled").to_dict())


def test_a_dataset_without_timestamps_has_no_temporal_split():
    ds = data.synthetic()
    bare = Dataset(ds.name, ds.train, ds.val, ds.test, ds.n_items)
    with pytest.raises(BenchError, match="no timestamps"):
        splits.view(bare, Protocol(split="temporal"))
    with pytest.raises(BenchError, match="unknown --split"):
        splits.check("random", "chronological", 0.9)


def test_bench_run_temporal_on_a_prepared_log_then_recommend_and_report(tmp_path):
    rng = random.Random(0)
    lines = ["who,what,when"]
    for u in range(60):
        day = rng.randrange(60)
        for _ in range(rng.randint(4, 10)):
            lines.append(f"user{u},item{rng.randrange(25)},2020-{1 + day // 28:02d}-{1 + day % 28:02d}T08:00:00Z")
            day += rng.randint(1, 5)
    log = tmp_path / "log.csv"
    log.write_text("\n".join(lines) + "\n")
    prepared = tmp_path / "mine.pkl"
    proc = bench_cli("data", "prepare", str(log), "--out", str(prepared), "--user-col", "who", "--item-col", "what",
                     "--time-col", "when")
    assert proc.returncode == 0, proc.stderr
    assert "time" in pickle.loads(prepared.read_bytes())
    out = tmp_path / "runs"
    run = bench_cli("run", "--models", "pop,sasrec", "--dataset", str(prepared), "--split", "temporal",
                    "--epochs", "2", "--out", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "temporal split:" in run.stdout and "(temporal split at 0.9)" in run.stdout
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["protocol"]["split"] for r in records} == {"temporal"}
    n_test = len(eval_split(splits.view(data.resolve(str(prepared)), Protocol(split="temporal")), "test",
                            Protocol(split="temporal")).target)
    assert {r["n_test_users"] for r in records} == {n_test} and n_test < records[0]["n_users"]
    with open(out / records[1]["per_user"]) as f:
        assert len(list(csv.DictReader(f))) == n_test
    rec = bench_cli("recommend", "--runs", str(out), "--run-id", records[1]["run_id"], "--k", "2",
                    "--out", str(tmp_path / "top.csv"))
    assert rec.returncode == 0, rec.stderr
    assert len((tmp_path / "top.csv").read_text().splitlines()) == 1 + 2 * n_test
    report = bench_cli("report", str(out), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert "mine (temporal split at 0.9)" in (tmp_path / "report" / "report.md").read_text()


def test_temporal_on_a_dataset_without_times_is_one_line(tmp_path):
    ds = data.synthetic()
    bare = tmp_path / "bare.pkl"
    bare.write_bytes(pickle.dumps({"train": dict(enumerate(ds.train)), "val": {u: [v] for u, v in enumerate(ds.val)},
                                   "test": {u: [t] for u, t in enumerate(ds.test)},
                                   "smap": {i: i for i in range(1, ds.n_items + 1)}}, protocol=4))
    proc = bench_cli("run", "--models", "pop", "--dataset", str(bare), "--split", "temporal", "--out",
                     str(tmp_path / "o"))
    assert proc.returncode == 2 and "has no timestamps" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "o" / "results.jsonl").exists()


def test_every_registered_model_runs_on_the_temporal_split(tmp_path):
    out = tmp_path / "runs"
    proc = bench_cli("run", "--models", "all", "--dataset", "synthetic", "--split", "temporal", "--epochs", "1",
                     "--out", str(out), "--set", "diffurec.inference_steps=2", "--set", "diffurecsys.inference_steps=2",
                     timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from bench import registry

    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == set(registry.names())
    assert all(r["protocol"]["split"] == "temporal" for r in records)


def test_the_shuffled_study_runs_both_orders_and_keeps_them_apart(tmp_path):
    out = tmp_path / "runs"
    proc = bench_cli("ablate", "shuffled", "--dataset", "synthetic", "--seeds", "1", "--epochs", "2",
                     "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "chronological" in proc.stdout and "shuffled" in proc.stdout
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["protocol"].get("order", "chronological") for r in records) == ["chronological", "shuffled"]
    assert len({r["run_id"] for r in records}) == 2
    shown = bench_cli("results", str(out), "--studies")
    assert shown.returncode == 0 and "synthetic (histories shuffled)" in shown.stdout, shown.stdout
