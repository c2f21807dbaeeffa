"""`bench recommend`: k rows per user, original ids, and exactly the scores the test protocol ranked."""
import csv
from pathlib import Path

import numpy as np
import pytest

from bench.data import synthetic
from bench.eval.protocol import eval_split, score_batches
from bench.eval.reeval import load_best
from bench.runs.run import run_one
from bench.runs.spec import build
from bench.train.loop import autocast
from tests.conftest import bench_cli

TINY = {"sasrec": {"hidden": "16", "blocks": "1", "epochs": "12", "eval_every": "3"},
        "diffurec": {"hidden": "16", "blocks": "1", "heads": "2", "diffusion_steps": "8", "epochs": "10", "lr": "5e-3"}}


@pytest.fixture(scope="module", params=["sasrec", "diffurec"])
def finished(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    record = run_one(build(request.param, "synthetic", seed=0, out=str(out), sets=TINY[request.param]))
    return out, record


@pytest.fixture(scope="module")
def sasrec_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    return out, run_one(build("sasrec", "synthetic", seed=0, out=str(out), sets=TINY["sasrec"]))


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def protocol_ranks(out: Path, record: dict, seen: str) -> list[int]:
    with open(out / record["per_user_seen"][seen], newline="") as f:
        return [int(r["rank"]) for r in csv.DictReader(f)]


def protocol_scores(out: Path, record: dict) -> np.ndarray:
    """(U, N+1) test scores, computed as the trainer's test pass computes them."""
    ds = synthetic()
    model, _, train, protocol, dev = load_best(out, record, ds)
    split = eval_split(ds, "test", protocol)
    scores = np.empty((ds.n_users, ds.n_items + 1), dtype=np.float32)
    with autocast(dev, train.precision):
        for users, s in score_batches(model.score, split, train.eval_batch_size, dev, ds.n_items):
            scores[users.numpy()] = s.numpy()
    return scores


@pytest.mark.parametrize("seen", ["kept", "removed"])
def test_first_recommendation_of_a_rank_one_user_is_its_target_with_the_protocols_score(finished, seen, tmp_path):
    out, record = finished
    run_dir = out / Path(record["history"]).parent
    path = tmp_path / "top.csv"
    flag = "--exclude-seen" if seen == "removed" else "--include-seen"
    proc = bench_cli("recommend", str(run_dir), "--k", "10", flag, "--out", str(path))
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(path)
    ds = synthetic()
    assert len(rows) == 10 * ds.n_users
    by_user = {}
    for r in rows:
        by_user.setdefault(int(r["user"]), []).append(r)
    assert all([int(r["rank"]) for r in v] == list(range(1, 11)) for v in by_user.values())
    ranks, scores = protocol_ranks(out, record, seen), protocol_scores(out, record)
    histories = [set(s + [v]) for s, v in zip(ds.train, ds.val)]
    checked = 0
    for u, rank in enumerate(ranks):
        if seen == "removed" and ds.test[u] in histories[u]:
            continue            # the protocol keeps a seen target as a candidate; a recommendation cannot know it
        first = by_user[u][0]
        if rank == 1:
            assert int(first["item"]) == ds.test[u], u
            assert np.float32(float(first["score"])) == scores[u, ds.test[u]], u
            checked += 1
        else:
            assert int(first["item"]) != ds.test[u], u
    assert checked >= 5, checked            # even the tiny models rank some synthetic targets first


def test_users_file_subset_and_mistakes_are_one_line(sasrec_run, tmp_path):
    out, record = sasrec_run
    (tmp_path / "users.txt").write_text("5\n3\n5\n")
    path = tmp_path / "few.csv"
    proc = bench_cli("recommend", "--run-id", record["run_id"][:8], "--runs", str(out), "--users",
                     str(tmp_path / "users.txt"), "--k", "3", "--out", str(path))
    assert proc.returncode == 0, proc.stderr
    assert [(r["user"], r["rank"]) for r in read_rows(path)] == [("5", "1"), ("5", "2"), ("5", "3"),
                                                                  ("3", "1"), ("3", "2"), ("3", "3")]
    (tmp_path / "bad.txt").write_text("nosuchuser\n")
    run_dir = str(out / Path(record["history"]).parent)
    for args in (["--users", str(tmp_path / "bad.txt"), "--out", str(tmp_path / "x.csv")],
                 ["--k", "0", "--out", str(tmp_path / "x.csv")],
                 ["--out", str(tmp_path / "x.json")],
                 ["--run-id", "ffff", "--out", str(tmp_path / "x.csv")]):
        proc = bench_cli("recommend", run_dir, *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args, proc.stderr)
    proc = bench_cli("recommend", str(tmp_path), "--out", str(tmp_path / "x.csv"))
    assert proc.returncode == 2 and "not a run folder" in proc.stderr
    assert not (tmp_path / "x.csv").exists()


def test_original_ids_come_from_umap_smap_or_the_interaction_log(tmp_path):
    import pickle

    from bench import data
    from bench.data import tsv

    raw = {"train": {0: [1, 2], 1: [3]}, "val": {0: [3], 1: [1]}, "test": {0: [4], 1: [2]},
           "umap": {"a": 0, "b": 1}, "smap": {"i1": 1, "i2": 2, "i3": 3, "i4": 4}}
    (tmp_path / "d.pkl").write_bytes(pickle.dumps(raw))
    ds = data.load_pickle(tmp_path / "d.pkl")
    assert ds.user_ids == ("a", "b") and ds.item_ids == (None, "i1", "i2", "i3", "i4")
    raw["smap"] = {"i1": 1, "i2": 1, "i3": 3, "i4": 4}               # not one-to-one: no ids, internal ones used
    (tmp_path / "d.pkl").write_bytes(pickle.dumps(raw))
    assert data.load_pickle(tmp_path / "d.pkl").item_ids is None
    (tmp_path / "log.tsv").write_text("user\titem\ttimestamp\nu9\tx\t1\nu9\ty\t2\nu9\tz\t3\n")
    ds = tsv.load_interactions(tmp_path / "log.tsv")
    assert ds.user_ids == ("u9",) and ds.item_ids == (None, "x", "y", "z")
