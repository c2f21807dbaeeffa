"""`--threads` and `--log tensorboard`: how many compute threads a run takes, and live curves read back."""
import json

import pytest

from bench.errors import BenchError
from bench.runs import threads
from tests.conftest import bench_cli

TINY = ["--set", "sasrec.hidden=16", "--set", "sasrec.blocks=1", "--set", "sasrec.epochs=3",
        "--set", "sasrec.eval_every=1"]


def test_threads_given_are_taken_and_the_default_shares_the_free_cores_among_the_processes():
    assert threads.per_process(3, 1)[0] == 3
    n = threads.cores()
    each, why = threads.per_process(0, 1)
    assert 1 <= each <= n and "--threads N" in why
    assert threads.per_process(0, 2 * n)[0] == 1             # never fewer than one
    assert threads.per_process(0, 2)[0] <= max(1, n // 2)
    with pytest.raises(BenchError, match="--threads"):
        threads.per_process(-1, 1)


def test_a_run_takes_the_threads_it_was_given_and_the_plan_says_so(tmp_path):
    proc = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--out", str(tmp_path), "--threads", "1",
                     *TINY)
    assert proc.returncode == 0, proc.stderr
    assert "threads: --threads 1" in proc.stderr
    record = json.loads((tmp_path / "results.jsonl").read_text())
    assert record["threads"] == 1
    bad = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--out", str(tmp_path), "--threads", "-2")
    assert bad.returncode == 2 and "--threads" in bad.stderr


def test_log_tensorboard_writes_loss_and_every_validation_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--out", str(tmp_path),
                     "--log", "tensorboard", *TINY)
    assert proc.returncode == 0, proc.stderr
    folder = next(tmp_path.rglob("tensorboard"))
    events = EventAccumulator(str(folder))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "valid/ndcg@10", "valid/hr@10"} <= set(tags)
    ndcg = events.Scalars("valid/ndcg@10")
    assert [e.step for e in ndcg] == [1, 2, 3]
    history = (folder.parent / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    logged = [float(line.split(",")[header.index("valid_ndcg@10")]) for line in history[1:]]
    assert [e.value for e in ndcg] == pytest.approx(logged, rel=1e-6)
    bad = bench_cli("run", "--models", "sasrec", "--dataset", "synthetic", "--out", str(tmp_path), "--log", "wandb")
    assert bad.returncode == 2 and "--log" in bad.stderr
