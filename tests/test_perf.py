"""`bench perf`: a real, tiny measurement on synthetic data, written as JSON."""
import json

from tests.conftest import bench_cli


def test_perf_measures_every_model_and_precision(tmp_path):
    out = tmp_path / "perf.json"
    r = bench_cli("perf", "--models", "pop,sasrec", "--dataset", "synthetic", "--train-steps", "2",
                  "--warmup", "1", "--parity-steps", "4", "--eval-users", "64", "--set", "sasrec.hidden=16",
                  "--json", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    rows = {(row["model"], row["precision"]): row for row in result["rows"]}
    assert set(rows) == {(m, p) for m in ("pop", "sasrec") for p in ("fp32", "bf16")}
    for precision in ("fp32", "bf16"):
        sas = rows["sasrec", precision]
        assert sas["train_targets_per_s"] > 0 and sas["eval_users_per_s"] > 0 and sas["train_gflops"] > 0
        assert 0 < sas["train_fraction_of_peak"] and 0 <= sas["valid_ndcg@10"] <= 1
        assert "train_targets_per_s" not in rows["pop", precision]      # nothing to train
    assert result["matmul_peak_gflops"]["bf16"] > 0 and result["machine"]["threads"] >= 1


def test_perf_rejects_an_unknown_precision():
    r = bench_cli("perf", "--models", "pop", "--dataset", "synthetic", "--precision", "fp8")
    assert r.returncode == 2 and "unknown precision 'fp8'" in r.stderr
