"""What a hostile user can type leaves a results folder usable: bad results lines, killed reports and
exports, configurations too large for memory, tiny or foreign data, Dask paths and addresses.
Each test names the item of the list it covers."""
import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.data import synthetic
from bench.errors import BenchError
from bench.runs import results
from bench.runs.run import run_one
from bench.runs.spec import build
from tests.conftest import ROOT, bench_cli

TINY = {"sasrec": {"hidden": "16", "blocks": "1", "epochs": "2", "eval_every": "1"}}
TINY_SETS = ["--set", "sasrec.hidden=16", "--set", "sasrec.blocks=1", "--set", "sasrec.epochs=2",
             "--set", "sasrec.eval_every=1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, dict]:
    """A results folder with one small finished SASRec run on synthetic."""
    out = tmp_path_factory.mktemp("finished") / "runs"
    return out, run_one(build("sasrec", "synthetic", seed=0, out=str(out), sets=TINY["sasrec"]))


def copy_of(finished, tmp_path: Path) -> tuple[Path, dict]:
    out, record = finished
    shutil.copytree(out, tmp_path / "runs")
    return tmp_path / "runs", record


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def write_log(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    path.write_text("user\titem\ttimestamp\n" + "".join(f"{u}\t{i}\t{t}\n" for u, i, t in rows))
    return path


# -- 1. a results line with a run id but missing or mistyped fields -----------------------------------

BAD_LINES = [{"run_id": "abc123"},
             {"run_id": "abc124", "model": "sasrec", "dataset": "synthetic", "seed": 0},
             {"run_id": "abc125", "model": "sasrec", "dataset": "synthetic", "seed": 0, "valid": {"ndcg@10": "x"}},
             ]


def test_item1_bad_results_lines_are_skipped_with_a_warning_and_every_command_still_works(finished, tmp_path):
    out, record = copy_of(finished, tmp_path)
    nan = {**record, "run_id": "nan000", "test": {**record["test"], "ndcg@10": float("nan")}}
    inf = {**record, "run_id": "inf000", "valid": {**record["valid"], "ndcg@10": float("inf")}}
    text = "".join(json.dumps(r) + "\n" for r in [*BAD_LINES, nan, inf])
    with open(out / "results.jsonl", "a") as f:
        f.write(text)
    n_good = 1
    users = tmp_path / "users.txt"
    users.write_text("0\n1\n")
    commands = [["status", str(out)], ["results", str(out)],
                ["report", str(out), "--out", str(tmp_path / "rep"), "--format", "md,csv"],
                ["run", "--models", "sasrec", "--dataset", "synthetic", "--out", str(out), *TINY_SETS],
                ["eval", "--models", "sasrec", "--dataset", "synthetic", "--out", str(out), "--split", "valid"],
                ["recommend", "--run-id", record["run_id"], "--runs", str(out), "--users", str(users),
                 "--out", str(tmp_path / "top.csv")]]
    for args in commands:
        proc = bench_cli(*args)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, args
        for n, why in ((2, "no model"), (3, "no protocol"), (4, "no protocol"), (5, "test metric ndcg@10"),
                       (6, "valid metric ndcg@10")):
            assert f"results.jsonl:{n}: skipping a damaged line ({why}" in proc.stderr, (args, proc.stderr)
    assert "already finished" in bench_cli(*commands[3]).stdout         # the folder still trains (and skips)
    assert len([r for r in results.read(out) if r["run_id"] == record["run_id"]]) == n_good


def test_item1_each_field_is_checked_by_type(finished):
    _, record = finished
    assert results.problem(record) is None
    for key, value in [("seed", "0"), ("seed", True), ("best_epoch", 1.5), ("valid", {}), ("test", {"hr@10": None}),
                       ("model", 3), ("test_seen", {"kept": {"hr@10": "x"}}), ("train_seconds", float("inf"))]:
        assert results.problem({**record, key: value}), (key, value)
    assert results.problem({"run_id": "r", "estimated_seconds": 3.0}, results.PLANS) is None
    assert results.problem({"run_id": "r", "estimated_seconds": "3"}, results.PLANS)


# -- 2. a report killed mid-write leaves the previous one readable -----------------------------------

def pdf_ok(path: Path) -> bool:
    from pypdf import PdfReader

    try:
        return len(PdfReader(path).pages) > 0
    except Exception:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_item2_a_report_killed_while_rewriting_leaves_the_previous_report_readable(finished, tmp_path, sig):
    out, _ = copy_of(finished, tmp_path)
    report = tmp_path / "rep"
    args = [sys.executable, "-m", "bench.cli", "report", str(out), "--out", str(report), "--format", "pdf,md,png"]
    assert subprocess.run(args, capture_output=True, timeout=300).returncode == 0
    first = (report / "report.pdf").read_bytes()
    for delay in (1.5, 3.5):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert pdf_ok(report / "report.pdf"), f"report.pdf unreadable after {sig.name} at {delay} s"
        assert b"Traceback" not in err
        if sig == signal.SIGTERM and proc.returncode != 0:
            assert proc.returncode == 143
    assert len((report / "report.pdf").read_bytes()) > 0.5 * len(first)
    assert bench_cli("report", str(out), "--out", str(report), "--format", "pdf,md,png").returncode == 0
    assert not list(report.rglob(".*.tmp")), "a rerun leaves no temporary file"


# -- 3. a configuration too large for memory is refused before anything is built ---------------------

def test_item3_a_dry_run_refuses_a_model_too_large_for_memory_in_one_line_without_building_it(tmp_path):
    t0 = time.perf_counter()
    proc = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--set", "sasrec.hidden=16384",
                     "--set", "sasrec.heads=1", "--set", "sasrec.blocks=32", "--dry-run", "--out", str(tmp_path / "o"))
    line = one_line_error(proc)
    assert "needs about" in line and "parameters" in line and "free" in line
    assert time.perf_counter() - t0 < 120          # nothing of terabytes was allocated (the test would be killed)
    assert not (tmp_path / "o").exists()


def test_item3_the_estimate_counts_parameters_optimizer_logits_and_the_score_block():
    from bench import registry
    from bench.train import memory

    spec = registry.resolve("sasrec", {"sasrec": {"hidden": "64"}}, "synthetic")
    small = memory.estimate(spec, 1000, rows=10, positions=5, trains=True)
    big = memory.estimate(spec, 100_000, rows=10, positions=5, trains=True)
    assert big.weights > 50 * small.weights             # the item table grows with the catalogue
    assert big.step >= memory.LOGIT_COPIES * 10 * 5 * 100_000 * 4
    assert big.scoring <= memory.RANKING_COPIES * memory.SCORE_BLOCK_BYTES + memory.RANKING_COPIES * 4 * 100_001
    untrained = memory.estimate(spec, 1000, 0, 0, trains=False)
    assert untrained.step == 0 and untrained.weights < small.weights
    with pytest.raises(BenchError, match="needs about"):
        memory.check(memory.Need(weights=10**15, step=0, scoring=0), "x on y", torch.device("cpu"))


# -- 4. recommend with seen items removed and k above the unseen catalogue --------------------------

def test_item4_recommend_never_emits_padding_or_a_removed_item_and_says_when_rows_are_short(finished, tmp_path):
    out, record = copy_of(finished, tmp_path)
    ds = synthetic()
    k = ds.n_items
    path = tmp_path / "top.csv"
    proc = bench_cli("recommend", "--run-id", record["run_id"], "--runs", str(out), "--k", str(k),
                     "--exclude-seen", "--out", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "fewer than" in proc.stderr and proc.stderr.count("fewer than") == 1
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    by_user: dict[str, list[dict]] = {}
    for r in rows:
        by_user.setdefault(r["user"], []).append(r)
        assert math.isfinite(float(r["score"])) and r["item"] != "0"
    for u in (0, 1, 2):
        seen = set(ds.train[u]) | {ds.val[u]}                  # a test history: training items and validation
        got = [int(r["item"]) for r in by_user[str(u)]]
        assert not seen & set(got)
        assert len(got) == len(set(got)) == ds.n_items - len(seen)


# -- 5. recommend on a run trained from a file path -------------------------------------------------

def test_item5_recommend_finds_a_file_dataset_from_anywhere_and_refuses_a_changed_file(tmp_path):
    data = tmp_path / "ds"
    data.mkdir()
    ds = synthetic()
    rows = [(f"u{u}", f"i{i}", t) for u in range(ds.n_users)
            for t, i in enumerate(ds.train[u] + [ds.val[u], ds.test[u]])]
    log = write_log(data / "log.tsv", rows)
    proc = bench_cli("run", "--models", "pop", "--dataset", "ds/log.tsv", "--out", "runs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = next((tmp_path / "runs" / "runs").glob("*/pop/seed0-*"))
    proc = bench_cli("recommend", str(run_dir), "--k", "5", "--out", "top.csv", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (elsewhere / "top.csv").read_text().startswith("user,rank,item,score\nu0,1,i")
    with open(log, "a") as f:
        f.write("u0\ti3\t999\n")
    line = one_line_error(bench_cli("recommend", str(run_dir), "--k", "5", "--out", "top.csv", cwd=elsewhere))
    assert "has changed" in line


# -- 6 and 7. Dask: a relative --out, bad scheduler addresses ----------------------------------------

def test_item6_dask_results_land_in_the_callers_relative_out(tmp_path):
    from dask.distributed import Client, LocalCluster

    caller, elsewhere = tmp_path / "caller", tmp_path / "worker"
    caller.mkdir(), elsewhere.mkdir()
    with LocalCluster(n_workers=0, protocol="tcp", host="127.0.0.1", dashboard_address=None) as cluster:
        # a worker started in a folder of its own, as on another machine
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
                                   "--nthreads", "1", "--no-dashboard"], cwd=elsewhere,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            Client(cluster.scheduler_address).wait_for_workers(1, timeout=60)
            proc = bench_cli("run", "--models", "pop", "--dataset", "synthetic", "--seeds", "2", "--out", "dk1",
                             "--backend", "dask", "--scheduler", cluster.scheduler_address, cwd=caller)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["seed"] for r in results.read(caller / "dk1")) == [0, 1]
    assert not (elsewhere / "dk1").exists()
    assert bench_cli("results", "dk1", cwd=caller).returncode == 0


def test_item6_the_workers_check_finds_a_folder_they_cannot_write(tmp_path):
    from bench.runs.grid import _sees

    assert _sees([str(tmp_path / "new" / "folder")]) == []
    assert _sees(["/proc/1/none"]) == ["/proc/1/none"]


@pytest.mark.parametrize("address", ["foo://127.0.0.1:8786", "tcp://127.0.0.1:notaport", "tcp://127.0.0.1",
                                     "tcp://127.0.0.1:1"])
def test_item7_a_bad_scheduler_address_is_one_line_before_the_plan(address, tmp_path):
    proc = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--out", str(tmp_path / "o"),
                     "--backend", "dask", "--scheduler", address)
    line = one_line_error(proc)
    assert "scheduler" in line
    assert proc.stdout == "" and "output:" not in proc.stderr       # no plan was made


# -- 8. sizes: too little data, a tiny catalogue ------------------------------------------------------

def test_item8_a_user_with_three_interactions_is_refused_in_one_line(tmp_path):
    log = write_log(tmp_path / "three.tsv", [("u", "a", 1), ("u", "b", 2), ("u", "c", 3)])
    for extra in (["--dry-run"], []):
        line = one_line_error(bench_cli("run", "--models", "sasrec", "--dataset", str(log), "--out",
                                        str(tmp_path / "o"), *extra))
        assert "4 interactions" in line


def test_item8_diffurec_trains_and_finishes_on_a_four_item_catalogue(tmp_path):
    log = write_log(tmp_path / "four.tsv", [("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("u", "d", 4)])
    proc = bench_cli("run", "--models", "diffurec", "--dataset", str(log), "--out", str(tmp_path / "o"),
                     "--set", "diffurec.hidden=8", "--set", "diffurec.heads=2", "--set", "diffurec.blocks=1",
                     "--set", "diffurec.epochs=2", "--set", "diffurec.diffusion_steps=4")
    assert proc.returncode == 0, proc.stderr
    assert results.read(tmp_path / "o")[0]["epochs_run"] == 2
    import numpy as np
    traj = np.load(next((tmp_path / "o").rglob("trajectory.npz")))
    assert traj["topk"].shape == (1, 4)


# -- 9. a catalogue of millions: scoring blocks stay bounded -----------------------------------------

def test_item9_scoring_batches_shrink_so_a_block_of_scores_stays_bounded():
    from bench.eval.protocol import EvalSplit, score_batches
    from bench.train import memory

    n_items, users = 2_000_000, 70
    split = EvalSplit(history=torch.ones(users, 3, dtype=torch.long), lengths=torch.full((users,), 3),
                      target=torch.ones(users, dtype=torch.long), seen_ptr=torch.zeros(users + 1, dtype=torch.long),
                      seen_idx=torch.zeros(0, dtype=torch.long), users=torch.arange(users))
    sizes = [len(u) for u, _ in score_batches(lambda b: torch.zeros(len(b["history"]), n_items + 1), split, 256,
                                              torch.device("cpu"), n_items)]
    assert sum(sizes) == users
    assert max(sizes) * (n_items + 1) * 4 <= memory.SCORE_BLOCK_BYTES
    assert memory.score_batch(256, 12_101) == 256          # the benchmark datasets score as before


# -- 10. seeds in an experiment file are capped ------------------------------------------------------

def test_item10_an_experiment_file_with_too_many_seeds_is_refused_in_one_line(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(f'models = ["pop"]\ndataset = "synthetic"\nseeds = {list(range(10_001))}\n')
    line = one_line_error(bench_cli("run", "--experiment", str(path), "--dry-run"))
    assert "10,001 seeds" in line


# -- 11. two exports into one folder at once ---------------------------------------------------------

def test_item11_two_exports_into_one_folder_at_once_copy_each_line_once(finished, tmp_path):
    out, _ = copy_of(finished, tmp_path)
    for seed in (1, 2):
        run_one(build("pop", "synthetic", seed=seed, out=str(out)))
    dest = tmp_path / "shared"
    args = [sys.executable, "-m", "bench.cli", "export", str(out), "--to", str(dest)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=300)
        assert p.returncode == 0
    lines = (dest / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(results.read(out)) == 3


def test_item11_an_export_rerun_removes_what_a_killed_export_left(finished, tmp_path):
    out, _ = copy_of(finished, tmp_path)
    dest = tmp_path / "dest"
    assert bench_cli("export", str(out), "--to", str(dest)).returncode == 0
    history = next(dest.rglob("history.csv"))
    left = history.parent / ".history.csv.k1ll3d.tmp"          # as atomic_write names its temporary file
    left.write_text("half")
    assert bench_cli("export", str(out), "--to", str(dest)).returncode == 0
    assert not left.exists()


# -- 12. an experiment file's out ---------------------------------------------------------------------

def test_item12_the_plan_names_the_resolved_output_folder_and_system_folders_are_refused(tmp_path):
    exp_dir = tmp_path / "a" / "b"
    exp_dir.mkdir(parents=True)
    path = exp_dir / "e.toml"
    path.write_text('models = ["pop"]\ndataset = "synthetic"\nout = "../../x"\n')
    proc = bench_cli("run", "--experiment", str(path), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"output: {os.path.realpath(tmp_path / 'x')}" in proc.stdout
    for bad in ("/etc/bench-out", "/", "/usr/lib/x"):
        path.write_text(f'models = ["pop"]\ndataset = "synthetic"\nout = "{bad}"\n')
        assert "system folder" in one_line_error(bench_cli("run", "--experiment", str(path), "--dry-run"))


# -- 13. a best.pt of another model -------------------------------------------------------------------

def test_item13_a_readable_best_checkpoint_of_another_model_is_one_line(finished, tmp_path):
    out, record = copy_of(finished, tmp_path)
    best = out / Path(record["history"]).parent / "best.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), best)
    line = one_line_error(bench_cli("recommend", "--run-id", record["run_id"], "--runs", str(out),
                                    "--out", str(tmp_path / "top.csv")))
    assert "does not hold the weights" in line and "--force" in line


# -- the smaller ones -----------------------------------------------------------------------------------

def test_users_files_empty_or_unbounded_are_one_line(finished, tmp_path):
    out, record = copy_of(finished, tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    base = ["recommend", "--run-id", record["run_id"], "--runs", str(out), "--out", str(tmp_path / "top.csv")]
    assert "no users" in one_line_error(bench_cli(*base, "--users", str(empty)))
    assert "larger than" in one_line_error(bench_cli(*base, "--users", "/dev/zero"))
    assert not (tmp_path / "top.csv").exists()


def test_grid_values_compare_by_value_not_by_spelling():
    from bench.studies import ablation

    for spelled in ("0", "0.0", "0e0"):
        study = ablation.find("offset_noise", None, {"offset_noise": [spelled]})
        assert [p["offset_noise"] for p in study.points] == [0.0]
    assert len(ablation.find("offset_noise", None, {"offset_noise": ["1"]}).points) == 1


def test_a_grid_value_keeps_a_point_that_leaves_the_field_at_its_registered_value():
    from bench.studies import ablation

    registered = ablation.find("noisy_target", None, {"lambda_mean": ["0.001"]})
    assert registered.points == ({},) and registered.names == ("registered",)
    assert ablation.find("noisy_target", None, {"lambda_mean": ["0"]}).names == ("lambda=0",)


def test_a_bad_storage_is_refused_before_the_plan(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    for storage in (str(folder), "postgresql://nobody@127.0.0.1:1/none"):
        proc = bench_cli("ablate", "offset_noise", "--dataset", "synthetic", "--storage", storage,
                         "--out", str(tmp_path / "o"))
        line = one_line_error(proc)
        assert "storage" in line and proc.stdout == ""


def test_sigterm_stops_a_run_as_ctrl_c_does_and_a_rerun_resumes(tmp_path):
    args = [sys.executable, "-m", "bench.cli", "run", "--models", "sasrec", "--dataset", "synthetic", "--out",
            str(tmp_path), "--set", "sasrec.hidden=16", "--set", "sasrec.blocks=1", "--set", "sasrec.epochs=400",
            "--set", "sasrec.eval_every=1", "--set", "sasrec.patience=1000"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    while not list(tmp_path.rglob("checkpoint.json")) and time.time() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "rerun the same command to resume at epoch" in err and "Traceback" not in err


def test_sigterm_inside_an_exec_string_still_exits_143(tmp_path):
    # a signal that lands while an import builds a namedtuple or dataclass (code run by a string `exec`)
    # once made CPython die with SIGINT at shutdown, whatever exit code the CLI asked for
    (tmp_path / "term_in_exec.py").write_text(
        "import bench.cli.main as m\n"
        "def app(**kwargs):\n"
        "    exec('import os, signal\\nos.kill(os.getpid(), signal.SIGTERM)\\nfor i in range(10**8): pass')\n"
        "m.app = app\n"
        "m.main()\n")
    proc = subprocess.run([sys.executable, "-m", "term_in_exec"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert "rerun the same command to resume" in proc.stderr and "Traceback" not in proc.stderr
