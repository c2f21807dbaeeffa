import dataclasses
import json
import multiprocessing as mp

import pytest

from bench.runs import results
from tests.conftest import bench_cli


def writer(out, worker, n):
    for i in range(n):
        results.append(out, {"run_id": f"{worker}-{i}", "payload": "x" * (5000 + worker), "i": i})


def test_concurrent_appends_never_interleave(tmp_path):
    procs = [mp.get_context("spawn").Process(target=writer, args=(tmp_path, w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = (tmp_path / results.RESULTS).read_text().splitlines()
    assert len(lines) == 240
    records = [json.loads(line) for line in lines]
    assert {r["run_id"] for r in records} == {f"{w}-{i}" for w in range(4) for i in range(60)}


def record(rid: str) -> dict:
    """The least a results line holds to be read back (bench.runs.results.SCHEMA)."""
    return {"run_id": rid, "model": "pop", "dataset": "synthetic", "seed": 0, "protocol": {}, "config": {},
            "valid": {"ndcg@10": 0.1}, "test": {"ndcg@10": 0.1}, "best_epoch": 0, "epochs_run": 0,
            "train_seconds": 0.0}


@pytest.mark.filterwarnings("ignore:.*damaged line")
def test_damaged_line_is_skipped_not_fatal(tmp_path):
    results.append(tmp_path, record("a"))
    with open(tmp_path / results.RESULTS, "a") as f:
        f.write('{"run_id": "trunc')
    assert [r["run_id"] for r in results.read(tmp_path)] == ["a"]
    results.append(tmp_path, record("b"))
    assert [r["run_id"] for r in results.read(tmp_path)] == ["a", "b"]


def test_rerun_skips_finished_runs_unless_forced(tmp_path):
    args = ["run", "--models", "pop,sasrec", "--dataset", "synthetic", "--epochs", "2", "--seeds", "2",
            "--out", str(tmp_path)]
    first = bench_cli(*args)
    assert first.returncode == 0, first.stderr
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4
    record = json.loads(lines[-1])
    for key in ("model", "dataset", "seed", "config", "train", "protocol", "valid", "test", "best_epoch",
                "train_seconds", "eval_seconds", "versions", "git_revision", "history", "per_user"):
        assert key in record
    assert (tmp_path / record["history"]).exists() and (tmp_path / record["per_user"]).exists()
    per_user = (tmp_path / record["per_user"]).read_text().splitlines()
    assert per_user[0].startswith("user,rank,hr@5") and len(per_user) == 1 + 600
    # stderr is not a terminal here: each validation is logged as one plain line
    assert "sasrec synthetic seed 1: epoch 2/2  loss " in first.stderr

    again = bench_cli(*args)
    assert again.returncode == 0 and "4 of 4 runs were already finished" in again.stdout
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4
    forced = bench_cli(*args, "--force", "--models", "pop")
    assert forced.returncode == 0
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 6


def test_parallel_jobs_write_every_run(tmp_path):
    proc = bench_cli("run", "--models", "pop,sasrec", "--dataset", "synthetic", "--epochs", "1", "--seeds", "2",
                     "--jobs", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    records = results.read(tmp_path)
    assert sorted((r["model"], r["seed"]) for r in records) == [("pop", 0), ("pop", 1), ("sasrec", 0), ("sasrec", 1)]
    assert "sasrec synthetic seed 0: epoch 1/1" in proc.stderr and "sasrec synthetic seed 1: epoch 1/1" in proc.stderr


def test_summary_keeps_configs_apart_and_merges_seeds():
    from bench.runs.summary import summarize

    def rec(seed, hidden, ndcg, batch=1024):
        return {"dataset": "beauty", "model": "sasrec", "seed": seed, "best_epoch": 10, "train_seconds": 1.0,
                "config": {"hidden": hidden, "dropout": 0.5}, "train": {"lr": 1e-3, "eval_batch_size": batch},
                "protocol": {"max_len": 50}, "valid": {"ndcg@10": ndcg},
                "test": {k: ndcg for k in ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr")}}

    rows = summarize([rec(0, 128, 0.04), rec(1, 128, 0.06, batch=64), rec(0, 256, 0.05)])
    by_model = {r["model"]: r for r in rows}
    assert set(by_model) == {"sasrec (hidden=128)", "sasrec (hidden=256)"}
    assert by_model["sasrec (hidden=128)"]["seeds"] == 2
    assert by_model["sasrec (hidden=128)"]["ndcg@10"][0] == pytest.approx(5.0)
    assert by_model["sasrec (hidden=256)"]["seeds"] == 1
    assert [r["model"] for r in summarize([rec(0, 128, 0.04), rec(1, 128, 0.05)])] == ["sasrec"]
    row = by_model["sasrec (hidden=128)"]
    assert row["hr@10 kept"][0] == pytest.approx(5.0) and row["hr@10 removed"] is None   # older records: one setting
    both = [{**rec(s, 128, 0.04), "test_seen": {"kept": {"hr@10": 0.04, "ndcg@10": 0.02},
                                                 "removed": {"hr@10": 0.05 + s / 100, "ndcg@10": 0.03}}}
            for s in (0, 1)]
    (row,) = summarize(both)
    assert row["hr@10 kept"] == pytest.approx((4.0, 0.0)) and row["hr@10 removed"][0] == pytest.approx(5.5)
    assert row["ndcg@10 removed"][0] == pytest.approx(3.0)


@dataclasses.dataclass(frozen=True)
class OlderConfig:
    """DiffuRec's config as it was before `init_std` (and the later fields) were added."""
    hidden: int
    blocks: int
    heads: int
    dropout: float
    emb_dropout: float
    attention: str
    cross_kind: str
    diffusion_steps: int
    schedule: str
    timestep_sampler: str
    rescale_timesteps: bool
    lambda_mean: float
    lambda_std: float
    offset_noise: float
    offset_kind: str
    inference_steps: int
    stochastic: bool
    eval_samples: int


LATER = ("init_std", "block_dropout", "valid_inference_steps", "padding_sink", "chain_blocks", "shared_norm",
         "query_norm", "query_per_position", "xt_probe")


def test_a_field_added_later_keeps_stored_runs_the_same_runs():
    from bench import registry
    from bench.eval.protocol import Protocol
    from bench.runs.identity import run_id
    from bench.runs.summary import summarize

    default, changed = registry.resolve("diffurec"), registry.resolve("diffurec", {"diffurec": {"init_std": "1.0"}})
    assert run_id(default, "fp", 0, Protocol()) != run_id(changed, "fp", 0, Protocol())
    # the id of the default config is the one computed before init_std existed
    older = dataclasses.replace(default, config=OlderConfig(**{k: v for k, v in dataclasses.asdict(default.config).items()
                                                               if k not in LATER}))
    assert run_id(older, "fp", 0, Protocol()) == run_id(default, "fp", 0, Protocol())

    def rec(seed, config):
        return {"dataset": "beauty", "model": "diffurec", "seed": seed, "best_epoch": 10, "train_seconds": 1.0,
                "config": config, "train": {"lr": 1e-3}, "protocol": {"max_len": 50}, "valid": {"ndcg@10": 0.05},
                "test": {k: 0.05 for k in ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr")}}

    rows = summarize([rec(0, {"hidden": 128}), rec(1, {"hidden": 128, "init_std": 0.0}),
                      rec(0, {"hidden": 128, "init_std": 1.0})])
    assert sorted((r["model"], r["seeds"]) for r in rows) == [("diffurec", 2), ("diffurec (init_std=1.0)", 1)]


HOLDER = """
import fcntl, json, sys, time
from pathlib import Path
lock, results, wanted = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
lock.parent.mkdir(parents=True, exist_ok=True)
with open(lock, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    print("held", flush=True)
    deadline = time.time() + 120
    while time.time() < deadline:          # hold it until the other run has been stored
        if results.exists() and any(json.loads(l)["run_id"] == wanted for l in results.read_text().splitlines()):
            break
        time.sleep(0.05)
"""


def test_a_run_another_process_trains_is_deferred_then_waited_for(tmp_path):
    """Two commands on one folder never train the same run at once: a run whose lock another
    process holds goes to the end of the grid and is trained once that process lets go."""
    import subprocess
    import sys

    from bench import registry
    from bench.runs.grid import run_grid
    from bench.runs.identity import dataset_fingerprint, run_id
    from bench.runs.locks import Busy, lock_path
    from bench.runs.run import run_one
    from bench.runs.spec import build

    reqs = [build("pop", "synthetic", seed=s, out=str(tmp_path)) for s in (0, 1)]
    rids = [run_id(registry.resolve("pop", {}, "synthetic"), dataset_fingerprint("synthetic", None), r.seed, r.protocol)
            for r in reqs]
    assert [r.run_id for r in reqs] == rids         # the spec names the run as the protocol identity does
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_path(tmp_path, rids[0])),
                               str(tmp_path / results.RESULTS), rids[1]], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Busy):
            run_one(reqs[0], wait=False)
        records = run_grid(reqs)
    finally:
        holder.kill()
        holder.wait()
    assert [r["run_id"] for r in records] == rids and not any(r.get("skipped") for r in records)
    stored = [r["run_id"] for r in results.read(tmp_path)]
    assert stored == [rids[1], rids[0]]          # the free run first, the held one after its lock was let go
    assert run_grid(reqs)[0]["skipped"]
