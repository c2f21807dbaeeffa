"""The quick look: `make bench` (every registered model, the same commands as a real
benchmark) is minutes, and its table tells the models apart."""
import json
import time

from bench import registry
from tests.conftest import bench_cli


def test_quick_look_is_minutes_and_ranks_sasrec_far_above_mostpop(tmp_path):
    out = tmp_path / "runs"
    t0 = time.perf_counter()
    run = bench_cli("run", "--models", "all", "--dataset", "synthetic", "--out", str(out), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    table = bench_cli("results", str(out))
    assert table.returncode == 0, table.stderr
    report = bench_cli("report", str(out), "--out", str(out / "report"), timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    seconds = time.perf_counter() - t0
    # about 3 minutes on a quiet 2-core CPU, one thread (RESULTS.md); loose here, for a busy CI machine
    assert seconds < 900, seconds
    assert (out / "report" / "report.pdf").stat().st_size > 10_000
    ndcg = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        ndcg[record["model"]] = 100 * record["test"]["ndcg@10"]
    assert set(ndcg) == set(registry.names())
    assert ndcg["sasrec"] > 3 * ndcg["pop"], ndcg
    # the VAEs are below SASRec or level with it (within 2 points of NDCG@10)
    assert ndcg["svae"] < ndcg["sasrec"] + 2 and ndcg["acvae"] < ndcg["sasrec"] + 2, ndcg
