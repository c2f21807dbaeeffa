"""Torn files, damaged checkpoints and stray lines: a rerun says what it found and carries on."""
import json
import warnings
from pathlib import Path

import pytest

from bench.runs import results
from bench.errors import BenchError
from bench.runs.run import run_one
from bench.runs.spec import RunSpec, build
from tests.conftest import bench_cli

GRID = ["ablate", "torn", "--dataset", "synthetic", "--model", "sasrec", "--set", "sasrec.hidden=8",
        "--set", "sasrec.blocks=1", "--grid", "dropout=0.1,0.2", "--seeds", "1", "--epochs", "1"]


def table(stdout: str) -> list[str]:
    """The rows of a study table printed by `bench ablate`."""
    return [line for line in stdout.splitlines() if "dropout=" in line]


# -- a torn Optuna journal ---------------------------------------------------

def test_torn_journal_tail_is_dropped_and_the_study_finishes_without_repeating_trials(tmp_path):
    torn, clean = tmp_path / "torn", tmp_path / "clean"
    for out in (torn, clean):
        first = bench_cli(*GRID, "--out", str(out))
        assert first.returncode == 0, first.stderr
    journal = next(torn.glob("studies/*/journal.log"))
    size = journal.stat().st_size
    with open(journal, "r+b") as f:         # a writer killed mid-append
        f.truncate(size - 60)
    lines_before = (torn / "results.jsonl").read_text()
    reruns = [bench_cli(*GRID, "--out", str(torn)) for _ in range(2)]
    for proc in reruns:
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    assert "torn" in reruns[0].stderr and "dropped" in reruns[0].stderr
    assert "dropped" not in reruns[1].stderr                    # repaired once, clean from then on
    assert journal.with_name("journal.log.torn").exists()
    untouched = bench_cli(*GRID, "--out", str(clean))
    assert table(reruns[1].stdout) == table(untouched.stdout) and len(table(untouched.stdout)) == 2
    assert (torn / "results.jsonl").read_text() == lines_before   # nothing trained again
    report = bench_cli("report", str(torn), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr


def test_journal_line_appended_onto_a_torn_one_keeps_its_record(tmp_path):
    from bench.studies.storage import repair_journal

    good = [json.dumps({"op_code": 0, "worker_id": "w", "study_name": "s"}),
            json.dumps({"op_code": 4, "worker_id": "w", "study_id": 0})]
    later = json.dumps({"op_code": 6, "worker_id": "w", "trial_id": 0, "state": 1})
    path = tmp_path / "journal.log"
    path.write_text(good[0] + "\n" + good[1][:-20] + later + "\n")
    assert repair_journal(path) == len(good[1]) - 20
    assert path.read_text() == good[0] + "\n" + later + "\n"
    assert repair_journal(path) == 0


# -- damaged checkpoints -----------------------------------------------------

def stop_at(epoch):
    def on_eval(e, metrics):
        if e == epoch:
            raise KeyboardInterrupt
    return on_eval


def request(out: Path, **kw) -> RunSpec:
    sets = {"hidden": "16", "blocks": "1", "epochs": "4", "eval_every": "1", "patience": "100"}
    return build("sasrec", "synthetic", seed=0, out=str(out), sets=sets, **kw)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    return run_one(request(tmp_path_factory.mktemp("clean")))


def stopped_run(out: Path) -> Path:
    with pytest.raises(KeyboardInterrupt):
        run_one(request(out, on_eval=stop_at(3)))
    return next(out.glob("runs/synthetic/sasrec/seed0-*"))


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_damaged_checkpoint_falls_back_to_the_one_before_and_ends_as_uninterrupted(tmp_path, damage, uninterrupted,
                                                                                   capfd):
    folder = stopped_run(tmp_path)
    ckpt = folder / "checkpoint.pt"
    assert (folder / "checkpoint.prev.pt").exists()
    ckpt.write_bytes(b"" if damage == "empty" else ckpt.read_bytes()[:1000])
    status = bench_cli("status", str(tmp_path))
    assert status.returncode == 0, status.stderr
    assert "damaged" in status.stdout
    record = run_one(request(tmp_path))
    err = capfd.readouterr().err
    assert "checkpoint.pt is damaged" in err and "kept as checkpoint.pt.damaged-" in err
    assert list(folder.glob("checkpoint.pt.damaged-*"))
    assert record["test"] == uninterrupted["test"] and record["valid"] == uninterrupted["valid"]
    assert record["epochs_run"] == 4


def test_damaged_best_checkpoint_restarts_the_run_from_scratch(tmp_path, uninterrupted, capfd):
    folder = stopped_run(tmp_path)
    (folder / "best.pt").write_bytes(b"\x00" * 10)
    record = run_one(request(tmp_path))
    err = capfd.readouterr().err
    assert "best.pt is damaged" in err and "restarts from epoch 0" in err
    assert record["test"] == uninterrupted["test"] and record["best_epoch"] == uninterrupted["best_epoch"]


def test_checkpoints_are_written_through_fsync(tmp_path, monkeypatch):
    import os

    from bench.train.checkpoint import atomic_torch_save, load
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    atomic_torch_save({"x": 1}, tmp_path / "c.pt")
    assert len(synced) == 2                         # the file, then its folder after the rename
    assert load(tmp_path / "c.pt") == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


# -- stray lines in results.jsonl ---------------------------------------------

def test_results_line_that_is_json_but_not_a_record_or_not_utf8_is_skipped_with_a_warning(tmp_path):
    first = bench_cli("run", "--models", "pop", "--dataset", "synthetic", "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    path = tmp_path / "results.jsonl"
    path.write_bytes(path.read_bytes() + b"[1,2,3]\n" + b'{"run_id": "\xff\xfe"}\n' + b'{"a": 1}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(results.read(tmp_path)) == 1
    said = [str(w.message) for w in caught]
    assert len(said) == 3 and ":2:" in said[0] and "list" in said[0] and "UTF-8" in said[1]
    for command in (["results", str(tmp_path)], ["status", str(tmp_path)],
                    ["report", str(tmp_path), "--out", str(tmp_path / "report")],
                    ["run", "--models", "pop", "--dataset", "synthetic", "--out", str(tmp_path)]):
        proc = bench_cli(*command)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (command, proc.stderr)
        assert "skipping a damaged line" in proc.stderr, command


# -- histories and stored paths ------------------------------------------------

@pytest.mark.parametrize("content", ["", "epoch,loss\nabc,def\n", "\xff\xfe"])
def test_empty_or_non_numeric_history_skips_that_runs_curves(tmp_path, content):
    first = bench_cli("run", "--models", "pop", "--dataset", "synthetic", "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    record = results.read(tmp_path)[0]
    (tmp_path / record["history"]).write_bytes(content.encode("latin-1"))
    proc = bench_cli("report", str(tmp_path), "--out", str(tmp_path / "report"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "unreadable history" in proc.stderr
    assert (tmp_path / "report" / "report.pdf").exists()


def test_stored_paths_outside_the_results_folder_are_refused(tmp_path):
    first = bench_cli("run", "--models", "pop", "--dataset", "synthetic", "--out", str(tmp_path / "out"))
    assert first.returncode == 0, first.stderr
    path = tmp_path / "out" / "results.jsonl"
    record = json.loads(path.read_text())
    for bad in ("../../elsewhere/history.csv", str(tmp_path / "abs" / "history.csv")):
        path.write_text(json.dumps({**record, "history": bad}) + "\n")
        proc = bench_cli("eval", "--models", "pop", "--dataset", "synthetic", "--out", str(tmp_path / "out"))
        assert proc.returncode != 0
        assert proc.stderr.strip().startswith("error:") and "outside" in proc.stderr, proc.stderr
        assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "abs").exists()
    with pytest.raises(BenchError, match="outside"):
        results.inside(tmp_path / "out", "../x")


# -- a loss that explodes, a study point that fails ----------------------------

def test_exploding_loss_is_stored_with_its_reason_and_shown(tmp_path):
    args = ["run", "--models", "sasrec", "--dataset", "synthetic", "--epochs", "1", "--set", "sasrec.hidden=16",
            "--set", "sasrec.lr=1000", "--set", "sasrec.eval_every=1", "--out", str(tmp_path)]
    proc = bench_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "loss exploded" in proc.stderr
    record = results.read(tmp_path)[0]
    assert "loss exploded" in record["diverged"]
    shown = bench_cli("results", str(tmp_path))
    assert "(!)" in shown.stdout and "loss exploded" in shown.stdout


def test_a_study_point_that_failed_shows_why(tmp_path):
    proc = bench_cli("ablate", "failing", "--dataset", "synthetic", "--model", "sasrec", "--set", "sasrec.hidden=8",
                     "--grid", "lr=1e-3,1e30", "--set", "sasrec.precision=fp32", "--seeds", "1", "--epochs", "2",
                     "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "lr=" in line]
    failed = [r for r in rows if "1e+30" in r or "1e30" in r]
    assert failed and ("failed" in failed[0] or "diverged" in failed[0]), proc.stdout


# -- values checked before anything starts ----------------------------------------

@pytest.mark.parametrize("model, field, value", [
    ("sasrec", "dropout", "1.0"), ("sasrec", "dropout", "nan"), ("sasrec", "dropout", "inf"),
    ("sasrec", "dropout", "-0.5"), ("sasrec", "heads", "0"), ("sasrec", "hidden", "0"),
    ("sasrec", "blocks", "-1"), ("sasrec", "lr", "nan"), ("sasrec", "lr", "0"), ("sasrec", "lr", "-1e-3"),
    ("sasrec", "weight_decay", "inf"), ("sasrec", "weight_decay", "-1"), ("sasrec", "hidden", "1000000"),
    ("diffurec", "hidden", "63"), ("bert4rec", "dropout", "1"), ("svae", "latent", "0"),
    ("diffurec", "emb_dropout", "1.5"), ("diffurec", "offset_noise", "nan"), ("acvae", "temperature", "0"),
])
def test_config_values_out_of_range_are_one_line_before_any_work(model, field, value):
    from bench import registry

    with pytest.raises(BenchError, match=f"{model}.(hidden|{field})") as caught:
        registry.resolve(model, {model: {field: value}})
    assert "\n" not in str(caught.value)


def test_out_of_range_value_on_the_command_line_makes_no_run_folder(tmp_path):
    for value in ("1.0", "-0.5"):
        proc = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--set", f"sasrec.dropout={value}",
                         "--out", str(tmp_path / "out"))
        assert proc.returncode == 2 and proc.stderr.startswith("error: sasrec.dropout must be in [0, 1)"), proc.stderr
    proc = bench_cli("ablate", "g", "--model", "sasrec", "--dataset", "synthetic", "--grid", "hidden=8,63",
                     "--set", "sasrec.heads=2", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "divisible" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_seeds_negative_or_empty_are_refused_and_duplicates_run_once(tmp_path):
    from bench.cli.options import parse_seed_list, parse_seeds

    for bad in ("-1,-2", ",", " , ", "-1", "0", "3,-1"):
        with pytest.raises(BenchError):
            parse_seeds(bad)
    with pytest.raises(BenchError):
        parse_seed_list(",")
    assert parse_seeds("3,3") == [3] and parse_seeds("2,1,2") == [2, 1]
    proc = bench_cli("run", "--models", "pop", "--dataset", "synthetic", "--seeds=-1,-2", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and not (tmp_path / "results.jsonl").exists()
    proc = bench_cli("run", "--models", "pop", "--dataset", "synthetic", "--seeds", "3,3", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert [r["seed"] for r in results.read(tmp_path)] == [3]
    assert "│ 1 " in proc.stdout or " 1 │" in proc.stdout         # one seed in the table


def test_jobs_above_runs_or_cores_is_capped(tmp_path):
    proc = bench_cli("run", "--models", "pop", "--dataset", "synthetic", "--seeds", "2", "--jobs", "100",
                     "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "--jobs 100 capped at 2" in proc.stderr
    assert len(results.read(tmp_path)) == 2


def test_out_that_is_a_file_data_dir_that_is_a_file_and_a_bad_base_url_are_one_line(tmp_path):
    import os

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = {
        "--out is a file": ["run", "--models", "pop", "--dataset", "synthetic", "--out", str(a_file)],
        "--out under a file": ["run", "--models", "pop", "--dataset", "synthetic", "--out", str(a_file / "sub")],
        "ablate --out is a file": ["ablate", "g", "--model", "pop", "--dataset", "synthetic", "--grid", "epochs=0",
                                   "--out", str(a_file)],
        "report --out is a file": ["report", str(tmp_path), "--out", str(a_file)],
        "--data-dir is a file": ["run", "--models", "pop", "--dataset", "beauty", "--data-dir", str(a_file),
                                 "--out", str(tmp_path / "o")],
        "fetch into a file": ["data", "fetch", "toys", "--data-dir", str(a_file)],
        "fetch from not a URL": ["data", "fetch", "toys", "--base-url", "notaurl", "--data-dir", str(tmp_path / "d")],
    }
    if os.geteuid() != 0:           # root writes into a read-only folder anyway
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        cases["--out read-only"] = ["run", "--models", "pop", "--dataset", "synthetic", "--out", str(ro / "x")]
    for label, args in cases.items():
        proc = bench_cli(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (label, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("error:"), (label, proc.stderr)
    assert a_file.read_text() == "x"
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists()


# -- data ------------------------------------------------------------------------

def test_named_dataset_is_checked_against_its_pinned_sha256_once(data_dir, tmp_path, monkeypatch):
    import shutil

    from bench import data
    from bench.data import fetch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(data_dir / "toys.pkl", good / "toys.pkl")
    hashed = []
    real = fetch.sha256_of
    monkeypatch.setattr(fetch, "sha256_of", lambda p: (hashed.append(p), real(p))[1])
    assert data.resolve("toys", good).n_users == 19412
    assert data.resolve("toys", good).n_users == 19412
    assert len(hashed) == 1                                # the second load trusted the cached check
    bad = tmp_path / "bad"
    bad.mkdir()
    body = bytearray((data_dir / "toys.pkl").read_bytes())
    body[-10] ^= 1
    (bad / "toys.pkl").write_bytes(bytes(body))
    with pytest.raises(BenchError, match="not the pinned 'toys' dataset.*bench data fetch toys") as caught:
        data.resolve("toys", bad)
    assert str(bad / "toys.pkl") in str(caught.value)
    (good / "toys.pkl").write_bytes(bytes(body))          # changed in place: checked again
    with pytest.raises(BenchError, match="not the pinned"):
        data.resolve("toys", good)


def test_download_larger_than_the_pinned_size_stops(tmp_path):
    from bench.data import fetch

    mirror = tmp_path / "mirror" / "toys"
    mirror.mkdir(parents=True)
    (mirror / "dataset.pkl").write_bytes(b"\0" * (fetch.SIZE["toys"] + 5_000_000))
    with pytest.raises(BenchError, match="larger than"):
        fetch.fetch("toys", tmp_path / "dest", base_url=(tmp_path / "mirror").as_uri())
    assert not (tmp_path / "dest").exists()       # no partial file, no empty folder


def split_dict(items_of_user0):
    return {"train": {0: items_of_user0, 1: [3]}, "val": {0: [3], 1: [1]}, "test": {0: [4], 1: [2]},
            "umap": {"a": 0, "b": 1}, "smap": {"i1": 1, "i2": 2, "i3": 3, "i4": 4}}


def test_pickle_bombs_are_refused_with_a_short_line(tmp_path):
    import pickle
    import struct

    from bench import data

    marker = 987_654_321
    depth = 200_000         # an item nested this deep, written opcode by opcode (pickle.dumps would recurse)
    nested = b"]" * depth + b"a" * (depth - 1)
    cases = {"deep": [1, marker], "huge": [1, "x" * 50_000_000], "float": [1, 2.0]}
    for label, items in cases.items():
        path = tmp_path / f"{label}.pkl"
        body = pickle.dumps(split_dict(items), protocol=4)
        path.write_bytes(body.replace(b"J" + struct.pack("<i", marker), nested) if label == "deep" else body)
        with pytest.raises(BenchError) as caught:
            data.load_pickle(path)
        assert len(str(caught.value)) < 300, label
    shared = list(range(1, 5)) * 50_000          # 200,000 interactions, pickled once, shared by every user
    n = 2_000
    bomb = {"train": {u: shared for u in range(n)}, "val": {u: [1] for u in range(n)},
            "test": {u: [2] for u in range(n)}, "smap": {f"i{i}": i for i in range(1, 5)}}
    path = tmp_path / "memo.pkl"
    path.write_bytes(pickle.dumps(bomb, protocol=4))
    assert path.stat().st_size < 1_000_000
    with pytest.raises(BenchError, match="shared many times"):
        data.load_pickle(path)


@pytest.mark.parametrize("body, message", [
    ("user\titem\ttimestamp\nu1\ti1\t1\nu1\ti2\tnan\n", r":3: timestamp 'nan' is not a finite"),
    ("user\titem\ttimestamp\nu1\ti1\t1\nu1\ti2\tinf\n", r":3: timestamp 'inf' is not a finite"),
    (b"user\titem\ttimestamp\nu1\ti1\t1\nu1\t\xff\t2\n", r":3: not UTF-8"),
])
def test_interaction_files_with_nan_timestamps_or_bad_bytes_are_refused(tmp_path, body, message):
    from bench.data import tsv

    path = tmp_path / "log.tsv"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    with pytest.raises(BenchError, match=message):
        tsv.load_interactions(path)


def test_exact_duplicate_rows_are_dropped_and_counted_and_csv_reads_commas(tmp_path, capsys):
    from bench.data import tsv

    rows = ["user,item,timestamp", "u1,a,1", "u1,b,2", "u1,b,2", "u1,c,3", "u1,c,3", "u1,d,4"]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(rows) + "\n")
    ds = tsv.load_interactions(path)
    assert ds.train == [[1, 2]] and ds.val == [3] and ds.test == [4]
    # counted in the dataset's summary, which a run prints when it starts
    assert ds.summary.duplicates == 2 and "  dropped 2 exact duplicate rows" in ds.summary.lines("log")
