"""`bench data prepare`: a raw log (CSV, TSV, Parquet, RecBole .inter) into a dataset file, each rule counted."""
import pickle

import pandas as pd
import pytest

from bench import data
from bench.data import prepare
from bench.errors import BenchError
from tests.conftest import bench_cli

LOG = """uid,sid,ts,stars
u1,a,2014-03-01T10:00:00Z,5
u1,b,2014-03-02T10:00:00Z,4
u1,c,2014-03-03T10:00:00Z,5
u1,c,2014-03-03T10:00:00Z,5
u2,a,2014-03-01T11:00:00Z,1
u2,b,2014-03-02T11:00:00Z,5
u2,c,2014-03-04T11:00:00Z,5
u2,d,2014-03-05T11:00:00Z,5
u3,a,2014-03-01T12:00:00Z,5
u3,d,,5
"""


def test_prepare_counts_every_rule_and_writes_a_file_that_trains(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(LOG)
    out = tmp_path / "mine.pkl"
    proc = bench_cli("data", "prepare", str(log), "--out", str(out), "--user-col", "uid", "--item-col", "sid",
                     "--time-col", "ts", "--rating-col", "stars", "--min-rating", "4", "--min-item", "2")
    assert proc.returncode == 0, proc.stderr
    # 10 rows: one without a time, one rated 1, one duplicate; item d is then alone (k-core on items >= 2);
    # u2 (b, c) and u3 (a) are left with fewer than 3 interactions
    for line in ("1 users, 3 items, 3 interactions (from 10 rows)", "1 rows with an empty user, item or time",
                 "1 rows rated below 4.0", "1 exact duplicate rows", "1 rows (0 users, 1 items) by the k-core",
                 "2 users with fewer than 3 interactions (3 rows)"):
        assert line in proc.stdout, proc.stdout
    raw = pickle.loads(out.read_bytes())
    day = 86_400.0
    assert raw == {"train": {0: [1]}, "val": {0: [2]}, "test": {0: [3]}, "umap": {"u1": 0},
                   "smap": {"a": 1, "b": 2, "c": 3}, "time": {0: [1393668000.0, 1393668000.0 + day,
                                                                 1393668000.0 + 2 * day]}}
    ds = data.resolve(str(out))
    assert ds.n_users == 1 and ds.item_ids == (None, "a", "b", "c")
    run = bench_cli("run", "--models", "pop", "--dataset", str(out), "--out", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stderr
    assert "dataset mine: 1 users, 3 items, 3 interactions" in run.stdout


def test_k_core_repeats_to_a_fixed_point():
    # user x has 2 events and is dropped at min_user 3; that leaves item i with 2 users, dropped at min_item 3,
    # which leaves user y with 2 events, dropped in turn
    events = [("x", "i", 1), ("x", "j", 2), ("y", "i", 1), ("y", "k", 2), ("y", "l", 3)]
    events += [(u, it, t) for u in ("p", "q", "r") for t, it in enumerate(("j", "k", "l"))]
    kept = prepare.k_core(events, 3, 3)
    assert {e[0] for e in kept} == {"p", "q", "r"} and {e[1] for e in kept} == {"j", "k", "l"}
    assert all(sum(e[0] == u for e in kept) >= 3 for u in "pqr")


def test_numeric_and_iso_times_order_each_users_items_and_ties_keep_file_order(tmp_path):
    tsv = tmp_path / "log.tsv"
    tsv.write_text("user\titem\ttimestamp\n" + "".join(f"u\t{i}\t{t}\n" for i, t in
                                                        ((10, 30), (11, 10), (12, 20), (13, 20))))
    raw, _ = prepare.prepare(tsv)
    # times 10, 20, 20, 30: items 11, 12, 13 (the tie in file order), 10; numeric ids stay ints
    assert raw["smap"] == {11: 1, 12: 2, 13: 3, 10: 4} and raw["train"][0] == [1, 2]
    iso = tmp_path / "iso.csv"
    iso.write_text("user,item,timestamp\nu,a,2020-01-02T00:00:00+01:00\nu,b,2020-01-01T23:30:00Z\nu,c,2020-01-03\n")
    raw, _ = prepare.prepare(iso)
    assert raw["smap"] == {"a": 1, "b": 2, "c": 3}      # 23:00 UTC before 23:30 UTC


def test_parquet_and_recbole_inter_files(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"user": [7, 7, 7, 8], "item": [1, 2, 3, 1], "timestamp": [1.0, 2.0, 3.0, 1.0]})
    frame.to_parquet(tmp_path / "log.parquet")
    raw, summary = prepare.prepare(tmp_path / "log.parquet")
    assert raw["umap"] == {7: 0} and summary.short_users == 1
    inter = tmp_path / "ml.inter"
    inter.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                     + "".join(f"1\t{i}\t{r}\t{t}\n" for i, r, t in ((5, 5, 1), (6, 2, 2), (7, 4, 3), (8, 5, 4))))
    raw, summary = prepare.prepare(inter, min_rating=3)
    assert summary.below_rating == 1 and raw["smap"] == {5: 1, 7: 2, 8: 3}


@pytest.mark.parametrize("body, args, message", [
    ("user,item,when\nu,a,1\n", [], "no time column 'timestamp'; the file has ['user', 'item', 'when']"),
    ("user,item,timestamp\nu,a,1\nu,b,yesterday\n", [], "row 3: time 'yesterday' is not a finite number"),
    ("user,item,timestamp\nu,a,2020-01-01\n,b,2\nu,b,soon\n", [], "row 4: time 'soon' is neither a number nor an ISO"),
    ("user,item,timestamp\nu,a,1\nu,b,inf\n", [], "row 3: time 'inf' is not a finite number"),
    ("user,item,timestamp\nu,a,1\nu,b,2\n", [], "no user has 3 or more interactions"),
    ("user,item,timestamp\nu,a,1\n", ["--min-user", "-1"], "--min-user must be 0 or more"),
    ("user,item,timestamp,rating\nu,a,1,good\n", ["--min-rating", "3"], "rating 'good' is not a number"),
])
def test_bad_logs_are_one_line_and_write_nothing(tmp_path, body, args, message):
    log = tmp_path / "log.csv"
    log.write_text(body)
    out = tmp_path / "out.pkl"
    proc = bench_cli("data", "prepare", str(log), "--out", str(out), *args)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_unknown_format_and_wrong_out_name(tmp_path):
    (tmp_path / "log.json").write_text("{}")
    with pytest.raises(BenchError, match="unknown log format '.json'"):
        prepare.prepare(tmp_path / "log.json")
    (tmp_path / "log.csv").write_text("user,item,timestamp\n")
    proc = bench_cli("data", "prepare", str(tmp_path / "log.csv"), "--out", str(tmp_path / "out.csv"))
    assert proc.returncode != 0 and "--out must end in .pkl" in proc.stderr


def test_a_log_read_directly_says_what_it_dropped_when_a_run_starts(tmp_path):
    log = tmp_path / "direct.tsv"
    log.write_text("user\titem\ttimestamp\n" + "".join(f"{u}\t{i}\t{i}\n" for u in ("a", "b") for i in range(1, 5))
                   + "c\t1\t1\nc\t2\t2\n")
    proc = bench_cli("run", "--models", "pop", "--dataset", str(log), "--out", str(tmp_path / "runs"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "dataset direct: 2 users, 4 items, 8 interactions (from 10 rows)" in proc.stdout
    assert "dropped 1 users with fewer than 3 interactions (2 rows)" in proc.stdout
